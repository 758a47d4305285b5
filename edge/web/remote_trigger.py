"""Remote Trigger: GET /api/chargers/{id}/triggers, the last TriggerMessage answer per message.

Triggers are sent with `POST /api/chargers/{id}/ocpp/TriggerMessage` (or
ExtendedTriggerMessage); `edge.features.remote_trigger` records the answers.
"""

from __future__ import annotations

from aiohttp import web

from edge.web.common import charger_or_404, json_response, services

__all__ = ["add_routes"]


async def get_triggers(request: web.Request) -> web.Response:
    """GET /api/chargers/{id}/triggers: the last TriggerMessage answer per requested message."""
    charger = charger_or_404(services(request), request.match_info["charger_id"])
    return json_response(charger.doc.get("triggers", {}))


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_get("/api/chargers/{charger_id}/triggers", get_triggers)
