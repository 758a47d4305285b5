"""validate_profile: OCPP 1.6 smart-charging rules a profile must meet before it is sent."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from profiles.model import (
    ChargingProfile,
    ChargingProfileKind,
    ChargingProfilePurpose,
    ChargingRateUnit,
    ChargingSchedule,
    ChargingSchedulePeriod,
    RecurrencyKind,
    parse_profile,
)
from profiles.validation import ProfileProblem, validate_profile

Purpose = ChargingProfilePurpose
Kind = ChargingProfileKind
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
PERIODS = "chargingSchedule.chargingSchedulePeriod"

# TC_056_CSMS: TxDefaultProfile, Absolute, validFrom/validTo, startSchedule, duration, 6.0 A.
TC_056 = {
    "chargingProfileId": 1,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "validFrom": "2024-05-01T12:00:00.000Z",
    "validTo": "2024-05-02T12:00:00.000Z",
    "chargingSchedule": {
        "duration": 3600,
        "startSchedule": "2024-05-01T12:00:00.000Z",
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6.0, "numberPhases": 3}],
    },
}

# TC_059_CSMS (2024-04): Relative TxProfile inside RemoteStartTransaction, no transactionId.
TC_059 = {
    "chargingProfileId": 2,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxProfile",
    "chargingProfileKind": "Relative",
    "chargingSchedule": {
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6000.0}],
    },
}


def profile(
    purpose: ChargingProfilePurpose = Purpose.TX_DEFAULT,
    kind: ChargingProfileKind = Kind.RELATIVE,
    periods: tuple[tuple[int, float], ...] = ((0, 16.0),),
    **changes: Any,
) -> ChargingProfile:
    """A valid profile by default; `changes` override ChargingProfile fields."""
    schedule = ChargingSchedule(
        charging_rate_unit=ChargingRateUnit.A,
        periods=tuple(ChargingSchedulePeriod(start_period=s, limit=lim) for s, lim in periods),
        start_schedule=None if kind is Kind.RELATIVE else T0,
    )
    recurrency = RecurrencyKind.DAILY if kind is Kind.RECURRING else None
    base = ChargingProfile(
        charging_profile_id=1,
        stack_level=0,
        purpose=purpose,
        kind=kind,
        schedule=schedule,
        recurrency_kind=recurrency,
    )
    return replace(base, **changes)


def with_schedule(p: ChargingProfile, **changes: Any) -> ChargingProfile:
    """`p` with ChargingSchedule fields overridden."""
    return replace(p, schedule=replace(p.schedule, **changes))


def check(p: ChargingProfile, connector_id: int = 1, tx: int | None = None, **kw: Any) -> list[str]:
    """The fields flagged for `p` on `connector_id`."""
    problems = validate_profile(p, connector_id=connector_id, active_transaction_id=tx, **kw)
    assert all(problem.message.strip() for problem in problems)
    return [problem.field for problem in problems]


# --- certification fixtures ---------------------------------------------------------------


def test_tc_056_tx_default_profile_is_valid() -> None:
    """The TC_056 TxDefaultProfile passes on connector 0 and on a connector."""
    p = parse_profile(TC_056)
    assert validate_profile(p, connector_id=0, active_transaction_id=None) == []
    assert validate_profile(p, connector_id=1, active_transaction_id=None) == []


def test_tc_057_tx_profile_with_running_transaction_is_valid() -> None:
    """A TC_057 TxProfile carrying the running transaction's id passes."""
    p = replace(parse_profile(TC_056), purpose=Purpose.TX, transaction_id=42)
    assert validate_profile(p, connector_id=1, active_transaction_id=42) == []


def test_tc_059_remote_start_profile_is_valid() -> None:
    """The TC_059 Relative TxProfile passes inside RemoteStartTransaction with no transaction."""
    p = parse_profile(TC_059)
    assert (
        validate_profile(p, connector_id=1, active_transaction_id=None, in_remote_start=True) == []
    )


