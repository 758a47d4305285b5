"""validate_profile: OCPP 1.6 smart-charging rules a profile must meet before it is sent.

Every expected problem names its severity: ERROR for what the spec, the schema or the
charger's configuration keys forbid (and, conservatively, values the spec gives no meaning);
WARNING for legal content that is useless or surprising.
"""

from __future__ import annotations

import copy
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
from profiles.validation import (
    ProfileProblem,
    Severity,
    errors_in,
    validate_profile,
    warnings_in,
)

Purpose = ChargingProfilePurpose
Kind = ChargingProfileKind
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
PERIODS = "chargingSchedule.chargingSchedulePeriod"
ERROR = Severity.ERROR
WARNING = Severity.WARNING

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


Finding = tuple[str, Severity]


def check(
    p: ChargingProfile, connector_id: int = 1, tx: int | None = None, **kw: Any
) -> list[Finding]:
    """The fields flagged for `p` on `connector_id`, each with its severity."""
    problems = validate_profile(p, connector_id=connector_id, active_transaction_id=tx, **kw)
    assert all(problem.message.strip() for problem in problems)
    return [(problem.field, problem.severity) for problem in problems]


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
    assert check(p, connector_id=1) == [("connectorId", ERROR)]


@pytest.mark.parametrize("connector_id", [0, 1, 2])
def test_tx_default_on_0_or_a_connector(connector_id: int) -> None:
    """TxDefaultProfile is fine on connector 0 and on any connector."""
    assert check(profile(Purpose.TX_DEFAULT), connector_id=connector_id) == []


def test_negative_connector_flagged() -> None:
    """A negative connectorId is flagged."""
    assert check(profile(), connector_id=-1) == [("connectorId", ERROR)]


def test_tx_profile_not_on_connector_0() -> None:
    """A TxProfile on connector 0 is flagged."""
    assert check(profile(Purpose.TX), connector_id=0, tx=7) == [("connectorId", ERROR)]


def test_tx_profile_needs_active_transaction() -> None:
    """A TxProfile without a transaction on the connector is flagged, with a readable reason."""
    problems = validate_profile(profile(Purpose.TX), connector_id=2, active_transaction_id=None)
    assert [(p.field, p.severity) for p in problems] == [("chargingProfilePurpose", ERROR)]
    assert "no transaction is running on connector 2" in problems[0].message
    assert check(profile(Purpose.TX), connector_id=2, tx=5) == []


def test_tx_profile_transaction_id_must_match() -> None:
    """A TxProfile's transactionId must be the transaction running on the connector."""
    p = profile(Purpose.TX, transaction_id=8)
    assert check(p, tx=8) == []
    problems = validate_profile(p, connector_id=1, active_transaction_id=9)
    assert problems == [
        ProfileProblem(
            "transactionId", "is 8, but the transaction running on connector 1 is 9", ERROR
        )
    ]


def test_transaction_id_only_on_tx_profile() -> None:
    """A transactionId on a TxDefaultProfile is flagged (§7.8: only valid for TxProfile)."""
    p = profile(Purpose.TX_DEFAULT, transaction_id=3)
    assert check(p, tx=3) == [("transactionId", ERROR)]


def test_remote_start_must_be_tx_profile() -> None:
    """Inside RemoteStartTransaction a TxDefaultProfile is flagged."""
    p = profile(Purpose.TX_DEFAULT)
    assert check(p, in_remote_start=True) == [("chargingProfilePurpose", ERROR)]


def test_remote_start_must_not_carry_transaction_id() -> None:
    """Inside RemoteStartTransaction a transactionId is flagged (TC_059)."""
    p = profile(Purpose.TX, transaction_id=1)
    assert check(p, in_remote_start=True) == [("transactionId", ERROR)]


def test_remote_start_without_connector_allowed() -> None:
    """A RemoteStartTransaction without connectorId (0) may carry a TxProfile."""
    assert check(profile(Purpose.TX), connector_id=0, in_remote_start=True) == []


