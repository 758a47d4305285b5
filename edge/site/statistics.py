"""A frozen snapshot of the site controller, for those who show it (API, metrics, page).

`SiteController.statistics()` builds one; `edge.site.report` renders it. Readers never
touch the controller's live state, so the controller imports nothing of its readers.
Times are epoch seconds (`at`) as the control loop keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers import MeterReading

__all__ = ["ChargerStatistics", "MeterStatistics", "SiteStatistics"]

Phases = tuple[float, float, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterStatistics:
    """The grid meter: its settings, latest valid reading and read counts."""

    driver: str
    transport: str
    poll_interval: float
    stale_after: float
    reading: MeterReading | None
    age_s: float | None
    """Seconds since the reading was taken (monotonic), None without one."""
    last_error: str | None
    reads_ok: int
    reads_failed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerStatistics:
    """One charger under site control."""

    charger_id: str
    connected: bool
    wiring: tuple[int, ...]
    ev_phases: int | None
    transactions: tuple[int, ...]
    allocation_a: float | None
    target_a: float | None
    lease_a: float | None
    lease_expires: float | None
    lease_active: bool
    safe_a: float | None
    """The safe value the last plan computed."""
    safe_installed_a: float | None
    """The safe value the charger accepted."""
    drawn_a: Phases | None
    clock_behind_s: float | None
    waiting: bool
    cap_a: float | None
    operator_cap_a: float | None
    cloud_cap_a: float | None
    strategy: str | None
    controllable: bool
    quirks: tuple[str, ...]
    last_error: str | None
    pauses: int = 0
    """Pauses of the current session."""
    probing: bool = False
    """Its EV's phase use is being learned (budgeted on every wired phase meanwhile)."""
    running_since: float | None = None
    paused_since: float | None = None
    min_a: float = 6.0
    max_a: float = 32.0
    """Its configured current range (A per phase)."""
    used_phases: tuple[int, ...] = (0, 1, 2)
    """The grid phases its EV is budgeted on (every wired one while not known)."""
    reclaimed: bool = False
    """Its allocation is capped because its EV draws less (reclaim)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteStatistics:
    """The whole site at `at` (epoch s)."""

    at: float
    state: str
    """"starting", "normal" or "fallback"."""
    fallback: bool
    fallback_since: float | None
    fallback_reason: str | None
    meter: MeterStatistics
    max_current_a: Phases
    margin_a: float
    fallback_current_a: float
    lease_time: float
    house_a: Phases | None = None
    """The estimated non-EV load per phase (negative: export)."""
    capacity_a: Phases | None
    headroom_a: Phases | None
    fallback_fits: bool | None
    fallback_zeroed: tuple[str, ...]
    chargers: tuple[ChargerStatistics, ...]
    waiting: tuple[str, ...]
    notes: tuple[str, ...]
    cycles: int
    cycle_cpu_s: float
    cycle_cpu_total_s: float
