"""POST /api/chargers/{id}/ocpp/{Action}: any CSMS→charger action, the payload as given.

The request is parsed here; everything else (admission, checks, the call, recorded
effects, the audit) is `edge.operations`. `?force=true` sends what the checks refuse.
"""

from __future__ import annotations

from aiohttp import web

from edge.ocppj import CSMS_TO_CP_ACTIONS
from edge.operations import Origin
from edge.web.common import (
    ApiError,
    charger_or_404,
    json_body,
    json_response,
    operations,
    outcome_json,
    query_bool,
    services,
)

__all__ = ["add_routes"]


async def ocpp_operation(request: web.Request) -> web.Response:
    """POST /api/chargers/{id}/ocpp/{Action}: any CSMS→charger action, payload as given."""
    action = request.match_info["action"]
    if action not in CSMS_TO_CP_ACTIONS:
        raise ApiError(
            404, "unknown_action", f"{action!r} is not an OCPP 1.6 action a central system sends"
        )
    payload = await json_body(request, allow_empty=True)
    charger = charger_or_404(services(request), request.match_info["charger_id"])
    force = bool(query_bool(request, "force"))
    outcome = await operations(request).send(
        charger, action, payload, origin=Origin.OPERATOR, force=force
    )
    return json_response(outcome_json(outcome))


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_post("/api/chargers/{charger_id}/ocpp/{action}", ocpp_operation)
