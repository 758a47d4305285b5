"""Lease profiles: the stacked charging profiles that make site load balancing fail safe.

Pure (no clock, no I/O): time is passed in as epoch seconds or datetimes.

Every charger under site control holds two profiles of one purpose, on connector 0:

``safe``  (id `SAFE_PROFILE_ID`, stack level L-1, no end)
    The charger's fallback value. The safe values of the whole site fit the fuse on
    their own (`profiles.allocation.safe_allocation`), since nothing is known of the
    non-EV load when they apply.
``lease`` (id `LEASE_PROFILE_ID`, stack level L, ends at ``validTo``)
    The dynamic allocation. While it is valid it hides the safe profile (same-purpose
    stacking: the highest valid stack level wins); when it ends, the charger is at its
    safe value on its own. A lease ends by ``validTo``, never by the schedule's
    ``duration``: a TxProfile whose schedule ended still replaces TxDefault until its
    ``validTo`` (OCPP 1.6 §3.13.2), and a ChargePointMax whose schedule ended leaves
    the charger unconstrained rather than at the level below.

When leases end (the controller, its host or the network died), each charger moves
from its lease to its safe value: a *falling* lease (at or above the safe value) moves
it down or not at all, a *rising* one (below it: an idle charger at 0 A, a waiting EV)
moves it up. The leases need not end together, only in this order: **no rising lease
ends before a falling one**. Then, on every phase, whichever leases have ended so far:

- while a falling lease is still running, no rising lease has ended: every charger is
  at its lease or fell from it, so a phase carries no more than the leases it held,
  which the allocation fitted under the fuse;
- once a rising lease has ended, every falling lease has ended: every charger is at its
  safe value or still at a rising lease below it, so a phase carries no more than the
  safe values, which fit the fuse on their own.

(A charger draws no more than its limit on each phase it is wired to, times its
connectors under a per-connector TxDefault: the same sums `safe_allocation` budgets.)
`lease_end` keeps the order: a falling lease ends at most a lease away (how long a dead
controller goes unnoticed) and no later than any rising lease another charger may hold;
a rising one ends `RISING_LEASE` leases away and no earlier than any falling lease
another charger may hold. A rising lease is refreshed with a whole lease left, a
falling one with half a lease left (`refresh_due`), and every lease sent is a whole new
one, so a change is a refresh too: a charger whose limit changed gets its next refresh
half a lease after the change, and in steady state a charger costs two calls a minute
at a 60 s lease. A dead controller leaves a charger below its safe value for up to 1.5
leases (the safe side).

"May hold" counts every lease whose outcome is not known (in flight, a timeout, a
reboot that may have kept it: `HeldLease`) and every safe value that may be in force
(`LeaseView.safe_maybe`), so a controller that dies in the middle of a round of calls
leaves the order whichever calls went through. A lease that a new safe value would turn
from falling to rising, or back, is sent again before that value, with an end that
suits both (`plan_leases`). Leases end by each charger's clock: one far behind or ahead
of ours is reported (`edge.site.controller`).

Strategies (`strategies`): ChargePointMaxProfile is preferred, since it bounds the
charger whatever TxProfile or TxDefaultProfile others (the operator, the cloud, a
RemoteStart) install, and those still lower it further (the composite is the
minimum). L is the highest stack level the charger accepts, so no other profile of
the purpose sits above the lease, and the safe profile hides every lower one. A
charger that refuses a purpose or a level is moved to the next strategy; one that
refuses them all cannot be limited and is budgeted at its maximum.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from profiles.model import (
    ChargingProfile,
    ChargingProfileKind,
    ChargingProfilePurpose,
    ChargingRateUnit,
    ChargingSchedule,
    ChargingSchedulePeriod,
)

__all__ = [
    "DEFAULT_MAX_STACK_LEVEL",
    "LEASE_PROFILE_ID",
    "MIN_EXTENSION",
    "RISING_LEASE",
    "SAFE_PROFILE_ID",
    "SCHEDULE_BACKDATE",
    "HeldLease",
    "LeasePolicy",
    "LeaseUpdate",
    "LeaseView",
    "Strategy",
    "falls",
    "is_site_profile",
    "lease_end",
    "plan_leases",
    "refresh_due",
    "rises",
    "site_profile",
    "strategies",
    "unsuited",
]

SAFE_PROFILE_ID = 910_000
LEASE_PROFILE_ID = 910_001
DEFAULT_MAX_STACK_LEVEL = 8
"""Assumed when the charger has not reported ChargeProfileMaxStackLevel."""
SCHEDULE_BACKDATE = timedelta(minutes=5)
"""Schedules start this long before they are sent, so a charger whose clock is behind
ours still finds the period in force (a schedule not started yet limits nothing)."""
EPS_A = 0.05
"""Limits are multiples of 0.1 A: closer than this is the same limit."""
RISING_LEASE = 1.5
"""A rising lease lasts this many lease times: refreshed with a whole lease left, it
outlasts every falling lease sent meanwhile (`lease_end`)."""
MIN_EXTENSION = 0.25
"""A falling lease is refreshed only when that takes its end this many leases further."""

K = TypeVar("K")


def is_site_profile(profile_id: int) -> bool:
    """Whether a profile id is one of the site controller's (safe or lease)."""
    return profile_id in (SAFE_PROFILE_ID, LEASE_PROFILE_ID)


