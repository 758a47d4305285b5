"""Site load allocation: per-phase current limits for EV sessions under the grid fuse.

Pure (no clock, no I/O): the caller passes ``now`` and the latest measurements and
gets new limits back; it calls `allocate` again whenever a session starts or stops
or the load moves (rebalancing is simply recomputation). All currents are amperes
per phase; phases are physical indices 0, 1, 2 for L1, L2, L3.

Site model
    capacity per phase = ``limit_a - margin_a - non-EV load`` where the non-EV load
    is the meter reading minus what the EVs draw (`non_ev_load`, never negative; a
    session without a measurement counts as drawing 0, so its draw is attributed
    to the non-EV load: if in doubt, allocate less).

Phase use (`used_phases`)
    A charger's ``wiring`` gives the physical phase of each charger phase
    (``L2L3L1`` → ``(1, 2, 0)``, a 1-phase charger on L3 → ``(2,)``). A 3-phase EV
    uses every wired phase; a 1-phase EV uses the first wired phase; an EV whose
    phase use is not known yet (``ev_phases=None``) is budgeted on every wired
    phase. `learn_phases` finds 1 vs 3 from the per-phase current.

Algorithm (`allocate`)
    1. Admission, with dwell times (real EVs tolerate few pauses; several stop for good
       after repeated ones, and every pause wears contactors):
       a. sessions running within their turn (``max(min_run_s, rotation_period)`` from
          their start) come first, oldest start first: an EV started stays started,
          unless the fuse cannot hold its minimum;
       b. sessions paused less than ``min_pause_s`` ago stay paused;
       c. everyone else, longest in the queue first: a waiting session from its arrival
          or last pause, a running one past its turn from now (`_admission_order`).
          When not every minimum fits, each waiting EV's turn comes within minutes.
       In that order a session is admitted when its minimum fits on every phase it uses
       next to the minima already admitted; one at 0 A now (new, or paused) needs
       ``start_margin_a`` more but may overrun by half ``noise_a`` (a house load estimate
       settling on a noisy meter's mean must not keep it waiting), one running may
       overrun by ``noise_a`` (what a reading moves by itself is no reason to pause an
       EV).
       Everyone else waits at 0 A. A session whose phase use is unknown is budgeted on
       every wired phase, which is what makes its admission a bounded *probe*: it runs
       at (at least) its minimum, so it draws and its phase use is learned
       (`learn_phases`), after which only its own phases are budgeted. It is never
       left at 0 A to be learned: an EV at 0 A never draws.
    2. Cap: ``min(max_a, demand)``; the demand is unlimited unless the EV draws at
       least ``reclaim_step_a`` less than its previous limit, then it is its draw
       plus ``reclaim_step_a`` (never below its minimum). The draw judged is
       ``held_a`` (e.g. the maximum over the last minute) when given, so only sustained
       under-drawing reclaims.
    3. Weighted max-min fairness by progressive filling: every admitted session
       gets ``clamp(weight · t, min, cap)``; ``t`` rises until a phase is full,
       sessions using a full phase freeze, the rest go on. A phase whose load is rising
       (``SiteState.rising_a``) is full that much earlier.
    4. Limits are rounded down to 0.1 A (OCPP), then 0.1 A steps are handed back,
       lowest weighted share first, while every phase of the session has room.
    5. Hysteresis: a session keeps its previous limit when the new one differs by
       less than ``hysteresis_a``, a lower previous limit always, a higher one only
       if it fits the capacity give or take ``noise_a`` (the caller passes a part of
       the margin: what a meter's noise moves is no overload, and chasing it would cost
       a call down and a call up); not for a session whose ``hold`` is False.
    6. A ``falling`` session (lowered recently) that is lowered again goes
       ``lower_step_a`` further: a load rising steadily costs a call per that much more,
       not per noise step.

Tolerances: limits are multiples of 0.1 A (floating sums compared with 1e-6 A).
Without hysteresis a session below its cap has a phase with less than 0.1 A spare;
a waiting session has a phase with less than its minimum spare.

A stale meter counts as overload: the caller then applies `safe_allocation`.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_MIN_A",
    "PHASES",
    "STEP_A",
    "Allocation",
    "SafeAllocation",
    "SafeCharger",
    "Session",
    "SessionKey",
    "SiteState",
    "allocate",
    "floor_step",
    "learn_phases",
    "non_ev_load",
    "parse_wiring",
    "safe_allocation",
    "used_phases",
]

PHASES = 3
STEP_A = 0.1
"""OCPP limits have one decimal (``multipleOf: 0.1``)."""
DEFAULT_MIN_A = 6.0
"""IEC 61851: an EV does not charge below 6 A."""
EPS = 1e-9
RELEASE_A = 0.5
"""A capped session that draws within this of its cap wants more: the cap goes."""

Currents = tuple[float, float, float]
SessionKey = tuple[str, int]
"""``(charger_id, connector_id)``."""


def floor_step(value_a: float) -> float:
    """Round down to a multiple of 0.1 A (a float error below 1e-6 A does not cost a step)."""
    return math.floor(value_a * 10 + 1e-6) / 10


def _ceil_step(value_a: float) -> float:
    return math.ceil(value_a * 10 - 1e-6) / 10


def parse_wiring(text: str) -> tuple[int, ...]:
    """``"L2L3L1"`` → ``(1, 2, 0)``; ``"L1"`` → ``(0,)`` (the config's ``phases`` key)."""
    body = text.strip().upper()
    if not body or len(body) % 2 or len(body) > 6:
        raise ValueError(f"wiring {text!r}: expected e.g. 'L1L2L3', 'L2L3L1' or 'L1'")
    phases: list[int] = []
    for i in range(0, len(body), 2):
        token = body[i : i + 2]
        if token not in ("L1", "L2", "L3"):
            raise ValueError(f"wiring {text!r}: unknown phase {token!r}")
        phases.append(int(token[1]) - 1)
    if len(set(phases)) != len(phases) or len(phases) == 2:
        raise ValueError(f"wiring {text!r}: expected 1 or 3 distinct phases")
    return tuple(phases)


@dataclass(frozen=True, slots=True)
class Session:
    """One charging session (a connector with an EV that may charge)."""

    charger_id: str
    connector_id: int
    wiring: tuple[int, ...]
    """Physical phase (0..2) of each charger phase: L2L3L1 → (1, 2, 0); 1-phase on L1 → (0,)."""
    min_a: float = DEFAULT_MIN_A
    max_a: float = 32.0
    weight: float = 1.0
    started_at: float = 0.0
    """Monotonic seconds; the admission order (oldest first, rotated)."""
    ev_phases: int | None = None
    """Learned phase use of the EV: 1 or 3; None (unknown) budgets every wired phase."""
    drawn_a: Currents | None = None
    """Measured EV current per *physical* phase (Current.Import), held over a while."""
    previous_a: float | None = None
    """The limit last given to this session (for hysteresis and reclaim)."""
    held_a: Currents | None = None
    """The EV's draw held over a while (e.g. the maximum of the last minute) for reclaim;
    None: reclaim judges `drawn_a`. `drawn_a` stays the latest draw, for the non-EV load."""
    reclaim: bool = True
    """Whether the draw may be judged for reclaim at all: False while the EV has not been
    seen under its current limit (a report from before a raise says nothing about what
    the EV takes now)."""
    hold: bool = True
    """Whether hysteresis may keep `previous_a`. False when the limit is re-sent anyway
    (a lease refresh): the exact fair value costs no extra call, and small losses kept
    by hysteresis do not pile up."""
    running_since: float | None = None
    """When the session was last started (given its minimum or more after 0 A), in the
    seconds of ``now``; None while it is at 0 A."""
    paused_since: float | None = None
    """When the session was last paused (from its minimum or more to 0 A), in the seconds
    of ``now``; None if it never was."""
    capped: bool = False
    """Its previous limit was a reclaim cap: it stays capped while it draws less than
    that limit by more than ``RELEASE_A`` (not ``reclaim_step_a``, which would release
    the cap as soon as it applies, then cap again)."""
    falling: bool = False
    """Its limit was lowered recently (the load is rising): a further lowering goes
    ``lower_step_a`` lower, and its previous limit is kept only where it fits without
    ``noise_a``."""

    def __post_init__(self) -> None:
        if not self.wiring or any(p not in range(PHASES) for p in self.wiring):
            raise ValueError(f"{self.key}: wiring {self.wiring!r} must name phases 0..2")
        if len(set(self.wiring)) != len(self.wiring):
            raise ValueError(f"{self.key}: wiring {self.wiring!r} repeats a phase")
        if self.ev_phases not in (None, 1, 3):
            raise ValueError(f"{self.key}: ev_phases must be 1, 3 or None")
        if not (self.weight > 0 and self.min_a >= 0 and self.max_a >= 0):
            raise ValueError(f"{self.key}: weight must be > 0, min_a and max_a >= 0")

    @property
    def key(self) -> SessionKey:
        return (self.charger_id, self.connector_id)


@dataclass(frozen=True, slots=True)
class SiteState:
    """A fresh view of the grid connection (a stale meter goes to `safe_allocation`)."""

    limit_a: Currents
    """Fuse per phase."""
    margin_a: float
    """Kept free on every phase."""
    meter_a: Currents
    """Grid current per phase, import positive."""
    non_ev_a: Currents | None = None
    """The caller's estimate of the non-EV load per phase (`profiles.house_load`; may be
    negative: export the EVs may use). None: meter minus the sessions' draws."""
    rising_a: Currents = (0.0, 0.0, 0.0)
    """How much more the non-EV load may take per phase before a lowering sent now is
    followed by the next (a load that keeps rising: `profiles.house_load.heading`). The
    filling leaves it free; admission does not count it (no EV is paused for a load that
    has not come yet)."""


@dataclass(frozen=True, slots=True)
class Allocation:
    """The result of `allocate`."""

    limits_a: dict[SessionKey, float]
    """Every session's limit (0.0 for the waiting and the unserviceable)."""
    waiting: tuple[SessionKey, ...]
    """Sessions at 0 A because their minimum does not fit now (admission order)."""
    capacity_a: Currents
    """limit - margin - non-EV load per phase (negative: overloaded without any EV)."""
    headroom_a: Currents
    """capacity - the allocations as consumed on each phase."""
    held: tuple[SessionKey, ...] = ()
    """Sessions whose previous limit was kept by hysteresis."""
    reclaimed: tuple[SessionKey, ...] = ()
    """Sessions capped below their maximum because they draw less (reclaim)."""
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class SafeCharger:
    """A charger as `safe_allocation` sees it: no knowledge of EVs or non-EV load."""

    charger_id: str
    wiring: tuple[int, ...] = (0, 1, 2)
    max_a: float = math.inf
    connectors: int = 1
    """A connector-0 TxDefaultProfile applies per connector: drawn this many times."""


@dataclass(frozen=True, slots=True)
class SafeAllocation:
    """The result of `safe_allocation`."""

    limits_a: dict[str, float]
    fits: bool
    """Whether every charger got the configured fallback current."""
    zeroed: tuple[str, ...]
    """Chargers given 0 A because the fallback of all would exceed the fuse."""


def used_phases(session: Session) -> tuple[int, ...]:
    """The physical phases the session's current is budgeted on."""
    if session.ev_phases == 1:
        return session.wiring[:1]
    return session.wiring


def non_ev_load(meter_a: Currents, sessions: Iterable[Session]) -> Currents:
    """Meter minus the measured EV draw, per phase, never negative."""
    load = list(meter_a)
    for s in sessions:
        if s.drawn_a is not None:
            for p in range(PHASES):
                load[p] -= max(0.0, s.drawn_a[p])
    return (max(0.0, load[0]), max(0.0, load[1]), max(0.0, load[2]))


def learn_phases(
    drawn_a: Currents,
    wiring: tuple[int, ...],
    allocated_a: float,
    *,
    min_signal_a: float = 2.0,
) -> int | None:
    """1 or 3 from the EV's per-physical-phase current; None while it does not draw enough.

    The EV's own phase 1 is the charger's first wired phase. Any significant current
    on another wired phase counts as 3 (a 2-phase EV is budgeted as 3: allocate less).
    """
    if len(wiring) == 1:
        return 1
    first = drawn_a[wiring[0]]
    if allocated_a <= 0 or first < min(min_signal_a, 0.5 * allocated_a):
        return None
    others = max(drawn_a[p] for p in wiring[1:])
    return 3 if others > max(1.0, 0.25 * first) else 1


@dataclass
class _Entry:
    session: Session
    phases: tuple[int, ...]
    lo: float
    hi: float
    alloc: float = 0.0


def _cap(s: Session, lo: float, reclaim_step_a: float) -> tuple[float, bool]:
    """The session's cap (max and demand) and whether reclaim lowered it."""
    hi = floor_step(s.max_a)
    judged = s.held_a if s.held_a is not None else s.drawn_a
    if not s.reclaim or judged is None or not s.previous_a:
        return hi, False
    drawn = max(judged[p] for p in used_phases(s))
    if drawn < s.previous_a - (RELEASE_A if s.capped else reclaim_step_a):
        demand = max(lo, floor_step(drawn + reclaim_step_a))
        if demand < hi:
            return demand, True
    return hi, False


def _usage(entries: Iterable[_Entry]) -> list[float]:
    use = [0.0] * PHASES
    for e in entries:
        for p in e.phases:
            use[p] += e.alloc
    return use


def _level(e: _Entry, t: float) -> float:
    return min(e.hi, max(e.lo, e.session.weight * t))


def _fill_level(members: Sequence[_Entry], room: float) -> float:
    """The smallest ``t`` at which ``sum(_level(e, t))`` reaches `room` (inf: never).

    Each member contributes ``lo`` up to ``t = lo/w``, then grows with slope ``w`` up to
    ``t = hi/w``, then stays at ``hi``: a piecewise-linear sum walked breakpoint by
    breakpoint, O(n log n) instead of a bisection that re-sums every member per step.
    """
    value = sum(e.lo for e in members)
    if value >= room - EPS:
        return 0.0
    if sum(e.hi for e in members) <= room + EPS:
        return math.inf
    events: list[tuple[float, float]] = []
    for e in members:
        w = e.session.weight
        events.append((e.lo / w, w))
        events.append((e.hi / w, -w))
    events.sort()
    t = slope = 0.0
    for at, change in events:
        if at > t:
            reach = value + slope * (at - t)
            if slope > 0 and reach >= room:
                return t + (room - value) / slope
            value, t = reach, at
        slope += change
    return math.inf


def _fill(entries: list[_Entry], capacity: Sequence[float]) -> None:
    """Weighted max-min fair progressive filling from each entry's ``lo`` up to its ``hi``.

    ``t`` rises until some phase is full; the sessions on it freeze at their level and
    the rest go on. Each round fills at least one more phase, so there are at most
    three rounds before everyone left reaches ``hi``.
    """
    for e in entries:
        e.alloc = e.lo
    active = [e for e in entries if e.hi > e.lo]
    frozen_use = _usage(e for e in entries if e.hi <= e.lo)
    while active:
        reach = [math.inf] * PHASES
        for p in range(PHASES):
            members = [e for e in active if p in e.phases]
            if members:
                reach[p] = _fill_level(members, capacity[p] - frozen_use[p])
        t = min(reach)
        if t == math.inf:
            for e in active:
                e.alloc = e.hi
            return
        binding = {p for p in range(PHASES) if reach[p] <= t}
        still: list[_Entry] = []
        for e in active:
            e.alloc = _level(e, t)
            if e.alloc >= e.hi or binding.intersection(e.phases):
                for p in e.phases:
                    frozen_use[p] += e.alloc
            else:
                still.append(e)
        active = still


def _fits(e: _Entry, extra: float, use: Sequence[float], capacity: Sequence[float]) -> bool:
    return all(use[p] + extra <= capacity[p] + 1e-6 for p in e.phases)


def _admission_order(
    sessions: Sequence[Session],
    *,
    now: float,
    rotation_period: float,
    min_run_s: float,
    min_pause_s: float,
) -> tuple[list[Session], list[Session], list[Session]]:
    """(running within their turn, oldest start first; paused within `min_pause_s`; the
    rest, longest in the queue first).

    A session's turn lasts ``max(min_run_s, rotation_period)`` from when it was started.
    In the queue, a waiting session counts from when it started waiting (its arrival, or
    its last pause) and a running one past its turn from now (it queues again, behind
    those that waited meanwhile; of two such, the one running longer yields). No wall
    clock decides: arrival order is kept at plug-in.
    """
    turn = max(min_run_s, rotation_period)
    protected: list[Session] = []
    resting: list[Session] = []
    queue: list[tuple[float, int, float, float, SessionKey, Session]] = []
    for s in sessions:
        if s.previous_a and s.running_since is not None:
            if now - s.running_since < turn:
                protected.append(s)
            else:
                queue.append((now, 1, -s.running_since, s.started_at, s.key, s))
        elif s.paused_since is not None and now - s.paused_since < min_pause_s:
            resting.append(s)
        else:
            since = s.paused_since if s.paused_since is not None else s.started_at
            queue.append((since, 0, 0.0, s.started_at, s.key, s))
    protected.sort(key=lambda s: (s.running_since or 0.0, s.started_at, s.key))
    queue.sort(key=lambda item: item[:5])
    return protected, resting, [item[5] for item in queue]


def allocate(
    site: SiteState,
    sessions: Sequence[Session],
    *,
    now: float,
    hysteresis_a: float = 1.0,
    rotation_period: float = 900.0,
    reclaim_step_a: float = 2.0,
    min_run_s: float = 0.0,
    min_pause_s: float = 0.0,
    start_margin_a: float = 0.0,
    noise_a: float = 0.0,
    lower_step_a: float = 0.0,
) -> Allocation:
    """New limits for every session; see the module docstring for the algorithm."""
    keys = [s.key for s in sessions]
    if len(set(keys)) != len(keys):
        raise ValueError("sessions must have distinct (charger_id, connector_id)")
    notes: list[str] = []
    base = site.non_ev_a if site.non_ev_a is not None else non_ev_load(site.meter_a, sessions)
    capacity = tuple(site.limit_a[p] - site.margin_a - base[p] for p in range(PHASES))
    for p in range(PHASES):
        if capacity[p] < 0:
            notes.append(f"L{p + 1}: non-EV load alone exceeds the limit by {-capacity[p]:.1f} A")

    # 1. admission: dwell-protected first, then in rotated order of arrival.
    protected, resting, rotating = _admission_order(
        sessions, now=now, rotation_period=rotation_period,
        min_run_s=min_run_s, min_pause_s=min_pause_s,
    )  # fmt: skip
    remaining = [max(0.0, c) for c in capacity]
    admitted: list[_Entry] = []
    waiting: list[SessionKey] = [s.key for s in resting]
    capped: list[SessionKey] = []
    for s in protected + rotating:
        lo = _ceil_step(s.min_a)
        hi, reclaimed = _cap(s, lo, reclaim_step_a)
        if hi < lo or hi <= 0:
            notes.append(f"{s.key}: max {s.max_a} A is below min {s.min_a} A")
            continue
        entry = _Entry(s, used_phases(s), lo, hi)
        # One at 0 A now needs `start_margin_a` more, give or take half the meter's
        # noise (an estimate still settling on a noisy meter's mean must not hold an EV
        # back for long); a running one may overrun by the whole noise (part of the
        # margin), which is no reason to pause an EV.
        need = lo + start_margin_a - noise_a / 2 if not s.previous_a else lo - noise_a
        if all(remaining[p] + EPS >= need for p in entry.phases):
            for p in entry.phases:
                remaining[p] -= lo
            admitted.append(entry)
            if reclaimed:
                capped.append(s.key)
                notes.append(f"{s.key}: draws less, capped at {hi:.1f} A")
        else:
            waiting.append(s.key)
    if waiting:
        notes.append(f"{len(waiting)} session(s) wait for their minimum current")

    # 2.-3. weighted max-min fair filling (an overloaded phase has no room at all), clear
    # of what a rising load is heading for.
    room = [max(0.0, capacity[p] - max(0.0, site.rising_a[p])) for p in range(PHASES)]
    _fill(admitted, room)

    # 4. round down, then hand back whole steps to the lowest weighted share first.
    for e in admitted:
        e.alloc = max(e.lo, floor_step(e.alloc))
    use = _usage(admitted)
    # Phases only fill up here, so an entry that cannot take a step now never will.
    queue = [(e.alloc / e.session.weight, i) for i, e in enumerate(admitted)]
    heapq.heapify(queue)
    while queue:
        _, i = heapq.heappop(queue)
        e = admitted[i]
        if e.alloc + STEP_A > e.hi + EPS or not _fits(e, STEP_A, use, room):
            continue
        e.alloc = round(e.alloc + STEP_A, 1)
        for p in e.phases:
            use[p] += STEP_A
        heapq.heappush(queue, (e.alloc / e.session.weight, i))

    # 5. hysteresis: lower previous limits always, higher ones only if they fit.
    held: list[SessionKey] = []
    if hysteresis_a > 0:
        steady = []
        for e in admitted:
            prev = e.session.previous_a
            if not e.session.hold or prev is None or prev <= 0 or prev == e.alloc:
                continue
            prev = floor_step(prev)
            if e.lo <= prev <= e.hi and abs(prev - e.alloc) < hysteresis_a:
                steady.append((e, prev))
        for e, prev in steady:
            if prev < e.alloc:
                e.alloc = prev
                held.append(e.session.key)
        use = _usage(admitted)
        # A higher previous limit may overrun the room by `noise_a` (part of the margin):
        # a meter's noise is no reason to lower a limit only to raise it again. Not for
        # a falling session: the load is rising, not noisy.
        tolerant = [c + noise_a for c in room]
        for e, prev in steady:
            fits_in = room if e.session.falling else tolerant
            if prev > e.alloc and _fits(e, prev - e.alloc, use, fits_in):
                for p in e.phases:
                    use[p] += prev - e.alloc
                e.alloc = prev
                held.append(e.session.key)

    # 6. a session lowered again soon after a lowering goes a step further: a load that
    # keeps rising would otherwise cost a call for every step of it.
    if lower_step_a > 0:
        for e in admitted:
            prev = e.session.previous_a
            if e.session.falling and prev is not None and prev > e.alloc + EPS:
                e.alloc = max(e.lo, floor_step(e.alloc - lower_step_a))

    limits = {s.key: 0.0 for s in sessions}
    for e in admitted:
        limits[e.session.key] = e.alloc
    use = _usage(admitted)
    headroom = (capacity[0] - use[0], capacity[1] - use[1], capacity[2] - use[2])
    return Allocation(
        limits_a=limits,
        waiting=tuple(waiting),
        capacity_a=(capacity[0], capacity[1], capacity[2]),
        headroom_a=headroom,
        held=tuple(held),
        reclaimed=tuple(capped),
        notes=tuple(notes),
    )


def safe_allocation(
    chargers: Sequence[SafeCharger],
    *,
    limit_a: Currents,
    margin_a: float,
    fallback_a: float,
    rotation_key: int,
) -> SafeAllocation:
    """Per-charger fallback limits whose sum fits the fuse with no knowledge of non-EV load.

    Each charger gets ``min(fallback_a, max_a)`` (rounded down to 0.1 A), budgeted on
    every wired phase for each connector, where it fits; otherwise 0 A. Chargers are
    considered in id order rotated by ``rotation_key`` (e.g. a counter advanced every
    rotation period), so the ones at 0 A change in turn.
    """
    ids = [c.charger_id for c in chargers]
    if len(set(ids)) != len(ids):
        raise ValueError("chargers must have distinct ids")
    ordered = sorted(chargers, key=lambda c: c.charger_id)
    if ordered:
        shift = rotation_key % len(ordered)
        ordered = ordered[shift:] + ordered[:shift]
    remaining = [max(0.0, limit_a[p] - margin_a) for p in range(PHASES)]
    limits: dict[str, float] = {}
    zeroed: list[str] = []
    for c in ordered:
        value = floor_step(max(0.0, min(fallback_a, c.max_a)))
        need = value * c.connectors
        if all(remaining[p] + EPS >= need for p in c.wiring):
            for p in c.wiring:
                remaining[p] -= need
            limits[c.charger_id] = value
        else:
            limits[c.charger_id] = 0.0
            zeroed.append(c.charger_id)
    return SafeAllocation(
        limits_a={c.charger_id: limits[c.charger_id] for c in chargers},
        fits=not zeroed,
        zeroed=tuple(zeroed),
    )
