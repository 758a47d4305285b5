"""Local Authorization List API: the list a charger is believed to hold, and syncing it.

GET  /api/chargers/{id}/local-list        the believed version and entries
POST /api/chargers/{id}/local-list/sync   send the CSMS id-tag list (?full=true: Full)

The sync itself is `edge.features.local_auth.sync`.
"""

from __future__ import annotations

from aiohttp import web

from edge.features import local_auth
from edge.features.local_auth import local_list_state
from edge.operations import Origin
from edge.web.common import (
    charger_or_404,
    json_response,
    operations,
    query_bool,
    services,
)

__all__ = ["add_routes"]


async def get_local_list(request: web.Request) -> web.Response:
    """GET /api/chargers/{id}/local-list: the list the CSMS believes the charger holds."""
    charger = charger_or_404(services(request), request.match_info["charger_id"])
    state = local_list_state(charger)
    return json_response(
        {
            "listVersion": state.version,
            "supported": state.supported,
            "contentKnown": state.content_known,
            "entries": [
                {"idTag": tag, "idTagInfo": info}
                for tag, info in sorted(state.entries.items(), key=lambda i: i[0].casefold())
            ],
            "lastSentVersion": state.last_sent_version,
            "lastResult": state.last_result,
        }
    )


async def sync_local_list(request: web.Request) -> web.Response:
    """POST /api/chargers/{id}/local-list/sync[?full=true][&force=true]: send the id-tag list."""
    charger = charger_or_404(services(request), request.match_info["charger_id"])
    summary = await local_auth.sync(
        operations(request),
        charger,
        full=bool(query_bool(request, "full")),
        force=bool(query_bool(request, "force")),
        origin=Origin.OPERATOR,
    )
    return json_response(summary)


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_get("/api/chargers/{charger_id}/local-list", get_local_list)
    router.add_post("/api/chargers/{charger_id}/local-list/sync", sync_local_list)
