"""Composite schedules: certification vectors, edge cases and properties (profiles/composite.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profiles.composite import (
    CompositeSchedule,
    Interval,
    PlacedProfile,
    composite_schedule,
    profile_periods,
    resolve_stack,
    to_charging_schedule,
)
from profiles.installed import InstalledProfiles
from profiles.model import ChargingRateUnit, parse_profile, parse_time, render_schedule
from tests.helpers import iso

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
A, W = ChargingRateUnit.A, ChargingRateUnit.W


def _profile(
    pid: int,
    purpose: str,
    periods: list[tuple[int, float]] | list[tuple[int, float, int]],
    *,
    level: int = 0,
    kind: str = "Absolute",
    duration: int | None = None,
    start: datetime | None = T0,
    unit: str = "A",
    **extra: Any,
) -> dict[str, Any]:
    """OCPP JSON for a csChargingProfiles object."""
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [
            {"startPeriod": p[0], "limit": p[1], **({"numberPhases": p[2]} if len(p) > 2 else {})}
            for p in periods
        ],
    }
    if duration is not None:
        schedule["duration"] = duration
    if start is not None and kind != "Relative":
        schedule["startSchedule"] = iso(start)
    return {
        "chargingProfileId": pid,
        "stackLevel": level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        **extra,
        "chargingSchedule": schedule,
    }


def _placed(*items: tuple[int, dict[str, Any]]) -> list[PlacedProfile]:
    return [(connector, parse_profile(data)) for connector, data in items]


def _pairs(composite: CompositeSchedule) -> list[tuple[int, float | None]]:
    return [(p.start_period, p.limit) for p in composite.periods]


def _compose(placed: list[PlacedProfile], **kwargs: Any) -> list[tuple[int, float | None]]:
    args: dict[str, Any] = {"connector_id": 1, "start": T0, "duration": 400, "unit": A}
    args.update(kwargs)
    return _pairs(composite_schedule(placed, **args))


# --- certification vectors ----------------------------------------------------


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("TC_*.json")), ids=lambda p: p.stem)
def test_certification_vector(path: Path) -> None:
    """Each OCTT composite-schedule vector (cert notes §2) yields exactly the expected periods."""
    case = json.loads(path.read_text())
    tx = case["transaction"]
    composite = composite_schedule(
        [(p["connectorId"], parse_profile(p["csChargingProfiles"])) for p in case["profiles"]],
        connector_id=case["connectorId"],
        start=parse_time(case["start"]),
        duration=case["duration"],
        unit=ChargingRateUnit(case["unit"]),
        transaction_id=None if tx is None else tx["transactionId"],
        transaction_start=None if tx is None else parse_time(tx["start"]),
    )
    assert _pairs(composite) == [tuple(e) for e in case["expected"]]


def test_render_rounds_and_fills_default() -> None:
    """Rendering fills unconstrained time with default_limit and rounds limits to 0.1."""
    placed = _placed(
        (0, _profile(1, "ChargePointMaxProfile", [(0, 3000.0)], duration=100, unit="W"))
    )
    composite = composite_schedule(placed, connector_id=1, start=T0, duration=200, unit=A)
    assert _pairs(composite) == [(0, pytest.approx(3000 / 690)), (100, None)]
    rendered = to_charging_schedule(composite, default_limit=32)
    assert rendered is not None
    assert render_schedule(rendered)["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 4.3},
        {"startPeriod": 100, "limit": 32.0},
    ]
    assert rendered.start_schedule == T0 and rendered.duration == 200
    with pytest.raises(ValueError, match="default_limit"):
        to_charging_schedule(composite)


def test_render_unconstrained_is_none() -> None:
    """A wholly unconstrained composite renders as None without a default_limit."""
    composite = composite_schedule([], connector_id=1, start=T0, duration=60, unit=W)
    assert composite.is_unconstrained
    assert to_charging_schedule(composite) is None


# --- edge cases ---------------------------------------------------------------

MIDNIGHT = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)


def test_daily_recurrence_across_midnight() -> None:
    """A Daily schedule 22:00-02:00 limits 23:00-01:00 on both sides of midnight."""
    daily = _profile(
        1,
        "TxDefaultProfile",
        [(0, 10.0), (3 * 3600, 16.0)],
        kind="Recurring",
        recurrencyKind="Daily",
        start=MIDNIGHT - timedelta(hours=2),
        duration=4 * 3600,
    )
    got = _compose(_placed((0, daily)), start=MIDNIGHT + timedelta(hours=23), duration=4 * 3600)
    # 23:00-01:00 is 10 A (first 3 h from 22:00), 01:00-02:00 16 A, 02:00-03:00 free.
    assert got == [(0, 10.0), (2 * 3600, 16.0), (3 * 3600, None)]


def test_weekly_recurrence_across_week_boundary() -> None:
    """A Weekly schedule restarts 604800 s after its start, also before startSchedule."""
    anchor = datetime(2024, 5, 6, tzinfo=UTC)  # Monday 00:00
    weekly = _profile(
        1,
        "TxDefaultProfile",
        [(0, 8.0), (3600, 12.0)],
        kind="Recurring",
        recurrencyKind="Weekly",
        start=anchor,
    )
    got = _compose(_placed((0, weekly)), start=anchor - timedelta(minutes=30), duration=7200)
    # No duration: the previous week's occurrence holds 12 A until Monday 00:00.
    assert got == [(0, 12.0), (1800, 8.0), (5400, 12.0)]
    later = _compose(_placed((0, weekly)), start=anchor + timedelta(weeks=3), duration=7200)
    assert later == [(0, 8.0), (3600, 12.0)]


def test_recurring_shorter_than_recurrence() -> None:
    """A Daily schedule of one hour applies one hour per day, then nothing."""
    daily = _profile(
        1, "TxDefaultProfile", [(0, 6.0)], kind="Recurring", recurrencyKind="Daily", duration=3600
    )
    got = _compose(_placed((0, daily)), start=T0 + timedelta(days=2), duration=2 * 86400)
    assert got == [(0, 6.0), (3600, None), (86400, 6.0), (86400 + 3600, None)]


def test_valid_to_cuts_period() -> None:
    """validTo ends a profile mid-period; a lower stack level takes over."""
    low = _profile(1, "TxDefaultProfile", [(0, 6.0)])
    high = _profile(
        2,
        "TxDefaultProfile",
        [(0, 16.0)],
        level=1,
        validTo=(T0 + timedelta(seconds=90)).isoformat(),
    )
    assert _compose(_placed((0, low), (0, high))) == [(0, 16.0), (90, 6.0)]


def test_valid_from_mid_window() -> None:
    """A profile whose validFrom lies inside the window starts constraining there."""
    later = _profile(1, "TxDefaultProfile", [(0, 6.0)], validFrom="2024-05-01T12:02:00Z")
    assert _compose(_placed((0, later))) == [(0, None), (120, 6.0)]


def test_zero_length_periods_later_wins() -> None:
    """Two periods with one startPeriod: the later one wins and no zero-length period appears."""
    profile = _profile(1, "TxDefaultProfile", [(0, 6.0), (100, 7.0), (100, 9.0), (200, 6.0)])
    assert _compose(_placed((0, profile))) == [(0, 6.0), (100, 9.0), (200, 6.0)]


@pytest.mark.parametrize(
    ("limit", "source", "phases", "target", "expected"),
    [
        (16.0, "A", 3, W, 16 * 230 * 3),
        (16.0, "A", 1, W, 16 * 230),
        (11040.0, "W", 3, A, 16.0),
        (3680.0, "W", 1, A, 16.0),
    ],
)
def test_unit_conversion(
    limit: float, source: str, phases: int, target: ChargingRateUnit, expected: float
) -> None:
    """A<->W conversion uses the period's numberPhases and 230 V."""
    profile = _profile(1, "ChargePointMaxProfile", [(0, limit, phases)], unit=source)
    got = composite_schedule(
        _placed((0, profile)), connector_id=1, start=T0, duration=60, unit=target
    )
    assert got.periods[0].limit == pytest.approx(expected)
    assert got.periods[0].number_phases == phases


