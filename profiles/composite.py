"""Composite charging schedules (OCPP 1.6 §3.13.5, §5.7; certification notes §3.9).

The composite for one connector over the window ``[start, start + duration)`` is
computed by a pipeline of pure functions, in the shape of EVerest libocpp's
``profile.hpp``::

    profile_periods   one profile → its limit intervals inside the window
    resolve_stack     several profiles of one purpose → highest stack level wins
    merge_tx_over_default
                      a present TxProfile replaces the TxDefaultProfile
    to_unit           every interval in the requested ChargingRateUnit
    apply_max         minimum with the ChargePointMaxProfile
    merge_adjacent    equal neighbours joined; gaps filled as unconstrained

Rules (each implemented where named):

Rule 1 (validity, §7.8): a profile applies only within ``[validFrom, validTo)``;
    absent bounds are unbounded. ``validTo`` cuts a period short.
Rule 2 (kinds, §7.9): *Absolute* periods count from ``startSchedule`` (absent:
    from the window start). *Relative* periods count from the transaction start;
    with no transaction a Relative TxProfile/TxDefaultProfile does not apply, and a
    Relative ChargePointMaxProfile counts from the window start. *Recurring*
    schedules restart every 86 400 s (Daily) or 604 800 s (Weekly) from
    ``startSchedule``, before it as well as after it, in plain UTC arithmetic (no
    DST); an occurrence lasts ``min(duration, recurrence)``.
Rule 3 (schedule duration, §7.13): a period lasts until the next period's
    ``startPeriod``; "periods beyond duration are not executed" and after
    ``duration`` the profile no longer applies. Without ``duration`` the last
    period holds indefinitely. Of two periods with the same ``startPeriod`` the
    later one wins (no zero-length output).
Rule 4 (stacking, §3.13.2): per purpose, at each instant the valid profile with the
    highest ``stackLevel`` wins; when it ends the next one takes over (TC_072_CS).
    Ties (not installable per §3.13.2, but tolerated) go to the higher
    ``chargingProfileId``.
Rule 5 (connector TxDefault, §3.13.2): a TxDefaultProfile on the connector ranks
    above every connector-0 TxDefaultProfile, whatever the stack levels; where
    (in time) no connector-specific one applies, the connector-0 stack fills in.
Rule 6 (TxProfile, §3.13.2, TC_066_CS): a TxProfile applies only to its connector
    and, if it carries ``transactionId``, only to that transaction; with no running
    transaction none applies. While one is *present* it replaces the
    TxDefaultProfile for the whole transaction, even after its schedule ended.
Rule 7 (ChargePointMax, §3.13.5): only on connector 0; the composite is the
    per-interval minimum of ChargePointMax and (TxProfile or TxDefaultProfile).
    For connector 0 the composite is the ChargePointMax alone (the sum over the
    connectors is out of scope).
Rule 8 (units, §7.12): W = A * voltage * phases, phases = the period's
    ``numberPhases`` (absent: ``default_phases``). Limits are converted to the
    result unit before minima are taken, and rounded to 0.1 only by
    `to_charging_schedule`.

Unconstrained time: the composite keeps ``limit=None`` where no profile
constrains. `to_charging_schedule` turns that into an OCPP schedule, filling such
intervals with a caller-supplied ``default_limit`` (e.g. the charger's rating).

Time: every datetime is aware UTC; internally times are whole seconds after the
window start (OCPP periods are whole seconds), sub-second offsets are floored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import pairwise

from profiles.model import (
    ChargingProfile,
    ChargingProfileKind,
    ChargingProfilePurpose,
    ChargingRateUnit,
    ChargingSchedule,
    ChargingSchedulePeriod,
    RecurrencyKind,
    render_limit,
)

__all__ = [
    "CompositePeriod",
    "CompositeSchedule",
    "Interval",
    "PlacedProfile",
    "apply_max",
    "composite_schedule",
    "merge_adjacent",
    "merge_tx_over_default",
    "profile_periods",
    "resolve_stack",
    "to_charging_schedule",
    "to_unit",
]

PlacedProfile = tuple[int, ChargingProfile]
"""An installed profile with the connector it was installed on: ``(connector_id, profile)``."""

RECURRENCE_S = {RecurrencyKind.DAILY: 86_400, RecurrencyKind.WEEKLY: 604_800}
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Interval:
    """``limit`` (in ``unit``) over ``[start, end)`` seconds after the window start."""

    start: int
    end: int
    limit: float
    unit: ChargingRateUnit
    number_phases: int | None = None  # None: absent on the wire


@dataclass(frozen=True, slots=True, kw_only=True)
class CompositePeriod:
    """From ``start_period`` s on, at most ``limit`` (None: unconstrained)."""

    start_period: int
    limit: float | None
    number_phases: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CompositeSchedule:
    """A composite over ``[start, start + duration)``.

    Invariants: ``periods[0].start_period == 0``; start periods strictly increase
    and lie in ``[0, duration)``; no two neighbours are equal; limits in ``unit``.
    """

    start: datetime
    duration: int
    unit: ChargingRateUnit
    periods: tuple[CompositePeriod, ...]

    @property
    def is_unconstrained(self) -> bool:
        """True when no profile constrains any part of the window."""
        return all(p.limit is None for p in self.periods)


def _offset(moment: datetime, start: datetime) -> int:
    """Whole seconds from ``start`` to ``moment``, floored."""
    return (moment - start) // _SECOND


def _schedule_periods(profile: ChargingProfile) -> list[ChargingSchedulePeriod]:
    """Periods sorted by start; of equal starts the later in the list wins (Rule 3)."""
    by_start: dict[int, ChargingSchedulePeriod] = {}
    for period in profile.schedule.periods:
        by_start[period.start_period] = period
    return [by_start[k] for k in sorted(by_start)]


def _anchors(
    profile: ChargingProfile, *, start: datetime, duration: int, transaction_start: datetime | None
) -> list[tuple[int, int]]:
    """``(schedule_start, schedule_end)`` offsets of each occurrence touching the window."""
    schedule = profile.schedule
    length = schedule.duration
    if profile.kind is ChargingProfileKind.RELATIVE:
        if transaction_start is None:
            if profile.purpose is not ChargingProfilePurpose.CHARGE_POINT_MAX:
                return []  # Rule 2: Relative Tx/TxDefault needs a transaction
            origin = 0
        else:
            origin = _offset(transaction_start, start)
    else:
        base = schedule.start_schedule
        origin = 0 if base is None else _offset(base, start)
    if profile.kind is not ChargingProfileKind.RECURRING:
        return [(origin, duration if length is None else origin + length)]
    recurrence = RECURRENCE_S[profile.recurrency_kind or RecurrencyKind.DAILY]
    length = recurrence if length is None else min(length, recurrence)
    first = (0 - origin) // recurrence
    last = (duration - 1 - origin) // recurrence
    return [
        (origin + k * recurrence, origin + k * recurrence + length) for k in range(first, last + 1)
    ]


def profile_periods(
    profile: ChargingProfile,
    *,
    start: datetime,
    duration: int,
    transaction_start: datetime | None = None,
) -> list[Interval]:
    """The limit intervals of one profile inside ``[0, duration)`` (Rules 1-3).

    Args:
        profile: the profile; its connector and transaction are not checked here.
        start: window start (aware UTC); offsets count from it.
        duration: window length in seconds.
        transaction_start: anchor for Relative profiles, None without a transaction.

    Returns:
        Sorted, non-overlapping intervals in the profile's own unit.
    """
    low = 0 if profile.valid_from is None else max(0, _offset(profile.valid_from, start))
    high = duration if profile.valid_to is None else min(duration, _offset(profile.valid_to, start))
    periods = _schedule_periods(profile)
    unit = profile.schedule.charging_rate_unit
    result: list[Interval] = []
    for origin, schedule_end in _anchors(
        profile, start=start, duration=duration, transaction_start=transaction_start
    ):
        for i, period in enumerate(periods):
            begin = origin + period.start_period
            end = origin + periods[i + 1].start_period if i + 1 < len(periods) else schedule_end
            begin, end = max(begin, low), min(end, schedule_end, high)
            if begin < end:
                result.append(
                    Interval(
                        start=begin,
                        end=end,
                        limit=period.limit,
                        unit=unit,
                        number_phases=period.number_phases,
                    )
                )
    return result


def _uncovered(interval: Interval, covered: Sequence[Interval]) -> list[Interval]:
    """The parts of ``interval`` outside the sorted, disjoint ``covered``."""
    pieces: list[Interval] = []
    cursor = interval.start
    for block in covered:
        if block.end <= cursor or block.start >= interval.end:
            continue
        if block.start > cursor:
            pieces.append(replace(interval, start=cursor, end=block.start))
        cursor = max(cursor, block.end)
    if cursor < interval.end:
        pieces.append(replace(interval, start=cursor, end=interval.end))
    return pieces


def resolve_stack(layers: Iterable[tuple[tuple[int, ...], Sequence[Interval]]]) -> list[Interval]:
    """At each instant the interval of the highest-ranked layer (Rule 4).

    Args:
        layers: ``(rank, intervals)`` per profile; ranks compare as tuples, e.g.
            ``(stack_level, charging_profile_id)``; a higher rank wins.

    Returns:
        Sorted, non-overlapping intervals; where no layer has one there is a gap.
    """
    result: list[Interval] = []
    for _, intervals in sorted(layers, key=lambda layer: layer[0], reverse=True):
        added = [piece for iv in intervals for piece in _uncovered(iv, result)]
        result = sorted(result + added, key=lambda iv: iv.start)
    return result


def merge_tx_over_default(
    tx: Sequence[Interval], tx_default: Sequence[Interval], *, tx_present: bool
) -> list[Interval]:
    """The TxProfile stack if one is present, else the TxDefaultProfile stack (Rule 6).

    A present TxProfile replaces the default for the whole transaction, including
    the time after its own schedule ended (TC_066_CS).
    """
    return list(tx) if tx_present else list(tx_default)


def _convert(
    limit: float, source: ChargingRateUnit, target: ChargingRateUnit, phase_volts: float
) -> float:
    """``limit`` from ``source`` to ``target``; ``phase_volts`` is voltage * phases."""
    if source is target:
        return limit
    if target is ChargingRateUnit.W:
        return limit * phase_volts
    return limit / phase_volts


def to_unit(
    intervals: Iterable[Interval],
    unit: ChargingRateUnit,
    *,
    voltage: float = 230.0,
    default_phases: int = 3,
) -> list[Interval]:
    """Intervals with limits in ``unit``: W = A * voltage * phases (Rule 8).

    Args:
        voltage: nominal phase voltage in V.
        default_phases: phases used where an interval has no ``number_phases``.
    """
    result = []
    for iv in intervals:
        phases = iv.number_phases if iv.number_phases is not None else default_phases
        limit = _convert(iv.limit, iv.unit, unit, voltage * phases)
        result.append(replace(iv, limit=limit, unit=unit))
    return result


def _at(timeline: Sequence[Interval], begin: int) -> Interval | None:
    for iv in timeline:
        if iv.start <= begin < iv.end:
            return iv
    return None


def apply_max(limits: Sequence[Interval], maximum: Sequence[Interval]) -> list[Interval]:
    """Per-instant minimum of two timelines in the same unit; a gap is unconstrained (Rule 7).

    Where both constrain, ``number_phases`` is the smaller of the two given ones.
    """
    edges = sorted({e for iv in (*limits, *maximum) for e in (iv.start, iv.end)})
    result = []
    for begin, end in pairwise(edges):
        a, b = _at(limits, begin), _at(maximum, begin)
        if a is None or b is None:
            chosen = a or b
            if chosen is not None:
                result.append(replace(chosen, start=begin, end=end))
            continue
        if a.unit is not b.unit:
            raise ValueError("apply_max: convert both timelines to one unit first")
        phases = [p for p in (a.number_phases, b.number_phases) if p is not None]
        result.append(
            replace(
                a,
                start=begin,
                end=end,
                limit=min(a.limit, b.limit),
                number_phases=min(phases) if phases else None,
            )
        )
    return result


def merge_adjacent(intervals: Sequence[Interval], *, duration: int) -> tuple[CompositePeriod, ...]:
    """Periods covering ``[0, duration)``: gaps become ``limit=None``, equal neighbours merge."""
    periods: list[CompositePeriod] = []

    def push(begin: int, limit: float | None, phases: int | None) -> None:
        if periods and (periods[-1].limit, periods[-1].number_phases) == (limit, phases):
            return
        periods.append(CompositePeriod(start_period=begin, limit=limit, number_phases=phases))

    cursor = 0
    for iv in sorted(intervals, key=lambda iv: iv.start):
        if iv.start > cursor:
            push(cursor, None, None)
        push(iv.start, iv.limit, iv.number_phases)
        cursor = iv.end
    if cursor < duration or not periods:
        push(cursor, None, None)
    return tuple(periods)


def _stack(
    profiles: Iterable[PlacedProfile],
    *,
    start: datetime,
    duration: int,
    transaction_start: datetime | None,
    rank_specific: int | None = None,
) -> list[Interval]:
    """Resolve one purpose's stack; connector ``rank_specific`` outranks the rest (Rule 5)."""
    layers = [
        (
            (int(connector == rank_specific), p.stack_level, p.charging_profile_id),
            profile_periods(p, start=start, duration=duration, transaction_start=transaction_start),
        )
        for connector, p in profiles
    ]
    return resolve_stack(layers)