# --- purpose versus connector and transaction ----------------------------------------------


def test_charge_point_max_only_on_connector_0() -> None:
    """ChargePointMaxProfile is accepted on connector 0 and flagged on connector 1."""
    p = profile(Purpose.CHARGE_POINT_MAX)
    assert check(p, connector_id=0) == []
    assert check(p, connector_id=1) == ["connectorId"]


@pytest.mark.parametrize("connector_id", [0, 1, 2])
def test_tx_default_on_0_or_a_connector(connector_id: int) -> None:
    """TxDefaultProfile is fine on connector 0 and on any connector."""
    assert check(profile(Purpose.TX_DEFAULT), connector_id=connector_id) == []


def test_negative_connector_flagged() -> None:
    """A negative connectorId is flagged."""
    assert check(profile(), connector_id=-1) == ["connectorId"]


def test_tx_profile_not_on_connector_0() -> None:
    """A TxProfile on connector 0 is flagged."""
    assert check(profile(Purpose.TX), connector_id=0, tx=7) == ["connectorId"]


def test_tx_profile_needs_active_transaction() -> None:
    """A TxProfile without a transaction on the connector is flagged, with a readable reason."""
    problems = validate_profile(profile(Purpose.TX), connector_id=2, active_transaction_id=None)
    assert [p.field for p in problems] == ["chargingProfilePurpose"]
    assert "no transaction is running on connector 2" in problems[0].message
    assert check(profile(Purpose.TX), connector_id=2, tx=5) == []


def test_tx_profile_transaction_id_must_match() -> None:
    """A TxProfile's transactionId must be the transaction running on the connector."""
    p = profile(Purpose.TX, transaction_id=8)
    assert check(p, tx=8) == []
    problems = validate_profile(p, connector_id=1, active_transaction_id=9)
    assert problems == [
        ProfileProblem("transactionId", "is 8, but the transaction running on connector 1 is 9")
    ]


def test_transaction_id_only_on_tx_profile() -> None:
    """A transactionId on a TxDefaultProfile is flagged (§7.8: only valid for TxProfile)."""
    assert check(profile(Purpose.TX_DEFAULT, transaction_id=3), tx=3) == ["transactionId"]


def test_remote_start_must_be_tx_profile() -> None:
    """Inside RemoteStartTransaction a TxDefaultProfile is flagged."""
    assert check(profile(Purpose.TX_DEFAULT), in_remote_start=True) == ["chargingProfilePurpose"]


def test_remote_start_must_not_carry_transaction_id() -> None:
    """Inside RemoteStartTransaction a transactionId is flagged (TC_059)."""
    p = profile(Purpose.TX, transaction_id=1)
    assert check(p, in_remote_start=True) == ["transactionId"]


def test_remote_start_without_connector_allowed() -> None:
    """A RemoteStartTransaction without connectorId (0) may carry a TxProfile."""
    assert check(profile(Purpose.TX), connector_id=0, in_remote_start=True) == []


# --- kinds ------------------------------------------------------------------------------------


def test_absolute_needs_start_schedule() -> None:
    """An Absolute profile without startSchedule is flagged."""
    p = with_schedule(profile(kind=Kind.ABSOLUTE), start_schedule=None)
    assert check(p) == ["chargingSchedule.startSchedule"]


def test_relative_must_not_have_start_schedule() -> None:
    """A Relative profile with startSchedule is flagged."""
    p = with_schedule(profile(kind=Kind.RELATIVE), start_schedule=T0)
    assert check(p) == ["chargingSchedule.startSchedule"]


def test_recurring_needs_recurrency_kind_and_start_schedule() -> None:
    """A Recurring profile needs both recurrencyKind and startSchedule."""
    assert check(profile(kind=Kind.RECURRING)) == []
    p = with_schedule(profile(kind=Kind.RECURRING, recurrency_kind=None), start_schedule=None)
    assert check(p) == ["recurrencyKind", "chargingSchedule.startSchedule"]