# --- kinds ------------------------------------------------------------------------------------


def test_absolute_needs_start_schedule() -> None:
    """An Absolute profile without startSchedule is flagged."""
    p = with_schedule(profile(kind=Kind.ABSOLUTE), start_schedule=None)
    assert check(p) == [("chargingSchedule.startSchedule", ERROR)]


def test_relative_with_start_schedule_only_warns() -> None:
    """A Relative profile with startSchedule is legal (no rule forbids it), so it is a warning."""
    p = with_schedule(profile(kind=Kind.RELATIVE), start_schedule=T0)
    assert check(p) == [("chargingSchedule.startSchedule", WARNING)]


def test_recurring_needs_recurrency_kind_and_start_schedule() -> None:
    """A Recurring profile needs both recurrencyKind and startSchedule."""
    assert check(profile(kind=Kind.RECURRING)) == []
    p = with_schedule(profile(kind=Kind.RECURRING, recurrency_kind=None), start_schedule=None)
    assert check(p) == [("recurrencyKind", ERROR), ("chargingSchedule.startSchedule", ERROR)]


@pytest.mark.parametrize("kind", [Kind.ABSOLUTE, Kind.RELATIVE])
def test_recurrency_kind_only_with_recurring(kind: ChargingProfileKind) -> None:
    """recurrencyKind on a non-Recurring profile is flagged (errata 3.56)."""
    p = profile(kind=kind, recurrency_kind=RecurrencyKind.WEEKLY)
    assert check(p) == [("recurrencyKind", ERROR)]


# --- schedule periods -------------------------------------------------------------------------

# (periods, duration, expected findings): each row one rule of §5.16.4/§7.13/§7.14.
PERIOD_CASES: list[tuple[tuple[tuple[int, float], ...], int | None, list[Finding]]] = [
    # fine: increasing starts, one-decimal limits, last period within duration
    (((0, 16.0), (60, 6.5), (120, 0.0)), 180, []),
    # no period at all (§7.13: 1..*)
    ((), None, [(PERIODS, ERROR)]),
    # first period must start at 0 (SHALL)
    (((10, 16.0),), None, [(f"{PERIODS}[0].startPeriod", ERROR)]),
    # equal start periods: not strictly increasing
    (((0, 16.0), (60, 6.0), (60, 8.0)), None, [(f"{PERIODS}[2].startPeriod", ERROR)]),
    # decreasing start periods
    (((0, 16.0), (60, 6.0), (30, 8.0)), None, [(f"{PERIODS}[2].startPeriod", ERROR)]),
    # negative start period (after the first)
    (((0, 16.0), (-5, 6.0)), None, [(f"{PERIODS}[1].startPeriod", ERROR)]),
    # negative limit
    (((0, -1.0),), None, [(f"{PERIODS}[0].limit", ERROR)]),
    # two decimals (schema: multipleOf 0.1)
    (((0, 6.25),), None, [(f"{PERIODS}[0].limit", ERROR)]),
    # period at the duration: never executed, but legal
    (((0, 16.0), (300, 6.0)), 300, [(f"{PERIODS}[1].startPeriod", WARNING)]),
    # period after the duration: never executed, but legal
    (((0, 16.0), (400, 6.0)), 300, [(f"{PERIODS}[1].startPeriod", WARNING)]),
    # negative duration: nothing is executed, but legal
    (((0, 16.0),), -1, [("chargingSchedule.duration", WARNING)]),
]


@pytest.mark.parametrize(("periods", "duration", "expected"), PERIOD_CASES)
def test_period_rules(
    periods: tuple[tuple[int, float], ...], duration: int | None, expected: list[Finding]
) -> None:
    """Each period rule flags exactly the offending field, with its severity."""
    p = with_schedule(profile(periods=periods), duration=duration)
    assert check(p) == expected


