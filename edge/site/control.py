"""What the site controller knows of each charger, and how it reads their reports.

`ChargerControl` holds one charger's lease state, its reports and what was learned of
it. The grid meter and the chargers' MeterValues describe different moments, and a limit
the controller just changed shows up in one before the other: `ChargerControl.band` says
what the charger may be drawing at the moment of a reading (`profiles.house_load`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from profiles.house_load import EvBand, ev_band
from profiles.lease import HeldLease, Strategy, refresh_due, rises

__all__ = [
    "DRAW_MAX_AGE",
    "EV_FOLLOW",
    "EV_REACTION",
    "METER_LAG",
    "ChargerControl",
    "MeterProbe",
    "Phases",
]

Phases = tuple[float, float, float]

DRAW_MAX_AGE = 120.0  # s: an older Current.Import sample says nothing about now
HOLD_WINDOW = 60.0  # s: reclaim judges the highest draw of this window
EV_REACTION = 5.0  # s an EV may take to follow a new limit (IEC 61851-1: 5 s)
EV_FOLLOW = 2.0  # s most EVs take to shed a lower limit (the estimate's transition window)
METER_LAG = 1.5  # s a reading may lag the site (register update and poll)
CLOCK_SAMPLES = 5  # reports needed to judge a charger's clock
CLOCK_SPAN = 30.0  # s those reports must spread over to show a clock behind ours


@dataclass(frozen=True, slots=True)
class MeterProbe:
    """The grid meter when a probe's lease was sent: its change shows the EV's phases
    (`edge.site.probe`)."""

    at: float
    baseline_a: Phases
    limit_a: float


@dataclass(slots=True)
class ChargerControl:
    """What the controller knows of one charger; runtime state, except `learned`."""

    charger_id: str
    wiring: tuple[int, ...]
    min_a: float
    max_a: float
    strategy_index: int = 0
    quirks: list[str] = field(default_factory=list)
    min_obeyed_a: float = 0.0
    safe_a: float | None = None
    safe_strategy: int | None = None
    lease_a: float | None = None
    valid_to: float | None = None
    changed_at: float | None = None
    """When the lease last changed value (epoch s)."""
    maybe_leases: list[HeldLease] = field(default_factory=list)
    """Leases it may hold besides `lease_a`: in flight, unanswered, or kept over a reboot
    (`profiles.lease`: they bound the other chargers' lease ends until they end)."""
    maybe_safes: list[float | None] = field(default_factory=list)
    """Safe values that may be in force besides `safe_a`: in flight, unanswered, or kept
    over a reboot."""
    limit_before_a: float = math.inf
    """The limit in force (charger total) before that change."""
    busy: bool = False
    lowering: bool = False
    target_a: float | None = None
    allocation_a: float | None = None
    draws: dict[int, tuple[float, Phases]] = field(default_factory=dict)
    history: deque[tuple[float, Phases]] = field(default_factory=deque)
    held: Phases | None = None
    lags: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=CLOCK_SAMPLES))
    """(received, received - sample timestamp) of recent reports: the charger's clock."""
    clock_warned: bool = False
    ev_phases: int | None = None
    transactions: frozenset[int] = frozenset()
    started_at: float = 0.0
    arrived_at: float | None = None
    """When this controller saw a new EV's session (epoch s), until the session first
    takes part in an allocation (`SiteController._allocate`: arrivals are gathered)."""
    running_since: float | None = None
    """When the allocation last started the EV (from 0 A to its minimum or more)."""
    paused_since: float | None = None
    """When the allocation last paused the EV (to 0 A) during its session."""
    pauses: int = 0
    """Pauses in the current session (none counted while the site is in fallback)."""
    probe_triggers: int = 0
    """TriggerMessage(MeterValues) sent to learn this session's phases (`edge.site.probe`)."""
    probe_next_at: float = 0.0
    triggers_work: bool = True
    """False once the charger answered a TriggerMessage with anything but Accepted."""
    meter_probe: MeterProbe | None = None
    """The reading its probe started from, while the grid meter is watched for it."""
    reclaimed: bool = False
    """Its last allocation was capped because its EV drew less: kept while no report
    shows otherwise (`SiteController._allocate`)."""
    overdraws: int = 0
    failures: int = 0
    retry_at: float = 0.0
    last_error: str | None = None
    # Refreshed at the start of every cycle (`SiteController._observe`):
    strategy: Strategy | None = None
    cap_a: float | None = None
    """The lower of the two caps below, if any."""
    operator_cap_a: float | None = None
    cloud_cap_a: float | None = None
    connectors: int = 1
    seen_configuration: object = None
    seen_connectors: int = -1
    steerable: bool = False
    """Booted, connected and limitable: a charger the cycle can send to."""

    @property
    def per_connector(self) -> bool:
        return self.strategy is not None and self.strategy.per_connector

    def learned(self) -> dict[str, Any]:
        """What survives a restart (the charger's ``siteControl`` document field)."""
        return {
            "strategy": self.strategy_index,
            "quirks": list(self.quirks),
            "minObeyedA": self.min_obeyed_a,
        }

    def effective_total(self, now: float) -> float:
        """What the charger as a whole may draw per phase under its current limit (a
        per-connector limit counts once per transaction)."""
        value = self.effective_a(now)
        if self.per_connector:
            value *= max(1, len(self.transactions))
        return value

    def effective_a(self, now: float) -> float:
        """The lease value the charger applies now (inf: not known to be limited); the
        same rule as `LeaseView.effective_a`, without building one on every cycle."""
        if self.lease_a is not None and self.valid_to is not None and self.valid_to > now:
            return self.lease_a
        return math.inf if self.safe_a is None else self.safe_a

    def lease_due(self, now: float, lease_time: float) -> bool:
        """Whether its lease is due for a refresh (`profiles.lease.refresh_due`)."""
        lease = self.lease_a
        rising = lease is None or rises(lease, (self.safe_a, *self.maybe_safes))
        return refresh_due(self.valid_to, now, lease_time, rising=rising)

    def draw_a(self, now: float) -> Phases | None:
        """The latest draw over all connectors on the grid's phases; None: no fresh sample."""
        if len(self.draws) == 1:  # the common case, on every cycle: no lists
            ((at, currents),) = self.draws.values()
            return currents if now - at <= DRAW_MAX_AGE else None
        fresh = [currents for at, currents in self.draws.values() if now - at <= DRAW_MAX_AGE]
        if not fresh:
            return None
        return (
            sum(c[0] for c in fresh),
            sum(c[1] for c in fresh),
            sum(c[2] for c in fresh),
        )

    def record_draw(self, now: float, total: Phases) -> None:
        """Keep `total` for reclaim (`held`: the highest of the last `HOLD_WINDOW` s)."""
        history = self.history
        history.append((now, total))
        while now - history[0][0] > HOLD_WINDOW:
            history.popleft()
        self.held = (
            max(c[0] for _, c in history),
            max(c[1] for _, c in history),
            max(c[2] for _, c in history),
        )

    def used_phases(self) -> tuple[int, ...]:
        """The grid phases its EV draws on (every wired one while that is not known)."""
        return self.wiring[:1] if self.ev_phases == 1 else self.wiring

    def band(self, limit_a: float, read_at: float, now: float) -> EvBand:
        """What it may be drawing at ``read_at``, under `limit_a` (charger total, per
        phase; see `profiles.house_load.ev_band`)."""
        report = self.draw_a(now)
        report_at = min((at for at, _ in self.draws.values()), default=None)
        return ev_band(
            phases=self.used_phases(),
            limit_a=limit_a,
            max_a=self.max_a * max(1, len(self.transactions)),
            report=report,
            report_at=report_at if report is not None else None,
            changed_at=self.changed_at,
            limit_before_a=self.limit_before_a,
            read_at=read_at,
            reaction_s=EV_REACTION,
            meter_lag_s=METER_LAG,
            follow_s=EV_FOLLOW,
        )

    def clock_behind_s(self) -> float | None:
        """How far the charger's clock is behind ours (negative: ahead), from its reports.

        A report can arrive late but never early, so the least lag of recent reports
        bounds the offset; reports that all arrived in one burst (a charger sending
        its queue after being offline) say nothing and give None.
        """
        if len(self.lags) < CLOCK_SAMPLES:
            return None
        least = min(lag for _, lag in self.lags)
        if least > 0 and self.lags[-1][0] - self.lags[0][0] < CLOCK_SPAN:
            return None
        return least

    def seen_since_change(self) -> bool:
        """Whether a report came after the EV had time to follow its current limit."""
        if self.changed_at is None:
            return True
        return bool(self.history) and self.history[-1][0] >= self.changed_at + EV_REACTION

    def held_a(self, now: float) -> Phases | None:
        """The highest recent draw, computed when a sample arrives; None once the samples
        are stale (a charger that stopped reporting)."""
        if not self.history or now - self.history[-1][0] > DRAW_MAX_AGE:
            return None
        return self.held