@pytest.mark.parametrize("kind", [Kind.ABSOLUTE, Kind.RELATIVE])
def test_recurrency_kind_only_with_recurring(kind: ChargingProfileKind) -> None:
    """recurrencyKind on a non-Recurring profile is flagged (errata 3.56)."""
    p = profile(kind=kind, recurrency_kind=RecurrencyKind.WEEKLY)
    assert check(p) == ["recurrencyKind"]


# --- schedule periods -------------------------------------------------------------------------

# (periods, duration, expected flagged fields): each row one rule of §7.13/§7.14.
PERIOD_CASES: list[tuple[tuple[tuple[int, float], ...], int | None, list[str]]] = [
    # fine: increasing starts, one-decimal limits, last period within duration
    (((0, 16.0), (60, 6.5), (120, 0.0)), 180, []),
    # no period at all
    ((), None, [PERIODS]),
    # first period must start at 0
    (((10, 16.0),), None, [f"{PERIODS}[0].startPeriod"]),
    # equal start periods: not strictly increasing
    (((0, 16.0), (60, 6.0), (60, 8.0)), None, [f"{PERIODS}[2].startPeriod"]),
    # decreasing start periods
    (((0, 16.0), (60, 6.0), (30, 8.0)), None, [f"{PERIODS}[2].startPeriod"]),
    # negative start period (after the first)
    (((0, 16.0), (-5, 6.0)), None, [f"{PERIODS}[1].startPeriod"]),
    # negative limit
    (((0, -1.0),), None, [f"{PERIODS}[0].limit"]),
    # two decimals
    (((0, 6.25),), None, [f"{PERIODS}[0].limit"]),
    # period at the duration: never executed
    (((0, 16.0), (300, 6.0)), 300, [f"{PERIODS}[1].startPeriod"]),
    # period after the duration: never executed
    (((0, 16.0), (400, 6.0)), 300, [f"{PERIODS}[1].startPeriod"]),
    # negative duration
    (((0, 16.0),), -1, ["chargingSchedule.duration"]),
]


@pytest.mark.parametrize(("periods", "duration", "expected"), PERIOD_CASES)
def test_period_rules(
    periods: tuple[tuple[int, float], ...], duration: int | None, expected: list[str]
) -> None:
    """Each period rule flags exactly the offending field."""
    p = with_schedule(profile(periods=periods), duration=duration)
    assert check(p) == expected


def test_increasing_message_names_previous_start() -> None:
    """The out-of-order message names the previous startPeriod."""
    p = profile(periods=((0, 16.0), (60, 6.0), (60, 8.0)))
    [problem] = validate_profile(p, connector_id=1, active_transaction_id=None)
    assert problem == ProfileProblem(
        f"{PERIODS}[2].startPeriod",
        "must be greater than the previous period's startPeriod (60)",
    )


def test_never_executed_message() -> None:
    """A period beyond duration is explained as never executed."""
    p = with_schedule(profile(periods=((0, 16.0), (300, 6.0))), duration=300)
    [problem] = validate_profile(p, connector_id=1, active_transaction_id=None)
    assert "never executed" in problem.message


@pytest.mark.parametrize(
    ("phases", "ok"), [(None, True), (1, True), (3, True), (0, False), (4, False)]
)
def test_number_phases_range(phases: int | None, ok: bool) -> None:
    """numberPhases must be 1, 2 or 3 when given."""
    period = ChargingSchedulePeriod(start_period=0, limit=16.0, number_phases=phases)
    p = with_schedule(profile(), periods=(period,))
    assert check(p) == ([] if ok else [f"{PERIODS}[0].numberPhases"])


@pytest.mark.parametrize(
    ("rate", "ok"), [(None, True), (0.0, True), (6.5, True), (-0.1, False), (6.05, False)]
)
def test_min_charging_rate(rate: float | None, ok: bool) -> None:
    """minChargingRate must be 0 or more with at most one decimal."""
    p = with_schedule(profile(), min_charging_rate=rate)
    assert check(p) == ([] if ok else ["chargingSchedule.minChargingRate"])


