"""What `bench.site_scenarios` measures on a site's timeline: pure functions, no I/O.

The timeline is `edge.sim.site.SitePoint`s (the true grid current per phase,
the true base load, each charger's draw), one per simulation tick; each point holds
until the next one, so the last point of a window counts for no time. An EV is an `Ev`:
what a `SimCharger` recorded of its session, and what its EV would draw if offered
everything (its *demand*).

Definitions:

- *available* on a phase: fuse - margin - true base load (PV export makes it larger);
- *utilisation* of a tick: sum_p min(EV draw_p, available_p) / sum_p available_p, as
  the realistic site tests define it; averaged over the ticks of a window;
- *demand served* of a tick: sum_p min(EV draw_p, wanted_p) / sum_p wanted_p, where
  wanted_p = min(demand_p, available_p) and demand_p is what the EVs in a session would
  draw on phase p if offered everything (an EV that gave up still counts: giving up is
  the outcome being judged). On a site with room for all, utilisation stays low however
  well the site is run; demand served is 1 when every EV gets what it can use;
- *overshoot*: the integral over time of how far the worst phase is above the fuse
  (A·s), and the longest stretch of consecutive time above it;
- an EV's *draw* at a tick: the most it drew on any phase (A per phase); *charging*:
  a draw of 6 A or more; *starved*: charging at under a quarter of its session's ticks;
- *fairness*: Jain's index J = (sum x_i)^2 / (n sum x_i^2) over x_i = an EV's mean draw
  over its session, counted among the EVs that could use more, i.e. whose mean draw is
  under 95 % of their mean demand (EVs held back by the site, not by themselves). 1 is
  perfectly even, 1/n is one EV taking everything; with fewer than two such EVs there
  is nobody to be unfair to and J is None;
- *first offer*: seconds from StartTransaction to the first offer of 6 A or more (the
  limit the charger acts on; the EV then needs its ramp time to draw it).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from edge.sim.site import MIN_CHARGE_A, SimCharger, SitePoint
from profiles.allocation import parse_wiring

__all__ = [
    "STARVED_SHARE",
    "Ev",
    "available",
    "charging_share",
    "demand_served",
    "draw",
    "fairness",
    "jain",
    "mean_demand",
    "mean_draw",
    "mean_over",
    "overshoot",
    "utilisation",
]

STARVED_SHARE = 0.25  # charging at under this share of its session's ticks: starved
LIMITED = 0.95  # mean draw under this share of mean demand: the EV could use more
Phases3 = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class Ev:
    """One EV's session as its charger recorded it, and what the EV can draw."""

    charger_id: str
    start: datetime | None  # StartTransaction (None: never started)
    phases: tuple[int, ...]  # the physical phases it draws on (0: L1)
    max_a: float  # per phase: the lower of the charger's rating and the EV's maximum
    taper_a: float | None = None  # from taper_after_s into the session it draws at most this
    taper_after_s: float = 0.0
    pauses: tuple[datetime, ...] = ()
    resumes: tuple[datetime, ...] = ()
    gave_up_at: datetime | None = None
    set_calls: tuple[datetime, ...] = ()  # arrival of every SetChargingProfile
    set_limits: tuple[float, ...] = ()  # the limit each of them carried

    @classmethod
    def of(cls, sim: SimCharger) -> Ev:
        wiring = parse_wiring(sim.wiring)
        return cls(
            charger_id=sim.charger_id,
            start=sim.transaction_start,
            phases=wiring[: min(len(wiring), sim.ev_phases)],
            max_a=min(sim.rating_a, sim.ev_max_a),
            taper_a=sim.taper_a,
            taper_after_s=sim.taper_after_s,
            pauses=tuple(sim.pauses),
            resumes=tuple(sim.resumes),
            gave_up_at=sim.gave_up_at,
            set_calls=tuple(at for at, _, _ in sim.set_calls),
            set_limits=tuple(
                float(
                    req["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0][
                        "limit"
                    ]
                )
                for _, req, _ in sim.set_calls
            ),
        )

    def in_session(self, t: datetime) -> bool:
        return self.start is not None and t >= self.start

    def demand_a(self, t: datetime) -> float:
        """What the EV would draw per phase at `t` if offered everything (0 outside its
        session)."""
        if self.start is None or t < self.start:
            return 0.0
        if self.taper_a is not None and (t - self.start).total_seconds() >= self.taper_after_s:
            return min(self.max_a, self.taper_a)
        return self.max_a

    def first_offer_s(self) -> float | None:
        """StartTransaction → the first offer of 6 A or more (None: never)."""
        if self.start is None or not self.resumes:
            return None
        return (self.resumes[0] - self.start).total_seconds()

    def calls_per_minute(self, end: datetime) -> float | None:
        """SetChargingProfile calls that arrived during the session up to `end`, per minute."""
        if self.start is None or end <= self.start:
            return None
        calls = sum(1 for at in self.set_calls if self.start <= at <= end)
        return calls / ((end - self.start).total_seconds() / 60.0)


