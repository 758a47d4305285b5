"""Who asks for an operation, what the checks find, and what comes back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NotRequired, Protocol, TypedDict

from edge.chargers import Charger
from edge.services import Services
from profiles.model import ChargingProfile, ChargingProfilePurpose, ChargingRateUnit

__all__ = ["Check", "Origin", "Outcome", "Problem", "Recorder", "Sender", "SiteCapsSetter"]

Json = dict[str, Any]


class Problem(TypedDict):
    """One finding of a pre-send check, readable by a technician."""

    field: str
    """OCPP JSON path of what is wrong, e.g. "csChargingProfiles.stackLevel"."""
    message: str
    severity: NotRequired[str]
    """"error" (the default): the specification forbids it, the call is refused unless
    forced. "warning": legal OCPP that is probably a mistake; sent, and reported."""


class Origin(StrEnum):
    """Who asked for an operation; journalled with it."""

    OPERATOR = "operator"
    """The operator API (Bearer token)."""
    PAGE = "page"
    """The technician's web page."""
    SITE = "site"
    """The site control loop (safe profiles and leases)."""
    CLOUD = "cloud"
    """The fleet operator's cloud CSMS, relayed."""
    SYSTEM = "system"
    """The CSMS on its own (e.g. re-applying recorded profiles after a reboot)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """A charger's answer to an operation, and what the checks found legal but odd."""

    response: Json
    warnings: list[Problem] = field(default_factory=list)


# Checks a CSMS→charger request against rules a schema cannot express; returns the
# problems found (empty: fine to send). See `edge.operations` for what refuses a call.
Check = Callable[[Services, Charger, Json], list[Problem]]

# Records the effect of a CSMS→charger CALL the charger answered (request, response).
Recorder = Callable[[Services, Charger, Json, Json], None]


class SiteCapsSetter(Protocol):
    """Whole-charger limits as caps inside the site's allocation (`edge.site.caps.SiteCaps`)."""

    async def set(
        self, charger: Charger, limit: float, unit: ChargingRateUnit, until: datetime | None
    ) -> Json:
        """Cap the charger; the cap as stored."""
        ...

    async def clear(self, charger: Charger) -> Json | None:
        """Remove the charger's cap; the cap removed, or None."""
        ...

    async def set_cloud_profile(self, charger: Charger, profile: ChargingProfile) -> None:
        """Keep the cloud's ChargePointMaxProfile as a cap."""
        ...

    async def clear_cloud_profiles(
        self,
        charger: Charger,
        *,
        profile_id: int | None,
        connector_id: int | None,
        purpose: ChargingProfilePurpose | None,
        stack_level: int | None,
    ) -> int:
        """Remove the cloud's ChargePointMaxProfiles a ClearChargingProfile matches."""
        ...


class Sender(Protocol):
    """What a feature's flow needs of the pipeline (`edge.operations.pipeline.Operations`):
    the flows take this, so features never import the pipeline that imports them."""

    services: Services
    site_caps: SiteCapsSetter | None
    """With a grid meter, whole-charger limits are caps inside the site's allocation."""

    def connected(self, charger_id: str) -> bool:
        """Whether the charger has a live connection."""
        ...

    async def send(
        self,
        charger: Charger,
        action: str,
        payload: Json,
        *,
        origin: Origin,
        force: bool = False,
        record: Callable[[Json], None] | None = None,
    ) -> Outcome:
        """See `Operations.send`."""
        ...
