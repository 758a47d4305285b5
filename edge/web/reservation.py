"""Reservation API (OCPP 1.6 Reservation profile): reserve, cancel, list.

POST   /api/chargers/{id}/reservations                  ReserveNow, id allocated if not given
DELETE /api/chargers/{id}/reservations/{reservationId}  CancelReservation
GET    /api/chargers/{id}/reservations                  that charger's reservations
GET    /api/reservations[?chargerId=&active=]            across chargers, newest first

The flows are `edge.features.reservation.reserve` / `cancel`. The raw
`POST /api/chargers/{id}/ocpp/ReserveNow` is recorded the same way (the feature's
recorders run on every answer). An expiryDate in the past is sent with a warning.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from edge.features import reservation
from edge.id_tags import MAX_ID_TAG_LENGTH
from edge.operations import Origin
from edge.times import format_time, parse_time
from edge.web.common import (
    ApiError,
    Json,
    body_int,
    charger_or_404,
    json_body,
    json_response,
    operations,
    outcome_json,
    query_bool,
    reject_unknown_fields,
    services,
)

__all__ = ["add_routes"]

_FIELDS = {"connectorId", "idTag", "expiryDate", "expiresIn", "parentIdTag", "reservationId"}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _tag(body: Json, name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_TAG_LENGTH:
        raise ApiError(400, "invalid_request", f"{name} must be 1 to 20 characters (CiString20)")
    return value


async def reserve(request: web.Request) -> web.Response:
    """POST /api/chargers/{id}/reservations: send ReserveNow; the reservation once Accepted."""
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    force = bool(query_bool(request, "force"))
    body = await json_body(request)
    reject_unknown_fields(body, _FIELDS)
    connector_id = body.get("connectorId")
    if not isinstance(connector_id, int) or isinstance(connector_id, bool) or connector_id < 0:
        raise ApiError(400, "invalid_request", "connectorId must be 0 (any connector) or more")
    id_tag = _tag(body, "idTag", required=True)
    assert id_tag is not None
    parent = _tag(body, "parentIdTag", required=False)
    if ("expiryDate" in body) == ("expiresIn" in body):
        raise ApiError(400, "invalid_request", "give either expiryDate or expiresIn")
    if "expiresIn" in body:
        seconds = body["expiresIn"]
        if not _is_int(seconds) or seconds <= 0:
            raise ApiError(400, "invalid_request", "expiresIn must be a number of seconds > 0")
        expiry_date = format_time(svc.now() + timedelta(seconds=seconds))
    else:
        expiry_date = body["expiryDate"]
        try:
            parse_time(expiry_date)
        except (TypeError, ValueError):
            raise ApiError(400, "invalid_request", "expiryDate must be an ISO 8601 time") from None
    reservation_id = body_int(body, "reservationId")
    outcome, recorded = await reservation.reserve(
        operations(request), charger, connector_id=connector_id, id_tag=id_tag,
        expiry_date=expiry_date, parent_id_tag=parent, reservation_id=reservation_id,
        origin=Origin.OPERATOR, force=force,
    )  # fmt: skip
    return json_response(outcome_json(outcome, reservation=recorded))


async def cancel(request: web.Request) -> web.Response:
    """DELETE /api/chargers/{id}/reservations/{reservationId}: send CancelReservation."""
    charger = charger_or_404(services(request), request.match_info["charger_id"])
    try:
        reservation_id = int(request.match_info["reservation_id"])
    except ValueError:
        raise ApiError(400, "invalid_request", "reservationId must be an integer") from None
    outcome, recorded = await reservation.cancel(
        operations(request), charger, reservation_id, origin=Origin.OPERATOR
    )
    return json_response(outcome_json(outcome, reservation=recorded))


async def charger_list(request: web.Request) -> web.Response:
    """GET /api/chargers/{id}/reservations: one charger's reservations, newest first."""
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    entries = reservation.list_reservations(
        svc, charger_id=charger.id, active=query_bool(request, "active")
    )
    return json_response(entries)


async def site_list(request: web.Request) -> web.Response:
    """GET /api/reservations[?chargerId=…&active=true]: reservations across chargers."""
    svc = services(request)
    entries = reservation.list_reservations(
        svc, charger_id=request.query.get("chargerId"), active=query_bool(request, "active")
    )
    return json_response(entries)


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_get("/api/reservations", site_list)
    router.add_get("/api/chargers/{charger_id}/reservations", charger_list)
    router.add_post("/api/chargers/{charger_id}/reservations", reserve)
    router.add_delete("/api/chargers/{charger_id}/reservations/{reservation_id}", cancel)
