"""The cloud link: `GET /api/upstream` (DESIGN §7)."""

from __future__ import annotations

from aiohttp import web

from edge.web.common import UPSTREAM, json_response

__all__ = ["add_routes"]


async def get_upstream(request: web.Request) -> web.Response:
    """GET /api/upstream: per charger its link, what waits for the cloud and since when,
    and the messages parked because the cloud kept refusing them."""
    upstream = request.app.get(UPSTREAM)
    if upstream is None:
        return json_response({"enabled": False, "url": None, "chargers": []})
    return json_response({"enabled": True, **upstream.statistics()})


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_get("/api/upstream", get_upstream)