def test_min_taken_in_result_unit() -> None:
    """Profiles in different units are converted before the minimum is taken."""
    cp_max = _profile(1, "ChargePointMaxProfile", [(0, 7360.0, 1)], unit="W")  # 32 A on 1 phase
    tx_default = _profile(2, "TxDefaultProfile", [(0, 20.0), (60, 40.0)])
    composite = composite_schedule(
        _placed((0, cp_max), (0, tx_default)), connector_id=1, start=T0, duration=120, unit=A
    )
    assert [(p.start_period, p.limit, p.number_phases) for p in composite.periods] == [
        (0, 20.0, 1),
        (60, pytest.approx(32.0), 1),
    ]


def test_relative_anchored_at_transaction_start() -> None:
    """A Relative TxDefault counts from the transaction start, not from the window."""
    relative = _profile(1, "TxDefaultProfile", [(0, 6.0), (300, 10.0)], kind="Relative")
    got = _compose(
        _placed((0, relative)), transaction_id=7, transaction_start=T0 - timedelta(seconds=100)
    )
    assert got == [(0, 6.0), (200, 10.0)]


def test_relative_without_transaction() -> None:
    """Without a transaction a Relative TxDefaultProfile does not apply."""
    relative = _profile(1, "TxDefaultProfile", [(0, 6.0)], kind="Relative")
    assert _compose(_placed((0, relative))) == [(0, None)]


