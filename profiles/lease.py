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

Leases end on a site-wide grid of ``lease_time / 2`` (`lease_end`), so if this
controller dies every charger drops to its safe value at the same moment: chargers
whose leases ended early would otherwise sit at their safe value next to others
still on a high lease, a sum nobody budgeted. Every lease is refreshed once a grid
step, so a charger costs two SetChargingProfile calls a minute at a 60 s lease.

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
from collections.abc import Mapping
from dataclasses import dataclass
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
    "SAFE_PROFILE_ID",
    "SCHEDULE_BACKDATE",
    "LeasePolicy",
    "LeaseUpdate",
    "LeaseView",
    "Strategy",
    "is_site_profile",
    "lease_end",
    "plan_leases",
    "refresh_due",
    "site_profile",
    "strategies",
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


def refresh_due(valid_to: float | None, now: float, lease_time: float) -> bool:
    """Whether a lease ending at `valid_to` is refreshed now: with half a lease or less
    left, so a refresh that fails has half a lease to be retried in."""
    return valid_to is None or valid_to - now <= lease_time / 2


def lease_end(now: float, lease_time: float) -> float:
    """When a lease sent at `now` (epoch s) ends: on the site-wide grid of
    ``lease_time / 2``, more than half a lease and at most a whole lease away."""
    step = lease_time / 2
    return (math.floor(now / step) + 2) * step


@dataclass(frozen=True, slots=True)
class LeasePolicy:
    lease_time: float = 60.0
    """Seconds a lease lasts at most: how long a dead controller goes unnoticed."""
    min_interval: float = 5.0
    """Seconds after a change of one charger's lease before it is raised (lowering is
    never delayed)."""


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

    def effective_a(self, now: float) -> float:
        """The limit the charger applies now: the lease while valid, else the safe value."""
        if self.lease_a is not None and self.valid_to is not None and self.valid_to > now:
            return self.lease_a
        return math.inf if self.safe_a is None else self.safe_a


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


def plan_leases(
    views: Mapping[K, LeaseView],
    targets: Mapping[K, float],
    now: float,
    policy: LeasePolicy,
) -> list[LeaseUpdate[K]]:
    """The leases to send now, lowering ones first.

    - A charger with a call in flight gets nothing (one call at a time).
    - Lowering is sent at once. While any lowering is in flight or planned, raises
      wait: capacity moves from one charger to another only once the first let go.
    - A raise waits `min_interval` after the lease last changed value, and, unless it
      starts a charger from 0 A, for the refresh when that is due within `min_interval`.
    - A lease with half its time or less left is refreshed (`refresh_due`: at
      the target, or at the current limit while a raise must wait); a charger without a
      lease gets one.
    """
    lowering: list[LeaseUpdate[K]] = []
    raising: list[LeaseUpdate[K]] = []
    refreshing: list[LeaseUpdate[K]] = []
    blocked = False
    end = lease_end(now, policy.lease_time)
    for key, view in views.items():
        if view.busy:
            blocked = blocked or view.lowering
            continue
        target = targets.get(key)
        if target is None:
            continue
        current = view.effective_a(now)
        stale = refresh_due(view.valid_to, now, policy.lease_time)
        if target < current - EPS_A:
            lowering.append(LeaseUpdate(key, target, end, "lower"))
        elif target > current + EPS_A:
            spaced = view.changed_at is None or now - view.changed_at >= policy.min_interval
            # A raise of a charging EV that its refresh would carry within min_interval
            # waits for it: one call instead of two (a start from 0 A never waits).
            soon = (
                not stale
                and 0 < current < math.inf
                and view.valid_to is not None
                and refresh_due(view.valid_to, now + policy.min_interval, policy.lease_time)
            )
            if spaced and not soon:
                raising.append(LeaseUpdate(key, target, end, "raise"))
            elif stale:
                refreshing.append(LeaseUpdate(key, current, end, "refresh"))
        elif stale:
            refreshing.append(LeaseUpdate(key, target, end, "refresh"))
    if lowering or blocked:
        # Raises wait for the next cycle; their leases are still refreshed if due.
        for update in raising:
            view = views[update.key]
            if refresh_due(view.valid_to, now, policy.lease_time):
                current = view.effective_a(now)
                if current != math.inf:
                    refreshing.append(LeaseUpdate(update.key, current, end, "refresh"))
        raising = []
    return lowering + refreshing + raising
