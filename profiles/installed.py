"""The charging profiles a charger holds, kept the way the charger keeps them.

The CSMS mirrors each charger's installed profiles so it can compute what the
charger will do and restore them after a reset. `InstalledProfiles` is an
immutable value object: every change returns a new one (plus what was removed),
so a caller can persist the new value and only then swap it in.

Rules (OCPP 1.6 §3.13.2, §5.5, §5.16; errata 3.25-3.26):

* SetChargingProfile: "If a charging profile with the same chargingProfileId, or the
  same combination of stackLevel / ChargingProfilePurpose, exists on the Charge
  Point, the new charging profile SHALL replace the existing charging profile".
  The id match is charge-point wide; the stackLevel/purpose match is per connector
  (a TxDefaultProfile on connector 1 does not replace one on connector 0 or 2).
* ClearChargingProfile: `id` given → only that profile, other fields ignored;
  otherwise the logical AND of connectorId / chargingProfilePurpose / stackLevel;
  no fields at all → every profile. Accepted if anything matched, else Unknown.
* A TxProfile ends with its transaction.

Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from profiles.model import (
    ChargingProfile,
    ChargingProfilePurpose,
    ProfileFormatError,
    parse_profile,
    render_profile,
)

__all__ = ["InstalledProfile", "InstalledProfiles"]


@dataclass(frozen=True, slots=True)
class InstalledProfile:
    """A profile as installed on one connector (0: the whole charge point)."""

    connector_id: int
    profile: ChargingProfile


@dataclass(frozen=True, slots=True)
class InstalledProfiles:
    """Immutable set of a charger's installed profiles, in installation order.

    A replacement takes the end of the order (it is a new installation).
    """

    profiles: tuple[InstalledProfile, ...] = ()

    def __len__(self) -> int:
        return len(self.profiles)

    def __iter__(self) -> Iterator[InstalledProfile]:
        return iter(self.profiles)

    def set(self, connector_id: int, profile: ChargingProfile) -> InstalledProfiles:
        """Install `profile` on `connector_id` as an Accepted SetChargingProfile does.

        "If a charging profile with the same chargingProfileId, or the same
        combination of stackLevel / ChargingProfilePurpose, exists on the Charge
        Point, the new charging profile SHALL replace the existing charging profile"
        (1.6 §5.16.3): same id on any connector, or same purpose and stackLevel on
        the same connector. No validation here: see `profiles.validation`.
        """

        def replaced(item: InstalledProfile) -> bool:
            old = item.profile
            if old.charging_profile_id == profile.charging_profile_id:
                return True
            return (
                item.connector_id == connector_id
                and old.purpose is profile.purpose
                and old.stack_level == profile.stack_level
            )

        kept = tuple(item for item in self.profiles if not replaced(item))
        return InstalledProfiles((*kept, InstalledProfile(connector_id, profile)))

    def clear(
        self,
        *,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: ChargingProfilePurpose | None = None,
        stack_level: int | None = None,
    ) -> tuple[InstalledProfiles, list[InstalledProfile]]:
        """Apply ClearChargingProfile; return the new set and the profiles removed.

        "id given → other fields ignored; otherwise logical AND of
        connectorId/purpose/stackLevel; no fields → clear all" (errata 3.25-3.26).
        connectorId 0 matches only profiles installed on connector 0. The charger
        answers Accepted when the removed list is non-empty, Unknown when it is empty.
        """

        def matches(item: InstalledProfile) -> bool:
            p = item.profile
            if profile_id is not None:
                return p.charging_profile_id == profile_id
            return (
                (connector_id is None or item.connector_id == connector_id)
                and (purpose is None or p.purpose is purpose)
                and (stack_level is None or p.stack_level == stack_level)
            )

        return self._remove(matches)

    def transaction_ended(
        self, connector_id: int, transaction_id: int | None
    ) -> tuple[InstalledProfiles, list[InstalledProfile]]:
        """Drop the TxProfiles that end with a transaction; return the new set and those removed.

        "A TxProfile ... ends when the transaction ends" (1.6 §3.13.2): the TxProfiles
        on `connector_id` carrying `transaction_id` or no transactionId at all. With
        `transaction_id` None (not known), every TxProfile on the connector goes.
        TxDefaultProfile and ChargePointMaxProfile stay.
        """

        def ends(item: InstalledProfile) -> bool:
            p = item.profile
            return (
                item.connector_id == connector_id
                and p.purpose is ChargingProfilePurpose.TX
                and (
                    transaction_id is None
                    or p.transaction_id is None
                    or p.transaction_id == transaction_id
                )
            )

        return self._remove(ends)

    def for_connector(self, connector_id: int) -> list[InstalledProfile]:
        """The profiles that can apply to `connector_id`: connector 0's and its own.

        Connector 0 gets only its own. Which of them wins is the composite's job.
        """
        return [item for item in self.profiles if item.connector_id in (0, connector_id)]

    def all(self) -> list[InstalledProfile]:
        """Every installed profile, in installation order."""
        return list(self.profiles)

    def to_json(self) -> list[dict[str, Any]]:
        """Persisted form: `[{"connectorId": n, "chargingProfile": {...OCPP JSON...}}]`."""
        return [
            {"connectorId": item.connector_id, "chargingProfile": render_profile(item.profile)}
            for item in self.profiles
        ]

    @classmethod
    def from_json(cls, data: Sequence[Any]) -> InstalledProfiles:
        """Inverse of `to_json`, kept verbatim (no replacement rules re-applied).

        Raises:
            ProfileFormatError: an entry is not `{"connectorId": int, "chargingProfile": {...}}`.
        """
        items = []
        for index, entry in enumerate(data):
            try:
                connector_id = entry["connectorId"]
                raw_profile = entry["chargingProfile"]
            except (KeyError, TypeError):
                raise ProfileFormatError(
                    f"[{index}]: needs connectorId and chargingProfile"
                ) from None
            if not isinstance(connector_id, int) or isinstance(connector_id, bool):
                raise ProfileFormatError(f"[{index}].connectorId: not an integer: {connector_id!r}")
            items.append(InstalledProfile(connector_id, parse_profile(raw_profile)))
        return cls(tuple(items))

    def _remove(
        self, doomed: Callable[[InstalledProfile], bool]
    ) -> tuple[InstalledProfiles, list[InstalledProfile]]:
        removed = [item for item in self.profiles if doomed(item)]
        if not removed:
            return self, []
        kept = tuple(item for item in self.profiles if not doomed(item))
        return InstalledProfiles(kept), removed