def composite_schedule(
    profiles: Iterable[PlacedProfile],
    *,
    connector_id: int,
    start: datetime,
    duration: int,
    unit: ChargingRateUnit,
    transaction_id: int | None = None,
    transaction_start: datetime | None = None,
    voltage: float = 230.0,
    default_phases: int = 3,
) -> CompositeSchedule:
    """The composite schedule of one connector over ``[start, start + duration)``.

    Args:
        profiles: every profile installed on the charger, as ``(connector_id, profile)``.
        connector_id: the connector; 0 is the whole charger (ChargePointMax only).
        start: window start, aware UTC.
        duration: window length in seconds (> 0).
        unit: the result's unit.
        transaction_id: the running transaction on the connector, None if idle.
        transaction_start: its start, the anchor of Relative profiles.
        voltage: nominal phase voltage in V, for A↔W.
        default_phases: phases assumed for conversion where a period gives none.

    Returns:
        The composite; ``limit=None`` marks unconstrained periods. Render it with
        `to_charging_schedule`.

    Raises:
        ValueError: ``duration`` is not positive.
    """
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {duration}")
    placed = list(profiles)
    running = transaction_id is not None
    tx_start = transaction_start if running else None
    max_profiles = [
        (c, p) for c, p in placed if p.purpose is ChargingProfilePurpose.CHARGE_POINT_MAX and c == 0
    ]
    maximum = to_unit(
        _stack(max_profiles, start=start, duration=duration, transaction_start=tx_start),
        unit,
        voltage=voltage,
        default_phases=default_phases,
    )
    if connector_id == 0:
        limits: list[Interval] = []
    else:
        tx_profiles = [
            (c, p)
            for c, p in placed
            if p.purpose is ChargingProfilePurpose.TX
            and c == connector_id
            and running
            and p.transaction_id in (None, transaction_id)
        ]
        defaults = [
            (c, p)
            for c, p in placed
            if p.purpose is ChargingProfilePurpose.TX_DEFAULT and c in (0, connector_id)
        ]
        chosen = merge_tx_over_default(
            _stack(tx_profiles, start=start, duration=duration, transaction_start=tx_start),
            _stack(
                defaults,
                start=start,
                duration=duration,
                transaction_start=tx_start,
                rank_specific=connector_id,
            ),
            tx_present=bool(tx_profiles),
        )
        limits = to_unit(chosen, unit, voltage=voltage, default_phases=default_phases)
    return CompositeSchedule(
        start=start,
        duration=duration,
        unit=unit,
        periods=merge_adjacent(apply_max(limits, maximum), duration=duration),
    )