# --- profile-level fields ---------------------------------------------------------------------


def test_valid_from_before_valid_to() -> None:
    """validFrom must be strictly before validTo when both are given."""
    assert check(profile(valid_from=T0, valid_to=T1)) == []
    assert check(profile(valid_from=T1, valid_to=T0)) == ["validTo"]
    assert check(profile(valid_from=T0, valid_to=T0)) == ["validTo"]
    assert check(profile(valid_from=T1)) == []


def test_stack_level_bounds() -> None:
    """stackLevel must be ≥ 0 and ≤ ChargeProfileMaxStackLevel when known."""
    assert check(profile(stack_level=-1)) == ["stackLevel"]
    assert check(profile(stack_level=8), max_stack_level=8) == []
    assert check(profile(stack_level=9)) == []
    problems = validate_profile(
        profile(stack_level=9), connector_id=1, active_transaction_id=None, max_stack_level=8
    )
    assert [p.field for p in problems] == ["stackLevel"]
    assert "ChargeProfileMaxStackLevel" in problems[0].message


def test_max_periods() -> None:
    """More periods than ChargingScheduleMaxPeriods is flagged."""
    p = profile(periods=((0, 16.0), (60, 10.0), (120, 6.0)))
    assert check(p, max_periods=3) == []
    assert check(p) == []
    assert check(p, max_periods=2) == [PERIODS]


def test_allowed_units() -> None:
    """A unit outside ChargingScheduleAllowedChargingRateUnit is flagged, naming the key's value."""
    p = profile()  # in A
    assert check(p, allowed_units=frozenset({ChargingRateUnit.A, ChargingRateUnit.W})) == []
    problems = validate_profile(
        p, connector_id=1, active_transaction_id=None, allowed_units=frozenset({ChargingRateUnit.W})
    )
    assert [x.field for x in problems] == ["chargingSchedule.chargingRateUnit"]
    assert "W (Power)" in problems[0].message


@pytest.mark.parametrize(("profile_id", "ok"), [(-1, False), (0, True), (1, True)])
def test_charging_profile_id_not_negative(profile_id: int, ok: bool) -> None:
    """A negative chargingProfileId is flagged; 0 and up are allowed by the schema."""
    assert check(profile(charging_profile_id=profile_id)) == ([] if ok else ["chargingProfileId"])


def test_several_problems_reported_together() -> None:
    """All broken rules are reported, not just the first."""
    p = with_schedule(
        profile(Purpose.CHARGE_POINT_MAX, stack_level=-2, periods=((5, -1.0),)),
        start_schedule=T0,
    )
    assert check(p, connector_id=3) == [
        "connectorId",
        "stackLevel",
        "chargingSchedule.startSchedule",
        f"{PERIODS}[0].startPeriod",
        f"{PERIODS}[0].limit",
    ]


# --- properties -------------------------------------------------------------------------------


@given(
    gaps=st.lists(st.integers(min_value=1, max_value=3600), max_size=10),
    limits_tenths=st.lists(st.integers(min_value=0, max_value=10_000), min_size=11, max_size=11),
)
def test_well_formed_schedules_pass(gaps: list[int], limits_tenths: list[int]) -> None:
    """Any schedule from 0 with increasing starts and one-decimal limits has no problem."""
    starts = [0]
    for gap in gaps:
        starts.append(starts[-1] + gap)
    periods = tuple((s, limits_tenths[i] / 10) for i, s in enumerate(starts))
    p = with_schedule(profile(periods=periods), duration=starts[-1] + 1)
    assert validate_profile(p, connector_id=1, active_transaction_id=None) == []


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_rendered_limit_always_passes(value: float) -> None:
    """Any non-negative limit rounded to one decimal (as render_limit does) passes."""
    p = profile(periods=((0, round(value, 1)),))
    assert check(p) == []
