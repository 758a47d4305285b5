"""Operator and cloud caps on whole chargers, enforced by the site control loop.

With a grid meter the site controller owns ChargePointMaxProfile on every charger
(its safe profile and its lease). An operator limit on a whole charger (connector 0)
then becomes a cap inside the allocation, carried by the lease and the safe value,
instead of a profile of its own that would replace the lease.

The fleet operator's cloud limits a whole charger the OCPP way, with
ChargePointMaxProfiles (any schedule: absolute, recurring, several periods, A or W,
stacked). Those are kept as the cloud sent them (`cloudMaxProfiles`) and evaluated
every cycle (`cloud_cap_at`): the limit the highest valid stack level gives now is a
cap too, so the cloud's limit holds and the site's fuse still does.

Both are kept in the charger document (`siteCap`, `cloudMaxProfiles`, owned here) so
they survive a restart; the controller reads them every cycle (`SiteController._observe`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from edge.chargers import Charger
from edge.services import Services
from edge.times import format_time
from profiles.allocation import floor_step, parse_wiring
from profiles.composite import profile_periods
from profiles.model import (
    ChargingProfile,
    ChargingProfilePurpose,
    ChargingRateUnit,
    ProfileFormatError,
    parse_profile,
)

__all__ = ["SiteCaps", "cap_amperes", "cloud_cap_at", "parse_cloud_profiles"]

Json = dict[str, Any]


def cap_amperes(svc: Services, charger: Charger, limit: float, unit: ChargingRateUnit) -> float:
    """A cap in A per phase; W are spread over the charger's wired phases."""
    if unit is ChargingRateUnit.A:
        return floor_step(limit)
    settings = svc.config.chargers.get(charger.id)
    phases = len(parse_wiring(settings.phases)) if settings is not None else 3
    return floor_step(limit / (svc.config.site.nominal_voltage * phases))


def parse_cloud_profiles(profiles: Sequence[Json]) -> list[ChargingProfile]:
    """The cloud's kept ChargePointMaxProfiles, parsed; one that no longer parses is
    skipped (each was validated when it came)."""
    parsed = []
    for data in profiles:
        try:
            parsed.append(parse_profile(data))
        except (ProfileFormatError, KeyError, TypeError, ValueError):
            continue
    return parsed


def cloud_cap_at(
    profiles: Sequence[ChargingProfile],
    now: datetime,
    amperes: Callable[[float, ChargingRateUnit], float],
) -> float | None:
    """The cap the cloud's ChargePointMaxProfiles set at `now` (A per phase; None: none
    in force): the highest stack level with a period in force wins (OCPP 1.6 §3.13.2)."""
    best: tuple[int, float] | None = None
    for profile in profiles:
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

    async def set_cloud_profile(self, charger: Charger, profile: Json) -> None:
        """Keep a ChargePointMaxProfile from the cloud as a cap: it replaces one with
        the same id, or the same stack level (OCPP 1.6 §5.16)."""
        svc = self.svc
        kept = [
            p
            for p in charger.doc.get("cloudMaxProfiles") or []
            if p.get("chargingProfileId") != profile.get("chargingProfileId")
            and p.get("stackLevel") != profile.get("stackLevel")
        ]
        svc.chargers.update(charger, cloudMaxProfiles=[*kept, profile])
        await svc.chargers.persist()
        svc.record(charger.id, "CloudCap", {"profile": profile})
        self.wake()

    async def clear_cloud_profiles(self, charger: Charger, criteria: Json) -> int:
        """Remove the cloud's ChargePointMaxProfiles a ClearChargingProfile matches
        (by id, or by purpose and stack level); how many were removed."""
        svc = self.svc
        profiles = list(charger.doc.get("cloudMaxProfiles") or [])

        def matches(p: Json) -> bool:
            if "id" in criteria:
                return bool(p.get("chargingProfileId") == criteria["id"])
            purpose = criteria.get("chargingProfilePurpose")
            if purpose not in (None, ChargingProfilePurpose.CHARGE_POINT_MAX):
                return False
            level = criteria.get("stackLevel")
            return level is None or p.get("stackLevel") == level

        kept = [p for p in profiles if not matches(p)]
        removed = len(profiles) - len(kept)
        if removed:
            svc.chargers.update(charger, cloudMaxProfiles=kept)
            await svc.chargers.persist()
            svc.record(charger.id, "CloudCap", {"cleared": removed, "criteria": criteria})
            self.wake()
        return removed