@dataclass(frozen=True, slots=True)
class Strategy:
    """Which purpose and stack levels carry a charger's safe and lease profiles."""

    purpose: ChargingProfilePurpose
    lease_level: int

    @property
    def safe_level(self) -> int:
        return self.lease_level - 1

    @property
    def per_connector(self) -> bool:
        """A connector-0 TxDefaultProfile applies to each connector on its own, where a
        ChargePointMaxProfile bounds the charger as a whole."""
        return self.purpose is ChargingProfilePurpose.TX_DEFAULT

    def describe(self) -> str:
        return f"{self.purpose} at stack levels {self.safe_level}/{self.lease_level}"


@functools.cache
def strategies(max_stack_level: int | None) -> tuple[Strategy, ...]:
    """The strategies to try in order for a charger reporting `max_stack_level`.

    ChargePointMax before TxDefault; at the top level the charger accepts, then at 1/0
    (for chargers that report a level they do not honour). Fewer than two levels
    leave no room for stacking: no strategy.
    """
    top = DEFAULT_MAX_STACK_LEVEL if max_stack_level is None else max_stack_level
    levels = list(dict.fromkeys((top, 1))) if top >= 1 else []
    return tuple(
        Strategy(purpose, level)
        for purpose in (ChargingProfilePurpose.CHARGE_POINT_MAX, ChargingProfilePurpose.TX_DEFAULT)
        for level in levels
    )


def site_profile(
    *,
    strategy: Strategy,
    safe: bool,
    limit_a: float,
    now: datetime,
    valid_to: datetime | None = None,
) -> ChargingProfile:
    """The safe profile (no end) or a lease (ending at `valid_to`) of `strategy`."""
    start = now.astimezone(UTC).replace(microsecond=0) - SCHEDULE_BACKDATE
    return ChargingProfile(
        charging_profile_id=SAFE_PROFILE_ID if safe else LEASE_PROFILE_ID,
        stack_level=strategy.safe_level if safe else strategy.lease_level,
        purpose=strategy.purpose,
        kind=ChargingProfileKind.ABSOLUTE,
        valid_to=None if safe else valid_to,
        schedule=ChargingSchedule(
            charging_rate_unit=ChargingRateUnit.A,
            start_schedule=start,
            periods=(ChargingSchedulePeriod(start_period=0, limit=round(limit_a, 1)),),
        ),
    )


def refresh_due(
    valid_to: float | None, now: float, lease_time: float, *, rising: bool = False
) -> bool:
    """Whether a lease ending at `valid_to` is due for a refresh at `now`: a falling lease
    with half a lease or less left (a refresh that fails has half a lease to be retried
    in), a rising one with a whole lease or less left (so it outlasts every falling lease
    sent meanwhile). No lease: due."""
    if valid_to is None:
        return True
    return valid_to - now <= (lease_time if rising else lease_time / 2)


