"""Operator and cloud caps on whole chargers, enforced by the site control loop.

With a grid meter the site controller owns ChargePointMaxProfile on every charger
(its safe profile and its lease). An operator limit on a whole charger (connector 0)
then becomes a cap inside the allocation, carried by the lease and the safe value,
instead of a profile of its own that would replace the lease.

The fleet operator's cloud limits a whole charger the OCPP way, with
ChargePointMaxProfiles (any schedule: absolute, recurring, several periods, A or W,
stacked). Those are kept as a charger keeps its profiles (`cloudMaxProfiles`, an
`InstalledProfiles`: the same replacement and ClearChargingProfile rules) and evaluated
every cycle (`cloud_cap_at`): the limit the highest valid stack level gives now is a
cap too, so the cloud's limit holds and the site's fuse still does.

Both are kept in the charger document (`siteCap`, `cloudMaxProfiles`, owned here) so
they survive a restart; the controller reads them every cycle (`SiteController._observe`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from edge.chargers import Charger
from edge.services import Services
from edge.times import format_time
from profiles.allocation import floor_step, parse_wiring
from profiles.composite import profile_periods
from profiles.installed import InstalledProfiles
from profiles.model import (
    ChargingProfile,
    ChargingProfilePurpose,
    ChargingRateUnit,
    ProfileFormatError,
    render_profile,
)

__all__ = ["SiteCaps", "cap_amperes", "cloud_cap_at", "cloud_profiles"]

Json = dict[str, Any]


def cap_amperes(svc: Services, charger: Charger, limit: float, unit: ChargingRateUnit) -> float:
    """A cap in A per phase; W are spread over the charger's wired phases."""
    if unit is ChargingRateUnit.A:
        return floor_step(limit)
    settings = svc.config.chargers.get(charger.id)
    phases = len(parse_wiring(settings.phases)) if settings is not None else 3
    return floor_step(limit / (svc.config.site.nominal_voltage * phases))


def cloud_profiles(charger: Charger) -> InstalledProfiles:
    """The cloud's ChargePointMaxProfiles kept for `charger` (on connector 0)."""
    try:
        return InstalledProfiles.from_json(charger.doc.get("cloudMaxProfiles") or [])
    except ProfileFormatError:  # each was validated when it came: not expected
        return InstalledProfiles()


def cloud_cap_at(
    profiles: InstalledProfiles,
    now: datetime,
    amperes: Callable[[float, ChargingRateUnit], float],
) -> float | None:
    """The cap the cloud's ChargePointMaxProfiles set at `now` (A per phase; None: none
    in force): the highest stack level with a period in force wins (OCPP 1.6 §3.13.2)."""
    best: tuple[int, float] | None = None
    for item in profiles:
        profile = item.profile
        if best is not None and profile.stack_level <= best[0]:
            continue
        periods = profile_periods(profile, start=now, duration=1)
        if periods:
            best = (profile.stack_level, amperes(periods[0].limit, periods[0].unit))
    return None if best is None else best[1]


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

    async def set_cloud_profile(self, charger: Charger, profile: ChargingProfile) -> None:
        """Keep a ChargePointMaxProfile from the cloud as a cap, replacing one as a
        charger would (same id, or same stack level; `InstalledProfiles.set`)."""
        kept = cloud_profiles(charger).set(0, profile)
        await self._save_cloud(charger, kept, {"profile": render_profile(profile)})

    async def clear_cloud_profiles(
        self,
        charger: Charger,
        *,
        profile_id: int | None,
        connector_id: int | None,
        purpose: ChargingProfilePurpose | None,
        stack_level: int | None,
    ) -> int:
        """Remove the cloud's ChargePointMaxProfiles a ClearChargingProfile matches, as a
        charger would (`InstalledProfiles.clear`); how many were removed."""
        kept, removed = cloud_profiles(charger).clear(
            profile_id=profile_id, connector_id=connector_id, purpose=purpose,
            stack_level=stack_level,
        )  # fmt: skip
        if removed:
            ids = [item.profile.charging_profile_id for item in removed]
            await self._save_cloud(charger, kept, {"cleared": ids})
        return len(removed)

    async def _save_cloud(self, charger: Charger, kept: InstalledProfiles, event: Json) -> None:
        svc = self.svc
        svc.chargers.update(charger, cloudMaxProfiles=kept.to_json())
        await svc.chargers.persist()
        svc.record(charger.id, "CloudCap", event)
        self.wake()