def test_increasing_message_names_previous_start() -> None:
    """The out-of-order message names the previous startPeriod."""
    p = profile(periods=((0, 16.0), (60, 6.0), (60, 8.0)))
    [problem] = validate_profile(p, connector_id=1, active_transaction_id=None)
    assert problem == ProfileProblem(
        f"{PERIODS}[2].startPeriod",
        "must be greater than the previous period's startPeriod (60)",
        ERROR,
    )


def test_never_executed_message() -> None:
    """A period beyond duration is explained as never executed, as a warning."""
    p = with_schedule(profile(periods=((0, 16.0), (300, 6.0))), duration=300)
    [problem] = validate_profile(p, connector_id=1, active_transaction_id=None)
    assert "never executed" in problem.message
    assert problem.severity is WARNING


def test_period_after_duration_is_only_a_warning() -> None:
    """A schema-valid TC_056-style profile whose later periods start after duration has no error."""
    body: dict[str, Any] = copy.deepcopy(TC_056)
    body["chargingSchedule"]["chargingSchedulePeriod"] = [
        {"startPeriod": 0, "limit": 16.0},
        {"startPeriod": 3600, "limit": 6.0},
        {"startPeriod": 7200, "limit": 10.0},
    ]
    problems = validate_profile(parse_profile(body), connector_id=1, active_transaction_id=None)
    assert errors_in(problems) == []
    assert [(x.field, x.severity) for x in warnings_in(problems)] == [
        (f"{PERIODS}[1].startPeriod", WARNING),
        (f"{PERIODS}[2].startPeriod", WARNING),
    ]


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        (None, []),
        (1, []),
        (2, []),
        (3, []),
        (0, [(f"{PERIODS}[0].numberPhases", ERROR)]),
        (-1, [(f"{PERIODS}[0].numberPhases", ERROR)]),
        (4, [(f"{PERIODS}[0].numberPhases", WARNING)]),
    ],
)
def test_number_phases(phases: int | None, expected: list[Finding]) -> None:
    """numberPhases below 1 is an error; above 3 only a warning (errata 3.34 defines it)."""
    period = ChargingSchedulePeriod(start_period=0, limit=16.0, number_phases=phases)
    p = with_schedule(profile(), periods=(period,))
    assert check(p) == expected


def test_number_phases_above_three_message() -> None:
    """The numberPhases warning says the charger applies the limit as given."""
    period = ChargingSchedulePeriod(start_period=0, limit=16.0, number_phases=4)
    [problem] = validate_profile(
        with_schedule(profile(), periods=(period,)), connector_id=1, active_transaction_id=None
    )
    assert "errata 3.34" in problem.message


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        (None, []),
        (0.0, []),
        (6.5, []),
        (-0.1, [("chargingSchedule.minChargingRate", WARNING)]),
        (6.05, [("chargingSchedule.minChargingRate", ERROR)]),
    ],
)
def test_min_charging_rate(rate: float | None, expected: list[Finding]) -> None:
    """Two decimals in minChargingRate are an error (schema); a negative one only a warning."""
    p = with_schedule(profile(), min_charging_rate=rate)
    assert check(p) == expected


# --- profile-level fields ---------------------------------------------------------------------


def test_valid_from_before_valid_to() -> None:
    """validTo not after validFrom is only a warning: legal, but the profile is never valid."""
    assert check(profile(valid_from=T0, valid_to=T1)) == []
    assert check(profile(valid_from=T1, valid_to=T0)) == [("validTo", WARNING)]
    assert check(profile(valid_from=T0, valid_to=T0)) == [("validTo", WARNING)]
    assert check(profile(valid_from=T1)) == []


def test_stack_level_bounds() -> None:
    """stackLevel must be ≥ 0 and ≤ ChargeProfileMaxStackLevel when known."""
    assert check(profile(stack_level=-1)) == [("stackLevel", ERROR)]
    assert check(profile(stack_level=8), max_stack_level=8) == []
    assert check(profile(stack_level=9)) == []
    problems = validate_profile(
        profile(stack_level=9), connector_id=1, active_transaction_id=None, max_stack_level=8
    )
    assert [(p.field, p.severity) for p in problems] == [("stackLevel", ERROR)]
    assert "ChargeProfileMaxStackLevel" in problems[0].message


