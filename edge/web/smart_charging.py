"""Smart charging: the predicted schedule, and operator limits.

GET    /api/chargers/{id}/schedule?connectorId=N&duration=S[&unit=A|W][&start=T]
POST   /api/chargers/{id}/limits                 limit a connector (0: the charger)
DELETE /api/chargers/{id}/limits[?connectorId=N] remove the operator's limits

The flows are `edge.features.smart_charging.set_limit` / `clear_limits`; with a grid
meter a whole-charger limit becomes a cap inside the site's allocation.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from edge.features import smart_charging
from edge.operations import Origin
from edge.times import parse_time
from edge.web.common import (
    ApiError,
    Json,
    charger_or_404,
    json_body,
    json_response,
    operations,
    query_int,
    reject_unknown_fields,
    services,
)
from profiles.model import ChargingRateUnit

__all__ = ["add_routes"]


async def charger_schedule(request: web.Request) -> web.Response:
    """The composite schedule the CSMS expects a connector to apply (GetCompositeSchedule shape)."""
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    connector_id = query_int(request, "connectorId", None, 0, 1000)
    duration = query_int(request, "duration", None, 1, 31 * 86400)
    if connector_id is None or duration is None:
        raise ApiError(400, "invalid_query", "connectorId and duration are required")
    try:
        unit = ChargingRateUnit(request.query.get("unit", "A"))
    except ValueError:
        raise ApiError(400, "invalid_query", "unit must be A or W") from None
    start = svc.now()
    if "start" in request.query:
        try:
            start = parse_time(request.query["start"])
        except ValueError:
            raise ApiError(400, "invalid_query", "start must be an ISO 8601 time") from None
    composite = smart_charging.predicted_schedule(
        svc, charger, connector_id=connector_id, start=start, duration=duration, unit=unit
    )
    return json_response(smart_charging.schedule_json(svc, charger, composite, connector_id))


def _limit_request(
    body: Json, now: datetime
) -> tuple[int, float, ChargingRateUnit, datetime | None, int | None]:
    reject_unknown_fields(body, {"connectorId", "limit", "unit", "until", "numberPhases"})
    connector_id = body.get("connectorId", 0)
    if isinstance(connector_id, bool) or not isinstance(connector_id, int) or connector_id < 0:
        raise ApiError(
            400, "invalid_request", "connectorId must be 0 (whole charger) or a connector"
        )
    limit = body.get("limit")
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not 0 <= limit <= 1e6:
        raise ApiError(400, "invalid_request", "limit must be a number of A or W, 0 or more")
    try:
        unit = ChargingRateUnit(body.get("unit", "A"))
    except ValueError:
        raise ApiError(400, "invalid_request", "unit must be A or W") from None
    until = None
    if body.get("until") is not None:
        try:
            until = parse_time(str(body["until"]))
        except ValueError:
            raise ApiError(400, "invalid_request", "until must be an ISO 8601 time") from None
        if until <= now:
            raise ApiError(400, "invalid_request", "until must be in the future")
    phases = body.get("numberPhases")
    if phases is not None and (isinstance(phases, bool) or phases not in (1, 2, 3)):
        raise ApiError(400, "invalid_request", "numberPhases must be 1, 2 or 3")
    return connector_id, float(limit), unit, until, phases


async def set_limit(request: web.Request) -> web.Response:
    """POST /api/chargers/{id}/limits: limit a connector (0: the whole charger) until a time."""
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    connector_id, limit, unit, until, phases = _limit_request(await json_body(request), svc.now())
    answer = await smart_charging.set_limit(
        operations(request), charger, connector_id=connector_id, limit=limit, unit=unit,
        until=until, number_phases=phases, origin=Origin.OPERATOR,
    )  # fmt: skip
    return json_response(answer)


async def clear_limits(request: web.Request) -> web.Response:
    """DELETE /api/chargers/{id}/limits[?connectorId=N]: remove the operator's limits."""
    charger = charger_or_404(services(request), request.match_info["charger_id"])
    connector_id = query_int(request, "connectorId", None, 0, 1000)
    cleared = await smart_charging.clear_limits(
        operations(request), charger, connector_id=connector_id, origin=Origin.OPERATOR
    )
    return json_response({"cleared": cleared})


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_get("/api/chargers/{charger_id}/schedule", charger_schedule)
    router.add_post("/api/chargers/{charger_id}/limits", set_limit)
    router.add_delete("/api/chargers/{charger_id}/limits", clear_limits)