def _spans(points: Sequence[SitePoint]) -> list[tuple[SitePoint, float]]:
    """Each point with the seconds it holds (until the next one)."""
    return [(a, (b.t - a.t).total_seconds()) for a, b in itertools.pairwise(points)]


def overshoot(points: Sequence[SitePoint]) -> tuple[float, float, float]:
    """(A·s above the fuse on the worst phase, the longest stretch above it in s, the
    largest excess in A); import or export."""
    area = longest = run = 0.0
    for point, seconds in _spans(points):
        if point.overload_a > 0:
            area += point.overload_a * seconds
            run += seconds
            longest = max(longest, run)
        else:
            run = 0.0
    return area, longest, max((p.overload_a for p in points), default=0.0)


def time_above(points: Sequence[SitePoint], limit: float) -> float:
    """Seconds any phase was above `limit` (import or export)."""
    return sum(s for p, s in _spans(points) if max(abs(a) for a in p.grid_a) > limit)


def available(point: SitePoint, margin: float) -> Phases3:
    """What the EVs may draw on each phase at `point`: fuse - margin - true base load."""
    a = [max(0.0, point.fuse_a - margin - point.base_a[p]) for p in range(3)]
    return a[0], a[1], a[2]


def _ev_load(point: SitePoint) -> Phases3:
    a = [max(0.0, point.grid_a[p] - point.base_a[p]) for p in range(3)]
    return a[0], a[1], a[2]


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def utilisation(points: Sequence[SitePoint], margin: float) -> float | None:
    """Mean over `points` of sum_p min(EV draw_p, available_p) / sum_p available_p."""
    ratios = []
    for point in points:
        room = available(point, margin)
        if sum(room) > 0:
            ev = _ev_load(point)
            ratios.append(sum(min(ev[p], room[p]) for p in range(3)) / sum(room))
    return _mean(ratios)


def demand_a(point: SitePoint, evs: Sequence[Ev]) -> Phases3:
    """What the EVs in a session would draw on each phase at `point` if offered everything."""
    out = [0.0, 0.0, 0.0]
    for ev in evs:
        want = ev.demand_a(point.t)
        for p in ev.phases:
            out[p] += want
    return out[0], out[1], out[2]


def demand_served(points: Sequence[SitePoint], margin: float, evs: Sequence[Ev]) -> float | None:
    """Mean over `points` of sum_p min(EV draw_p, wanted_p) / sum_p wanted_p, wanted_p =
    min(demand_p, available_p); ticks where nothing is wanted are left out."""
    ratios = []
    for point in points:
        room = available(point, margin)
        demand = demand_a(point, evs)
        wanted = [min(room[p], demand[p]) for p in range(3)]
        if sum(wanted) > 0:
            ev = _ev_load(point)
            ratios.append(sum(min(ev[p], wanted[p]) for p in range(3)) / sum(wanted))
    return _mean(ratios)


def draw(point: SitePoint, charger_id: str) -> float:
    """The most one charger drew on any phase at `point`."""
    return max(point.draw_of(charger_id))


def mean_over(
    points: Sequence[SitePoint], ev: Ev, value: Callable[[SitePoint], float]
) -> float | None:
    """The mean of `value` over the points of `ev`'s session (None: no such point)."""
    return _mean([value(p) for p in points if ev.in_session(p.t)])


def mean_draw(points: Sequence[SitePoint], ev: Ev) -> float | None:
    """The EV's mean draw (A per phase) over its session."""
    cid = ev.charger_id
    return mean_over(points, ev, lambda p: draw(p, cid))


def mean_demand(points: Sequence[SitePoint], ev: Ev) -> float | None:
    """The EV's mean demand (A per phase) over its session."""
    return mean_over(points, ev, lambda p: ev.demand_a(p.t))


def charging_share(points: Sequence[SitePoint], ev: Ev) -> float | None:
    """The share of its session's points at which the EV drew 6 A or more."""
    return mean_over(points, ev, lambda p: float(draw(p, ev.charger_id) >= MIN_CHARGE_A))


def jain(values: Sequence[float]) -> float | None:
    """Jain's fairness index of `values` (None: fewer than two, or all zero)."""
    if len(values) < 2:
        return None
    square = sum(v * v for v in values)
    if square <= 0:
        return None
    return sum(values) ** 2 / (len(values) * square)


def fairness(points: Sequence[SitePoint], evs: Sequence[Ev]) -> tuple[float | None, list[str]]:
    """Jain's index over the mean draws of the EVs that could use more (see the module
    docstring), and which EVs those are."""
    limited: dict[str, float] = {}
    for ev in evs:
        drawn, wanted = mean_draw(points, ev), mean_demand(points, ev)
        if drawn is None or wanted is None or wanted <= 0:
            continue
        if drawn < LIMITED * wanted:
            limited[ev.charger_id] = drawn
    return jain(list(limited.values())), list(limited)