def to_charging_schedule(
    composite: CompositeSchedule, *, default_limit: float | None = None
) -> ChargingSchedule | None:
    """The composite as an OCPP ChargingSchedule, limits rounded to 0.1 (`render_limit`).

    Args:
        composite: from `composite_schedule`.
        default_limit: the limit (in ``composite.unit``) for unconstrained periods,
            e.g. the charger's rating.

    Returns:
        The schedule with ``start_schedule=composite.start`` and
        ``duration=composite.duration``; None when the whole window is
        unconstrained and no ``default_limit`` is given.

    Raises:
        ValueError: part of the window is unconstrained and ``default_limit`` is None;
            pass the charger's rating.
    """
    if default_limit is None and composite.is_unconstrained:
        return None
    periods: list[ChargingSchedulePeriod] = []
    for p in composite.periods:
        limit = p.limit if p.limit is not None else default_limit
        if limit is None:
            raise ValueError("unconstrained period in the composite: pass default_limit")
        rounded = render_limit(limit)
        if periods and (periods[-1].limit, periods[-1].number_phases) == (rounded, p.number_phases):
            continue
        periods.append(
            ChargingSchedulePeriod(
                start_period=p.start_period, limit=rounded, number_phases=p.number_phases
            )
        )
    return ChargingSchedule(
        charging_rate_unit=composite.unit,
        periods=tuple(periods),
        duration=composite.duration,
        start_schedule=composite.start,
    )
