"""What happens on the demo site, as pure functions of time: no clock, no I/O.

- `demo_chargers`: the chargers, a fixed mix of 3-phase and 1-phase ones, some on rotated
  wiring (a 1-phase charger on L2 or L3, a 3-phase one whose L1 is the grid's L2 or L3),
  as installers spread single-phase loads over a site;
- `plan_visits`: the EVs that come to one charger and leave again, seeded;
- `BaseLoad`: the site's non-EV load per phase at any moment: a daily shape played fast,
  PV export on one phase at midday, a wobble, and now and then an appliance switching on.

Every function takes the time it is asked about, so tests check them without waiting;
`edge.sim.demo` runs them against the wall clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from profiles.allocation import parse_wiring

__all__ = [
    "EV_MODELS",
    "Appliance",
    "BaseLoad",
    "ChargerPlan",
    "Ev",
    "Visit",
    "VisitTiming",
    "daily_shape",
    "demo_chargers",
    "fuse_for",
    "plan_visits",
    "solar_shape",
]

Phases = tuple[float, float, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerPlan:
    """One demo charger: its identity, wiring (as `[chargers.<id>] phases`) and rating."""

    charger_id: str
    wiring: str
    rating_a: float


# The pattern repeats for more chargers. Ratings are what such wallboxes are sold as:
# 3 x 16 A (11 kW), 3 x 32 A (22 kW), 1 x 32 A (7.4 kW), 1 x 16 A (3.7 kW).
_LAYOUT: tuple[tuple[str, float], ...] = (
    ("L1L2L3", 16.0),
    ("L2", 32.0),  # 1-phase, on the grid's L2
    ("L2L3L1", 32.0),  # rotated: its L1 is the grid's L2
    ("L3", 16.0),
    ("L3L1L2", 16.0),
    ("L1", 32.0),
)


def demo_chargers(count: int) -> list[ChargerPlan]:
    """`count` chargers `DEMO01`, `DEMO02`, …: 3-phase and 1-phase ones in turn, rotated."""
    return [
        ChargerPlan(charger_id=f"DEMO{k + 1:02d}", wiring=wiring, rating_a=rating)
        for k in range(count)
        for wiring, rating in [_LAYOUT[k % len(_LAYOUT)]]
    ]


def fuse_for(chargers: list[ChargerPlan], *, fallback_a: float, margin_a: float) -> float:
    """The grid fuse per phase (A) of a demo site: enough for a few EVs at full speed, too
    little for all of them, so the balancing has work to do; and never so little that the
    chargers' safe values (`fallback_a` each) would not fit beside the margin, which a real
    site would be warned about."""
    on_phase = [0, 0, 0]
    for charger in chargers:
        for phase in parse_wiring(charger.wiring):
            on_phase[phase] += 1
    return float(max(25 + 3 * len(chargers), math.ceil(max(on_phase) * fallback_a + margin_a)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Ev:
    """An EV as `SimCharger` models it (its attributes of the same names)."""

    phases: int  # 1 or 3: the phases its on-board charger uses
    max_a: float  # per phase
    ramp_s: float = 2.0  # how long it takes to reach a higher offer
    taper_a: float | None = None  # from `taper_after_s` into its stay it draws at most this
    taper_after_s: float = 0.0
    give_up_after: int | None = None  # pauses after which it stops drawing for good


EV_MODELS: tuple[Ev, ...] = (
    Ev(phases=3, max_a=16.0),  # most newer cars: 11 kW
    Ev(phases=1, max_a=32.0),  # 7.4 kW single-phase on-board charger
    Ev(phases=1, max_a=16.0, ramp_s=5.0),  # a plug-in hybrid
    Ev(phases=3, max_a=32.0),  # 22 kW
    Ev(phases=3, max_a=16.0, give_up_after=3),  # stops for good after three pauses
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Visit:
    """An EV plugged into one charger from `arrive` until `leave`."""

    arrive: datetime
    leave: datetime
    ev: Ev


@dataclass(frozen=True, slots=True, kw_only=True)
class VisitTiming:
    """How EVs come and go (seconds; ranges are drawn from uniformly).

    A demo is watched for minutes, so visits are minutes long, not hours.
    """

    stay_s: tuple[float, float] = (180.0, 600.0)
    away_s: tuple[float, float] = (20.0, 180.0)
    plugged_at_start: float = 0.6  # the chance that the first EV arrives within start_within_s
    start_within_s: float = 10.0
    taper_chance: float = 0.4  # the chance that an EV tapers for the last part of its stay


def plan_visits(rng: random.Random, start: datetime, timing: VisitTiming) -> Iterator[Visit]:
    """The EVs that visit one charger from `start` on, in order, one at a time, endlessly.

    The first EV arrives within `start_within_s` with the chance `plugged_at_start` (else
    after an ordinary time away); each stays a `stay_s` and the next comes an `away_s`
    after it left. The EV is one of `EV_MODELS`; some taper (a battery nearly full).
    """
    if rng.random() < timing.plugged_at_start:
        gap = rng.uniform(0.0, timing.start_within_s)
    else:
        gap = rng.uniform(*timing.away_s)
    arrive = start + timedelta(seconds=gap)
    while True:
        stay = rng.uniform(*timing.stay_s)
        ev = rng.choice(EV_MODELS)
        if rng.random() < timing.taper_chance:
            taper_after = stay * rng.uniform(0.5, 0.8)
            ev = Ev(
                phases=ev.phases,
                max_a=ev.max_a,
                ramp_s=ev.ramp_s,
                taper_a=round(rng.uniform(4.0, ev.max_a / 2), 1),
                taper_after_s=round(taper_after, 1),
                give_up_after=ev.give_up_after,
            )
        leave = arrive + timedelta(seconds=stay)
        yield Visit(arrive=arrive, leave=leave, ev=ev)
        arrive = leave + timedelta(seconds=rng.uniform(*timing.away_s))


def _bump(hour: float, centre: float, width: float) -> float:
    """A bell around `centre` (hours), `width` hours wide, on a 24-hour circle."""
    distance = abs(hour - centre) % 24.0
    distance = min(distance, 24.0 - distance)
    return math.exp(-0.5 * (distance / width) ** 2)


def daily_shape(hour: float) -> float:
    """The share (0..1) of its evening peak a household-like site draws at `hour` (0-24):
    low at night, a morning bump, some midday use, the peak around 19:00."""
    morning = 0.45 * _bump(hour, 7.5, 1.2)
    midday = 0.25 * _bump(hour, 12.5, 2.5)
    evening = 0.85 * _bump(hour, 19.0, 1.8)
    return min(1.0, 0.15 + morning + midday + evening)


def solar_shape(hour: float) -> float:
    """The share (0..1) of its peak a PV system yields at `hour`: a clear day, 06:00-20:00."""
    if not 6.0 < hour % 24.0 < 20.0:
        return 0.0
    return math.sin(math.pi * (hour % 24.0 - 6.0) / 14.0)


@dataclass(frozen=True, slots=True)
class Appliance:
    """A load switched on for a while on one phase (an oven, a kettle, a heat pump)."""

    phase: int  # 0, 1, 2: L1, L2, L3
    amps: float
    on: datetime
    off: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseLoad:
    """The demo site's non-EV load per phase (A, import positive) at any moment; a callable
    for `SimSite(base_load_a=…)`. The same `seed`, `start` and moment give the same value.

    One simulated day lasts `day_s` (starting at `start_hour`); each phase follows
    `daily_shape` between its `night_a` and `peak_a`; `pv_a` of PV on L1 (a single-phase
    inverter) exports at midday; a wobble of up to `wobble_a` keeps it moving; and in every
    `appliance_every_s` an appliance of `appliance_a` switches on on one phase with the
    chance `appliance_chance`, for `appliance_s` within that slot.
    """

    start: datetime
    seed: int = 0
    day_s: float = 900.0
    start_hour: float = 6.0
    night_a: Phases = (2.0, 1.5, 1.0)
    peak_a: Phases = (14.0, 10.0, 8.0)
    pv_a: float = 8.0
    wobble_a: float = 1.0
    appliance_every_s: float = 120.0
    appliance_chance: float = 0.6
    appliance_a: tuple[float, float] = (5.0, 12.0)
    appliance_s: tuple[float, float] = (20.0, 90.0)
    _offsets: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The wobble's phase offsets, drawn once: the load is a function of time alone.
        rng = random.Random(f"{self.seed}:wobble")
        object.__setattr__(self, "_offsets", tuple(rng.uniform(0, 2 * math.pi) for _ in range(6)))

    def hour(self, now: datetime) -> float:
        """The simulated time of day at `now` (0-24)."""
        elapsed = (now - self.start).total_seconds()
        return (self.start_hour + 24.0 * elapsed / self.day_s) % 24.0

    def appliance(self, slot: int) -> Appliance | None:
        """The appliance switched on in slot `slot` (`appliance_every_s` each, from `start`)."""
        if slot < 0:
            return None
        # One generator per slot, seeded by it: any moment can be asked about in any order.
        rng = random.Random(f"{self.seed}:appliance:{slot}")
        if rng.random() >= self.appliance_chance:
            return None
        length = min(rng.uniform(*self.appliance_s), self.appliance_every_s)
        offset = rng.uniform(0.0, self.appliance_every_s - length)
        on = self.start + timedelta(seconds=slot * self.appliance_every_s + offset)
        return Appliance(
            phase=rng.randrange(3),
            amps=round(rng.uniform(*self.appliance_a), 1),
            on=on,
            off=on + timedelta(seconds=length),
        )

    def __call__(self, now: datetime) -> Phases:
        hour = self.hour(now)
        shape = daily_shape(hour)
        elapsed = (now - self.start).total_seconds()
        load = [
            night + (peak - night) * shape
            for night, peak in zip(self.night_a, self.peak_a, strict=True)
        ]
        load[0] -= self.pv_a * solar_shape(hour)
        for k in range(3):
            a, b = self._offsets[2 * k], self._offsets[2 * k + 1]
            # Two slow sines per phase, 37 s and 71 s: irregular enough to look alive.
            wobble = 0.6 * math.sin(2 * math.pi * elapsed / 37.0 + a) + 0.4 * math.sin(
                2 * math.pi * elapsed / 71.0 + b
            )
            load[k] += self.wobble_a * wobble
        appliance = self.appliance(math.floor(elapsed / self.appliance_every_s))
        if appliance is not None and appliance.on <= now < appliance.off:
            load[appliance.phase] += appliance.amps
        return load[0], load[1], load[2]