def test_tx_profile_for_other_transaction_ignored() -> None:
    """A TxProfile for another transactionId neither limits nor replaces the TxDefault."""
    tx_default = _profile(1, "TxDefaultProfile", [(0, 6.0)])
    other = _profile(2, "TxProfile", [(0, 20.0)], transactionId=99)
    got = _compose(_placed((0, tx_default), (1, other)), transaction_id=7, transaction_start=T0)
    assert got == [(0, 6.0)]


def test_tx_profile_without_transaction_ignored() -> None:
    """With no running transaction no TxProfile applies."""
    tx = _profile(2, "TxProfile", [(0, 20.0)])
    assert _compose(_placed((1, tx))) == [(0, None)]


def test_tx_profile_on_other_connector_ignored() -> None:
    """A TxProfile on another connector does not affect this one."""
    tx = _profile(2, "TxProfile", [(0, 20.0)], transactionId=7)
    got = _compose(_placed((2, tx)), transaction_id=7, transaction_start=T0)
    assert got == [(0, None)]


def test_connector_tx_default_overrides_connector_zero() -> None:
    """A connector-specific TxDefault outranks connector 0's at any stack level, then falls back."""
    shared = _profile(1, "TxDefaultProfile", [(0, 6.0)], level=5)
    own = _profile(2, "TxDefaultProfile", [(0, 16.0)], level=0, duration=100)
    placed = _placed((0, shared), (1, own))
    assert _compose(placed) == [(0, 16.0), (100, 6.0)]
    assert _compose(placed, connector_id=2) == [(0, 6.0)]


def test_connector_zero_is_charge_point_max_only() -> None:
    """For connector 0 the composite is the ChargePointMaxProfile alone."""
    cp_max = _profile(1, "ChargePointMaxProfile", [(0, 32.0)])
    tx_default = _profile(2, "TxDefaultProfile", [(0, 6.0)])
    assert _compose(_placed((0, cp_max), (0, tx_default)), connector_id=0) == [(0, 32.0)]


@pytest.mark.parametrize("offset", [timedelta(days=-2), timedelta(days=2)])
def test_window_outside_all_profiles(offset: timedelta) -> None:
    """A window entirely before or after every profile is unconstrained."""
    profile = _profile(
        1,
        "TxDefaultProfile",
        [(0, 6.0)],
        duration=3600,
        validFrom=T0.isoformat(),
        validTo=(T0 + timedelta(days=1)).isoformat(),
    )
    assert _compose(_placed((0, profile)), start=T0 + offset) == [(0, None)]


def test_nonpositive_duration_rejected() -> None:
    """A window of no length is a caller error."""
    with pytest.raises(ValueError, match="duration"):
        composite_schedule([], connector_id=1, start=T0, duration=0, unit=A)


def test_pipeline_steps_alone() -> None:
    """profile_periods clips to the window and resolve_stack prefers the higher rank."""
    profile = parse_profile(_profile(1, "TxDefaultProfile", [(0, 6.0), (50, 8.0)], duration=80))
    low = profile_periods(profile, start=T0 + timedelta(seconds=20), duration=100)
    assert [(iv.start, iv.end, iv.limit) for iv in low] == [(0, 30, 6.0), (30, 60, 8.0)]
    high = [Interval(start=10, end=40, limit=1.0, unit=A)]
    got = resolve_stack([((0,), low), ((1,), high)])
    assert [(iv.start, iv.end, iv.limit) for iv in got] == [
        (0, 10, 6.0),
        (10, 40, 1.0),
        (40, 60, 8.0),
    ]


# --- properties ---------------------------------------------------------------

DURATION = 300


@st.composite
def _periods(draw: st.DrawFn) -> list[tuple[int, float, int]]:
    starts = sorted(draw(st.sets(st.integers(1, DURATION), max_size=4)))
    return [
        (s, float(draw(st.integers(0, 64))), draw(st.sampled_from([1, 3]))) for s in [0, *starts]
    ]


@st.composite
def _any_profile(draw: st.DrawFn, pid: int, purpose: str) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if draw(st.booleans()):
        extra["validFrom"] = (T0 + timedelta(seconds=draw(st.integers(-50, DURATION)))).isoformat()
    if draw(st.booleans()):
        extra["validTo"] = (T0 + timedelta(seconds=draw(st.integers(0, DURATION + 50)))).isoformat()
    return _profile(
        pid,
        purpose,
        draw(_periods()),
        level=draw(st.integers(0, 3)),
        duration=draw(st.none() | st.integers(1, DURATION + 50)),
        start=T0 + timedelta(seconds=draw(st.integers(-100, 100))),
        unit=draw(st.sampled_from(["A", "W"])),
        **extra,
    )


