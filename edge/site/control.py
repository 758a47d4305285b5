"""What the site controller knows of each charger, and how it reads their reports.

`ChargerControl` holds one charger's lease state, its reports and what was learned of
it. The rest is about timing: the grid meter and the chargers' MeterValues describe
different moments, and a limit the controller just changed shows up in one before the
other. `Ramp`, `merge_ramp` and `ramp_credit` keep such a change from reading as a
change of the other loads (see `Ramp`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from profiles.lease import Strategy

__all__ = [
    "DRAW_MAX_AGE",
    "EV_REACTION",
    "FOLLOW_TOLERANCE_A",
    "METER_LAG",
    "RAMP_MAX_AGE",
    "ChargerControl",
    "Phases",
    "Ramp",
    "merge_ramp",
    "ramp_credit",
]

Phases = tuple[float, float, float]

DRAW_MAX_AGE = 120.0  # s: an older Current.Import sample says nothing about now
HOLD_WINDOW = 60.0  # s: reclaim judges the highest draw of this window
EV_REACTION = 5.0  # s an EV may take to follow a lower limit (IEC 61851-1: 5 s)
METER_LAG = 1.5  # s a reading may lag the site (register update and poll)
RAMP_MAX_AGE = EV_REACTION + METER_LAG  # s: by then the meter shows any change an EV made
CLOCK_SAMPLES = 5  # reports needed to judge a charger's clock
CLOCK_SPAN = 30.0  # s those reports must spread over to show a clock behind ours
FOLLOW_TOLERANCE_A = 1.0  # a report this close to the new limit shows the EV followed it


@dataclass(frozen=True, slots=True)
class Ramp:
    """A change of a charger's limit that the meter and the reports do not agree on yet.

    After a raise the meter shows the EV taking its new limit before the charger reports
    it; after a lowering the charger may report its lower draw before the (lagging) meter
    shows it. Either way the non-EV estimate (meter minus reports) rises for a while by
    what the EV draws beyond its report. Until both have settled, such a rise is the
    EV's, not the house's, up to `limit_a` (the higher of the limits before and after)
    minus the report. Otherwise every change would be answered by a phantom load and
    taken back, again and again.
    """

    at: float
    limit_a: float
    non_ev_before: Phases
    target_a: float = 0.0
    """The limit after the change: a report near it shows the EV followed."""
    settled_at: float | None = None
    """When a reading must show the change (a following report + `METER_LAG`)."""


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
    limit_before_a: float = math.inf
    """The limit in force (charger total) before that change."""
    ramp: Ramp | None = None
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
    running_since: float | None = None
    """When the allocation last started the EV (from 0 A to its minimum or more)."""
    paused_since: float | None = None
    """When the allocation last paused the EV (to 0 A) during its session."""
    pauses: int = 0
    """Pauses in the current session (none counted while the site is in fallback)."""
    overdraws: int = 0
    failures: int = 0
    retry_at: float = 0.0
    last_error: str | None = None
    # Refreshed at the start of every cycle (`SiteController._observe`):
    strategy: Strategy | None = None
    cap_a: float | None = None
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

    def effective_a(self, now: float) -> float:
        """The lease value the charger applies now (inf: not known to be limited); the
        same rule as `LeaseView.effective_a`, without building one on every cycle."""
        if self.lease_a is not None and self.valid_to is not None and self.valid_to > now:
            return self.lease_a
        return math.inf if self.safe_a is None else self.safe_a

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

    def draw_seen_by_meter(self, read_at: float, now: float) -> Phases | None:
        """The draw to subtract from a meter reading taken at `read_at` (epoch s).

        The meter shows the site up to `METER_LAG` s late, and reports newer than that
        may show an EV that took a raise the reading does not show yet: counting it
        would make the raise look like room freed by the other loads. So: per phase, the
        least of the reports since ``read_at - METER_LAG`` and the last one before.
        Underestimating an EV's draw leaves more to the non-EV load, the safe side.
        """
        history = self.history
        if not history or now - history[-1][0] > DRAW_MAX_AGE:
            return None
        if len(self.draws) != 1:
            return self.draw_a(now)  # several connectors: sums of their latest reports
        cutoff = read_at - METER_LAG
        low = list(history[-1][1])
        for at, currents in reversed(history):
            for p in range(3):
                if currents[p] < low[p]:
                    low[p] = currents[p]
            if at < cutoff:
                break
        return low[0], low[1], low[2]

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


def merge_ramp(
    pending: Ramp | None, at: float, limit_a: float, non_ev: Phases, target_a: float
) -> Ramp:
    """A new change. Its baseline is the non-EV estimate the change was decided on
    (which already credits a change still pending); the higher limit stays."""
    if pending is not None:
        limit_a = max(limit_a, pending.limit_a)
    return Ramp(at, limit_a, non_ev, target_a)


def ramp_credit(
    non_ev: Phases, ramps: list[tuple[ChargerControl, Ramp, Phases | None, float]]
) -> Phases:
    """How much of the non-EV estimate's rise since recent limit changes is those EVs
    (see `Ramp`): the rise, at most what the EVs may draw beyond their reports, per
    phase. `bound` is the most an EV may draw now (its limit, or the previous one
    while it may still be following a lowering)."""
    credit = [0.0, 0.0, 0.0]
    for p in range(3):
        before = math.inf
        explained = 0.0
        for control, ramp, draw, bound in ramps:
            if p not in (control.wiring[:1] if control.ev_phases == 1 else control.wiring):
                continue
            before = min(before, ramp.non_ev_before[p])
            most = min(ramp.limit_a, bound)
            explained += max(0.0, most - (draw[p] if draw is not None else 0.0))
        if explained > 0:
            credit[p] = min(max(0.0, non_ev[p] - before), explained)
    return credit[0], credit[1], credit[2]
