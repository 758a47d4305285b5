"""The site: `GET /api/site`, and operator caps that the load balancing enforces.

With a grid meter the site controller owns ChargePointMaxProfile on every charger
(its safe profile and its lease). An operator limit on a whole charger (connector 0)
then becomes a cap inside the allocation, carried by the lease and the safe value,
instead of a profile of its own that would replace the lease.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from edge.chargers import Charger
from edge.ocppj import format_datetime
from edge.web.common import SITE, ApiError, Json, charger_or_404, json_response, services
from profiles.allocation import floor_step, parse_wiring
from profiles.model import ChargingRateUnit

__all__ = ["add_routes", "clear_site_cap", "set_site_cap"]


async def get_site(request: web.Request) -> web.Response:
    """GET /api/site: meter reading and age, limits, per-charger allocations, fallback."""
    controller = request.app.get(SITE)
    if controller is not None:
        return json_response(controller.snapshot())
    site = services(request).config.site
    return json_response(
        {
            "enabled": False,
            "state": "disabled",
            "detail": "no [meter] configured: no load balancing, no unsolicited calls",
            "limits": {
                "maxCurrentA": list(site.max_current),
                "marginA": site.margin,
                "fallbackCurrentA": site.fallback_current,
            },
        }
    )


def _amperes(request: web.Request, charger: Charger, limit: float, unit: ChargingRateUnit) -> float:
    """A cap in A per phase; W are spread over the charger's wired phases."""
    if unit is ChargingRateUnit.A:
        return floor_step(limit)
    svc = services(request)
    settings = svc.config.chargers.get(charger.id)
    phases = len(parse_wiring(settings.phases)) if settings is not None else 3
    return floor_step(limit / (svc.config.site.nominal_voltage * phases))


async def set_site_cap(
    request: web.Request,
    charger: Charger,
    limit: float,
    unit: ChargingRateUnit,
    until: datetime | None,
) -> web.Response:
    """Cap a whole charger through the site controller (see the module docstring)."""
    svc = services(request)
    controller = request.app[SITE]
    cap: Json = {
        "limitA": _amperes(request, charger, limit, unit),
        "limit": limit,
        "unit": str(unit),
        "until": format_datetime(until) if until is not None else None,
        "setAt": svc.now_text(),
    }
    svc.chargers.update(charger, siteCap=cap)
    await svc.chargers.persist()
    svc.record(charger.id, "SiteCap", cap)
    controller.wake()
    return json_response({"appliedBy": "site", "cap": cap})


async def clear_site_cap(request: web.Request, charger: Charger) -> Json | None:
    """Remove the charger's cap; the cap removed, or None when there was none."""
    svc = services(request)
    cap = charger.doc.get("siteCap")
    if not cap:
        return None
    svc.chargers.update(charger, siteCap=None)
    await svc.chargers.persist()
    svc.record(charger.id, "SiteCap", {"cleared": True})
    request.app[SITE].wake()
    return dict(cap)


async def get_charger_site(request: web.Request) -> web.Response:
    """GET /api/chargers/{id}/site: one charger's part of `GET /api/site`."""
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    controller = request.app.get(SITE)
    if controller is None:
        raise ApiError(404, "no_site_control", "no [meter] configured: no load balancing")
    for entry in controller.snapshot()["chargers"]:
        if entry["chargerId"] == charger.id:
            return json_response(entry)
    raise ApiError(404, "not_controlled", f"charger {charger.id!r} is not under site control")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/site", get_site)
    router.add_get("/api/chargers/{charger_id}/site", get_charger_site)
