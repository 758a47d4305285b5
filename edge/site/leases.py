"""The lease each charger holds, as the site controller built it.

Leases change every few seconds and end within a minute: they are kept in memory
only, as the profile objects that were sent (no JSON kept, no SD-card write per
refresh). After a restart the next control cycle sends new ones. The smart charging
feature adds a charger's lease to the profiles it believes the charger holds
(`edge.features.smart_charging.installed_profiles`).
"""

from __future__ import annotations

from profiles.installed import InstalledProfile

__all__ = ["LeaseBook"]


class LeaseBook:
    """The accepted lease of each charger, by charger id."""

    def __init__(self) -> None:
        self._leases: dict[str, InstalledProfile] = {}

    def get(self, charger_id: str) -> InstalledProfile | None:
        return self._leases.get(charger_id)

    def set(self, charger_id: str, lease: InstalledProfile | None) -> None:
        """Record the charger's lease (None: it holds none)."""
        if lease is None:
            self._leases.pop(charger_id, None)
        else:
            self._leases[charger_id] = lease