def falls(limit_a: float, safes: Iterable[float | None]) -> bool:
    """Whether a lease of `limit_a` may be *falling*: at or above one of the safe values
    `safes` that may be in force when it ends (the charger then draws no more)."""
    return any(s is not None and limit_a >= s - EPS_A for s in safes)


def rises(limit_a: float, safes: Iterable[float | None]) -> bool:
    """Whether a lease of `limit_a` may be *rising*: below one of the safe values `safes`
    that may be in force when it ends (None: no safe profile, the charger is unlimited)."""
    return any(s is None or limit_a < s - EPS_A for s in safes)


def lease_end(
    now: float,
    lease_time: float,
    *,
    falling: bool = True,
    latest_fall: float = -math.inf,
    earliest_rise: float = math.inf,
) -> float:
    """When a lease sent at `now` (epoch s) ends, in whole milliseconds (what validTo
    carries).

    A falling lease (`falling`; one that may be either counts as falling) ends at most a
    lease away and no later than `earliest_rise`, the earliest end of the rising leases
    the other chargers may hold; a rising one ends `RISING_LEASE` leases away and no
    earlier than `latest_fall`, the latest end of the falling leases the other chargers
    may hold. So no lease that rises ends before one that falls (the module docstring).
    """
    if falling:
        cap = min(now + lease_time, earliest_rise)
        end = math.floor(cap * 1000) / 1000
        return end if end > now else cap
    return math.ceil(max(now + RISING_LEASE * lease_time, latest_fall) * 1000) / 1000


@dataclass(frozen=True, slots=True)
class LeasePolicy:
    lease_time: float = 60.0
    """Seconds a falling lease lasts at most: how long a dead controller goes unnoticed."""
    min_interval: float = 5.0
    """Seconds after a change of one charger's lease before it is raised (lowering is
    never delayed)."""


@dataclass(frozen=True, slots=True)
class HeldLease:
    """A lease a charger may hold besides the one it accepted last: one in flight, or one
    it never answered for (a timeout), until it ends or a later lease is accepted."""

    limit_a: float
    valid_to: float


@dataclass(frozen=True, slots=True)
class LeaseView:
    """What the controller knows of one charger's lease."""

    safe_a: float | None
    """The safe value the charger accepted; None: not known (treated as unlimited)."""
    lease_a: float | None = None
    """The limit of the lease the charger accepted last; None: none."""
    valid_to: float | None = None
    """When that lease ends (epoch s)."""
    changed_at: float | None = None
    """When the charger's lease last changed value (epoch s); a refresh at the same value
    does not count, so refreshes never hold up a raise."""
    busy: bool = False
    """A call to this charger is in flight."""
    lowering: bool = False
    """That call lowers the charger's limit."""
    maybe: tuple[HeldLease, ...] = ()
    """Other leases the charger may hold (`HeldLease`)."""
    safe_maybe: tuple[float | None, ...] = ()
    """Other safe values that may be in force: in flight, unanswered, or to be sent in
    this cycle."""
    safe_next: float | None = None
    """The safe value to be sent in this cycle (None: none): a held lease whose end
    does not suit it is sent again first (`plan_leases`)."""

    def effective_a(self, now: float) -> float:
        """The limit the charger applies now: the lease while valid, else the safe value."""
        if self.lease_a is not None and self.valid_to is not None and self.valid_to > now:
            return self.lease_a
        return math.inf if self.safe_a is None else self.safe_a

    @property
    def safes(self) -> tuple[float | None, ...]:
        """Every safe value that may be in force with the leases it holds now (not
        `safe_next`: one that would turn a lease around goes only after that lease was
        sent again, `unsuited`)."""
        return (self.safe_a, *self.safe_maybe)

    @property
    def next_safes(self) -> tuple[float | None, ...]:
        """Every safe value that may be in force with a lease sent now."""
        extra = () if self.safe_next is None else (self.safe_next,)
        return (*self.safes, *extra)

    def held(self, now: float) -> list[HeldLease]:
        """Every lease the charger may hold that has not ended by `now`."""
        leases = list(self.maybe)
        if self.lease_a is not None and self.valid_to is not None:
            leases.append(HeldLease(self.lease_a, self.valid_to))
        return [lease for lease in leases if lease.valid_to > now]


