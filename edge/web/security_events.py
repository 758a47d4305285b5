"""GET /api/security/events: the security events of the site, chargers' and the edge's.

Query: `chargerId` (one charger's), `critical=true|false`, `limit` (1..1000, 100).
Each event: `{chargerId, type, critical, techInfo, timestamp, receivedAt, source}`,
newest first; `source` is "charger" (a SecurityEventNotification) or "edge" (raised by
the edge itself). See `edge.security.events`.
"""

from __future__ import annotations

from aiohttp import web

from edge.security.events import security_events
from edge.web.common import json_response, query_bool, query_int, services

__all__ = ["add_routes"]


async def list_security_events(request: web.Request) -> web.Response:
    """GET /api/security/events[?chargerId=&critical=&limit=]."""
    limit = query_int(request, "limit", 100, 1, 1000) or 100
    return json_response(
        security_events(
            services(request),
            charger_id=request.query.get("chargerId") or None,
            critical=query_bool(request, "critical"),
            limit=limit,
        )
    )


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_get("/api/security/events", list_security_events)
