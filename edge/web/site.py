"""Site load balancing: `GET /api/site`, `GET /api/site/history`, `GET /api/site/check`,
`GET /api/chargers/{id}/site`.

Operator caps on whole chargers are set through `/limits` (`edge.web.smart_charging`,
`edge.site.caps`).
"""

from __future__ import annotations

from aiohttp import web

from edge.site.commissioning import fallback_report
from edge.site.report import charger_json, site_json
from edge.times import to_epoch
from edge.web.common import (
    SERVICES,
    SITE,
    ApiError,
    Json,
    charger_or_404,
    json_response,
    query_int,
    services,
)

__all__ = ["add_routes", "site_body"]


def site_body(app: web.Application) -> Json:
    """The body of `GET /api/site` (also the live page's snapshot and site messages)."""
    controller = app.get(SITE)
    if controller is not None:
        return site_json(controller.statistics())
    site = app[SERVICES].config.site
    return {
        "enabled": False,
        "state": "disabled",
        "detail": "no [meter] configured: no load balancing, no unsolicited calls",
        "limits": {
            "maxCurrentA": list(site.max_current),
            "marginA": site.margin,
            "fallbackCurrentA": site.fallback_current,
        },
    }


async def get_site(request: web.Request) -> web.Response:
    """GET /api/site: meter reading and age, limits, per-charger allocations, fallback."""
    return json_response(site_body(request.app))


async def get_charger_site(request: web.Request) -> web.Response:
    """GET /api/chargers/{id}/site: one charger's part of `GET /api/site`."""
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    controller = request.app.get(SITE)
    if controller is None:
        raise ApiError(404, "no_site_control", "no [meter] configured: no load balancing")
    stats = controller.statistics()
    for entry in stats.chargers:
        if entry.charger_id == charger.id:
            return json_response(charger_json(entry, stats))
    raise ApiError(404, "not_controlled", f"charger {charger.id!r} is not under site control")


async def get_site_history(request: web.Request) -> web.Response:
    """GET /api/site/history?seconds=N: grid and EV current per phase and fallback over
    the last N s (default 900; one point a second up to an hour, one-minute means up
    to a day), as columns; `t` in epoch seconds, for plotting."""
    seconds = query_int(request, "seconds", 900, 1, 86400) or 900
    controller = request.app.get(SITE)
    if controller is None:
        raise ApiError(404, "no_site_control", "no [meter] configured: no load balancing")
    site = services(request).config.site
    now = to_epoch(services(request).now())
    return json_response(
        {
            **controller.history.window(seconds, now),
            "seconds": seconds,
            "maxCurrentA": list(site.max_current),
            "marginA": site.margin,
        }
    )


async def get_site_check(request: web.Request) -> web.Response:
    """GET /api/site/check: `edge-csms check`'s fallback report as JSON (whether every
    configured charger's fallback value fits the fuse, in words), and each configured
    charger's wiring and range, as `[chargers.<id>]` says (also before it connects)."""
    config = services(request).config
    fits, lines = fallback_report(config)
    return json_response(
        {
            "fallbackFits": fits,
            "report": lines,
            "chargers": [
                {
                    "chargerId": charger_id,
                    "phases": settings.phases,
                    "minA": settings.min_current,
                    "maxA": settings.max_current,
                }
                for charger_id, settings in sorted(config.chargers.items())
            ],
        }
    )


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_get("/api/site", get_site)
    router.add_get("/api/site/check", get_site_check)
    router.add_get("/api/site/history", get_site_history)
    router.add_get("/api/chargers/{charger_id}/site", get_charger_site)