@dataclass(frozen=True, slots=True)
class LeaseUpdate(Generic[K]):
    """A lease to send now."""

    key: K
    limit_a: float
    valid_to: float
    reason: str
    """"lower", "raise" or "refresh"."""

    @property
    def lowers(self) -> bool:
        return self.reason == "lower"


class _Extremes(Generic[K]):
    """The latest end of a falling lease and the earliest end of a rising one among the
    leases every charger may hold, leaving one charger out (its own leases replace each
    other: only one of them is ever in force)."""

    def __init__(self, views: Mapping[K, LeaseView], now: float) -> None:
        # The two latest falling ends and the two earliest rising ends, of two chargers.
        self.fall1, self.fall2 = -math.inf, -math.inf
        self.rise1, self.rise2 = math.inf, math.inf
        self.fall_key: K | None = None
        self.rise_key: K | None = None
        for key, view in views.items():
            fall = rise = None
            if not view.maybe and not view.safe_maybe:  # the common case, every cycle
                lease, end, safe = view.lease_a, view.valid_to, view.safe_a
                if lease is None or end is None or end <= now:
                    continue
                if safe is not None and lease >= safe - EPS_A:
                    fall = end
                else:
                    rise = end
            else:
                safes = view.safes
                for held in view.held(now):
                    if falls(held.limit_a, safes) and (fall is None or held.valid_to > fall):
                        fall = held.valid_to
                    if rises(held.limit_a, safes) and (rise is None or held.valid_to < rise):
                        rise = held.valid_to
            if fall is not None:
                if fall > self.fall1:
                    self.fall1, self.fall2, self.fall_key = fall, self.fall1, key
                elif fall > self.fall2:
                    self.fall2 = fall
            if rise is not None:
                if rise < self.rise1:
                    self.rise1, self.rise2, self.rise_key = rise, self.rise1, key
                elif rise < self.rise2:
                    self.rise2 = rise

    def latest_fall(self, key: K) -> float:
        return self.fall2 if key == self.fall_key else self.fall1

    def earliest_rise(self, key: K) -> float:
        return self.rise2 if key == self.rise_key else self.rise1

    def end(self, key: K, view: LeaseView, limit_a: float, now: float, lease_time: float) -> float:
        """When a lease of `limit_a` sent now to `key` ends (`lease_end`)."""
        return lease_end(
            now,
            lease_time,
            falling=falls(limit_a, view.next_safes),
            latest_fall=self.latest_fall(key),
            earliest_rise=self.earliest_rise(key),
        )


