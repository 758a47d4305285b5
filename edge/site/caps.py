"""Operator caps on whole chargers, enforced by the site control loop.

With a grid meter the site controller owns ChargePointMaxProfile on every charger
(its safe profile and its lease). An operator limit on a whole charger (connector 0)
then becomes a cap inside the allocation, carried by the lease and the safe value,
instead of a profile of its own that would replace the lease.

The cap is kept in the charger document (`siteCap`, owned here) so it survives a
restart; the controller reads it every cycle (`SiteController._observe`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from edge.chargers import Charger
from edge.services import Services
from edge.times import format_time
from profiles.allocation import floor_step, parse_wiring
from profiles.model import ChargingRateUnit

__all__ = ["SiteCaps", "cap_amperes"]

Json = dict[str, Any]


def cap_amperes(svc: Services, charger: Charger, limit: float, unit: ChargingRateUnit) -> float:
    """A cap in A per phase; W are spread over the charger's wired phases."""
    if unit is ChargingRateUnit.A:
        return floor_step(limit)
    settings = svc.config.chargers.get(charger.id)
    phases = len(parse_wiring(settings.phases)) if settings is not None else 3
    return floor_step(limit / (svc.config.site.nominal_voltage * phases))


class SiteCaps:
    """Sets and clears caps; `wake` runs a control cycle so a change applies at once."""

    def __init__(self, svc: Services, wake: Callable[[], None]) -> None:
        self.svc = svc
        self.wake = wake

    async def set(
        self, charger: Charger, limit: float, unit: ChargingRateUnit, until: datetime | None
    ) -> Json:
        """Cap a whole charger; returns the cap as stored (and journalled)."""
        svc = self.svc
        cap: Json = {
            "limitA": cap_amperes(svc, charger, limit, unit),
            "limit": limit,
            "unit": str(unit),
            "until": format_time(until) if until is not None else None,
            "setAt": svc.now_text(),
        }
        svc.chargers.update(charger, siteCap=cap)
        await svc.chargers.persist()
        svc.record(charger.id, "SiteCap", cap)
        self.wake()
        return cap

    async def clear(self, charger: Charger) -> Json | None:
        """Remove the charger's cap; the cap removed, or None when there was none."""
        svc = self.svc
        cap = charger.doc.get("siteCap")
        if not cap:
            return None
        svc.chargers.update(charger, siteCap=None)
        await svc.chargers.persist()
        svc.record(charger.id, "SiteCap", {"cleared": True})
        self.wake()
        return dict(cap)