@st.composite
def _installed(draw: st.DrawFn) -> tuple[dict[str, Any], list[PlacedProfile]]:
    cp_max = draw(_any_profile(1, "ChargePointMaxProfile"))
    others: list[tuple[int, dict[str, Any]]] = []
    for pid in range(2, 2 + draw(st.integers(0, 4))):
        purpose = draw(st.sampled_from(["TxDefaultProfile", "TxProfile"]))
        connector = 1 if purpose == "TxProfile" else draw(st.sampled_from([0, 1]))
        others.append((connector, draw(_any_profile(pid, purpose))))
    return cp_max, _placed((0, cp_max), *others)


def _limit_at(composite: CompositeSchedule, t: int) -> float | None:
    return [p.limit for p in composite.periods if p.start_period <= t][-1]


def _cp_max_a_at(data: dict[str, Any], t: int) -> float | None:
    """Independent oracle: the single ChargePointMax profile's limit in A at offset t."""
    moment = T0 + timedelta(seconds=t)
    if "validFrom" in data and moment < parse_time(data["validFrom"]):
        return None
    if "validTo" in data and moment >= parse_time(data["validTo"]):
        return None
    schedule = data["chargingSchedule"]
    since = (moment - parse_time(schedule["startSchedule"])).total_seconds()
    if since < 0 or ("duration" in schedule and since >= schedule["duration"]):
        return None
    period = [p for p in schedule["chargingSchedulePeriod"] if p["startPeriod"] <= since][-1]
    scale = 230.0 * period["numberPhases"] if schedule["chargingRateUnit"] == "W" else 1.0
    return float(period["limit"]) / scale


@settings(max_examples=200, deadline=None)
@given(_installed(), st.sampled_from([0, 1]), st.booleans())
def test_never_exceeds_charge_point_max(
    installed: tuple[dict[str, Any], list[PlacedProfile]], connector: int, running: bool
) -> None:
    """The composite never exceeds the active ChargePointMaxProfile at any instant."""
    cp_max, placed = installed
    composite = composite_schedule(
        placed,
        connector_id=connector,
        start=T0,
        duration=DURATION,
        unit=A,
        transaction_id=1 if running else None,
        transaction_start=T0 if running else None,
    )
    for t in range(DURATION):
        bound = _cp_max_a_at(cp_max, t)
        if bound is not None:
            limit = _limit_at(composite, t)
            assert limit is not None and limit <= bound + 1e-9


@settings(max_examples=200, deadline=None)
@given(_installed(), st.integers(1, 2 * DURATION), st.sampled_from([A, W]))
def test_composite_shape(
    installed: tuple[dict[str, Any], list[PlacedProfile]], duration: int, unit: ChargingRateUnit
) -> None:
    """Periods start at 0, strictly increase inside [0, duration) and neighbours differ."""
    composite = composite_schedule(
        installed[1], connector_id=1, start=T0, duration=duration, unit=unit, transaction_id=1
    )
    starts = [p.start_period for p in composite.periods]
    assert starts[0] == 0
    assert all(a < b for a, b in pairwise(starts))
    assert starts[-1] < duration
    keys = [(p.limit, p.number_phases) for p in composite.periods]
    assert all(a != b for a, b in pairwise(keys))
    assert composite.duration == duration and composite.unit is unit


@settings(max_examples=50, deadline=None)
@given(
    st.integers(0, 3),
    st.integers(1, 10**6),
    st.sampled_from([A, W]),
    st.integers(-(10**8), 10**8),
)
def test_no_profiles_unconstrained(
    connector: int, duration: int, unit: ChargingRateUnit, shift: int
) -> None:
    """With no profiles the composite is one unconstrained period."""
    composite = composite_schedule(
        [],
        connector_id=connector,
        start=T0 + timedelta(seconds=shift),
        duration=duration,
        unit=unit,
    )
    assert _pairs(composite) == [(0, None)]


@settings(max_examples=100, deadline=None)
@given(_installed(), st.sampled_from([0, 1]))
def test_clearing_everything_leaves_no_limit(
    installed: tuple[dict[str, Any], list[PlacedProfile]], connector: int
) -> None:
    """After a ClearChargingProfile with no criteria, nothing constrains any connector."""
    _, placed = installed
    holding = InstalledProfiles()
    for connector_id, profile in placed:
        holding = holding.set(connector_id, profile)
    cleared, removed = holding.clear()
    assert len(removed) == len(holding) and len(cleared) == 0
    composite = composite_schedule(
        [(i.connector_id, i.profile) for i in cleared],
        connector_id=connector,
        start=T0,
        duration=DURATION,
        unit=A,
        transaction_id=1,
        transaction_start=T0,
    )
    assert composite.is_unconstrained