def plan_leases(
    views: Mapping[K, LeaseView],
    targets: Mapping[K, float],
    now: float,
    policy: LeasePolicy,
) -> list[LeaseUpdate[K]]:
    """The leases to send now, lowering ones first.

    `views` has every charger that may hold a lease (they bound each other's ends); only
    those with a target get a lease.

    - A charger with a call in flight gets nothing (one call at a time).
    - Lowering is sent at once. While any lowering is in flight or planned, raises
      wait: capacity moves from one charger to another only once the first let go.
    - A raise waits `min_interval` after the lease last changed value, and, unless it
      starts a charger from 0 A, for the refresh when that is due within `min_interval`.
    - Every lease sent is a whole new one (`lease_end`), so a change is a refresh too.
    - A lease is refreshed when `refresh_due` (at the target, or at the current limit
      while a raise must wait), a falling one only when that takes its end at least
      `MIN_EXTENSION` leases further (not while a rising lease elsewhere holds it back);
      a charger without a lease gets one; a lease that would end unsuitably for the
      safe value about to be sent (`LeaseView.safe_next`) is sent again first.
    """
    lease_time = policy.lease_time
    extremes = _Extremes(views, now)
    lowering: list[LeaseUpdate[K]] = []
    raising: list[LeaseUpdate[K]] = []
    refreshing: list[LeaseUpdate[K]] = []
    blocked = False

    def stale(key: K, view: LeaseView, value: float, at: float) -> bool:
        """Whether a refresh at `value` is due at `at` (>= now) and worth a call."""
        lease, end_now = view.lease_a, view.valid_to
        if lease is None or end_now is None or end_now <= now:
            return True
        if view.safe_maybe:
            rising = rises(lease, view.safes)
        else:  # the common case, every cycle
            rising = view.safe_a is None or lease < view.safe_a - EPS_A
        if not refresh_due(end_now, at, lease_time, rising=rising):
            return False
        end = extremes.end(key, view, value, now, lease_time)
        return rising or end >= end_now + MIN_EXTENSION * lease_time

    def refresh(key: K, view: LeaseView, value: float) -> LeaseUpdate[K]:
        return LeaseUpdate(key, value, extremes.end(key, view, value, now, lease_time), "refresh")

    for key, view in views.items():
        if view.busy:
            blocked = blocked or view.lowering
            continue
        target = targets.get(key)
        if target is None:
            continue
        current = view.effective_a(now)
        if target < current - EPS_A:
            end = extremes.end(key, view, target, now, lease_time)
            lowering.append(LeaseUpdate(key, target, end, "lower"))
        elif target > current + EPS_A:
            spaced = view.changed_at is None or now - view.changed_at >= policy.min_interval
            due = stale(key, view, current, now)
            # A raise of a charging EV that its refresh would carry within min_interval
            # waits for it: one call instead of two (a start from 0 A never waits).
            soon = (
                not due
                and 0 < current < math.inf
                and stale(key, view, current, now + policy.min_interval)
            )
            if spaced and not soon:
                end = extremes.end(key, view, target, now, lease_time)
                raising.append(LeaseUpdate(key, target, end, "raise"))
            elif due or unsuited(view, now):
                refreshing.append(refresh(key, view, current))
        elif stale(key, view, target, now) or unsuited(view, now):
            refreshing.append(refresh(key, view, target))
    if lowering or blocked:
        # Raises wait for the next cycle; their leases are still refreshed if due.
        for update in raising:
            view = views[update.key]
            current = view.effective_a(now)
            if current != math.inf and (
                stale(update.key, view, current, now) or unsuited(view, now)
            ):
                refreshing.append(refresh(update.key, view, current))
        raising = []
    return _together(lowering + refreshing + raising, views)


def _together(updates: list[LeaseUpdate[K]], views: Mapping[K, LeaseView]) -> list[LeaseUpdate[K]]:
    """The updates of one cycle, their ends made to keep the order among themselves too.

    A rising lease sent now ends more than a lease away, after every falling one sent
    now. A lease that may be either (a safe value about to change) ends as a falling one
    would, against the leases held so far; every other lease sent now that may fall ends
    no later than it, and all such ends as the earliest of them.
    """
    either = [
        u.valid_to
        for u in updates
        if falls(u.limit_a, views[u.key].next_safes) and rises(u.limit_a, views[u.key].next_safes)
    ]
    if not either:
        return updates
    bound = min(either)
    return [
        replace(u, valid_to=min(u.valid_to, bound))
        if falls(u.limit_a, views[u.key].next_safes)
        else u
        for u in updates
    ]


def unsuited(view: LeaseView, now: float) -> bool:
    """Whether the safe value about to be sent (`LeaseView.safe_next`) would turn a lease
    the charger may hold from falling to rising or back: that lease is sent again first,
    with an end that suits both (`plan_leases`); the safe value must not go before."""
    if view.safe_next is None:
        return False
    held, new = view.safes, (view.safe_next,)
    return any(
        (rises(lease.limit_a, new) and not rises(lease.limit_a, held))
        or (falls(lease.limit_a, new) and not falls(lease.limit_a, held))
        for lease in view.held(now)
    )