def test_max_periods() -> None:
    """More periods than ChargingScheduleMaxPeriods is flagged."""
    p = profile(periods=((0, 16.0), (60, 10.0), (120, 6.0)))
    assert check(p, max_periods=3) == []
    assert check(p) == []
    assert check(p, max_periods=2) == [(PERIODS, ERROR)]


def test_allowed_units() -> None:
    """A unit outside ChargingScheduleAllowedChargingRateUnit is flagged, naming the key's value."""
    p = profile()  # in A
    assert check(p, allowed_units=frozenset({ChargingRateUnit.A, ChargingRateUnit.W})) == []
    problems = validate_profile(
        p, connector_id=1, active_transaction_id=None, allowed_units=frozenset({ChargingRateUnit.W})
    )
    assert [(x.field, x.severity) for x in problems] == [
        ("chargingSchedule.chargingRateUnit", ERROR)
    ]
    assert "W (Power)" in problems[0].message


@pytest.mark.parametrize(
    ("profile_id", "expected"), [(-1, [("chargingProfileId", WARNING)]), (0, []), (1, [])]
)
def test_negative_charging_profile_id_only_warns(profile_id: int, expected: list[Finding]) -> None:
    """A negative chargingProfileId is legal (the schema allows any integer), so only a warning."""
    assert check(profile(charging_profile_id=profile_id)) == expected


def test_several_problems_reported_together() -> None:
    """All problems are reported, errors and warnings alike, not just the first."""
    p = with_schedule(
        profile(Purpose.CHARGE_POINT_MAX, stack_level=-2, periods=((5, -1.0),)),
        start_schedule=T0,
    )
    assert check(p, connector_id=3) == [
        ("connectorId", ERROR),
        ("stackLevel", ERROR),
        ("chargingSchedule.startSchedule", WARNING),
        (f"{PERIODS}[0].startPeriod", ERROR),
        (f"{PERIODS}[0].limit", ERROR),
    ]


# --- severities -------------------------------------------------------------------------------


def test_severity_values_and_default() -> None:
    """Severities read "error"/"warning", and a ProfileProblem is an error unless told otherwise."""
    assert [str(s) for s in Severity] == ["error", "warning"]
    assert ProfileProblem("stackLevel", "must be 0 or more").severity is ERROR


def test_warnings_only_profile() -> None:
    """Several downgraded rules together give one warning each and no error."""
    periods = (
        ChargingSchedulePeriod(start_period=0, limit=16.0, number_phases=4),
        ChargingSchedulePeriod(start_period=600, limit=6.0),
    )
    p = replace(
        with_schedule(
            profile(),
            periods=periods,
            start_schedule=T0,
            duration=600,
            min_charging_rate=-1.0,
        ),
        charging_profile_id=-5,
        valid_from=T1,
        valid_to=T0,
    )
    problems = validate_profile(p, connector_id=1, active_transaction_id=None)
    assert errors_in(problems) == []
    assert [(x.field, x.severity) for x in problems] == [
        ("chargingProfileId", WARNING),
        ("validTo", WARNING),
        ("chargingSchedule.startSchedule", WARNING),
        ("chargingSchedule.minChargingRate", WARNING),
        (f"{PERIODS}[0].numberPhases", WARNING),
        (f"{PERIODS}[1].startPeriod", WARNING),
    ]


def test_errors_in_and_warnings_in_split_in_order() -> None:
    """errors_in and warnings_in split a problem list by severity, keeping its order."""
    a = ProfileProblem("a", "x")
    b = ProfileProblem("b", "y", WARNING)
    c = ProfileProblem("c", "z", ERROR)
    d = ProfileProblem("d", "w", WARNING)
    assert errors_in([a, b, c, d]) == [a, c]
    assert warnings_in(iter([a, b, c, d])) == [b, d]
    assert errors_in([]) == warnings_in([]) == []


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
