"""The charging-profile model: OCPP JSON in, the same JSON out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from profiles.model import (
    ChargingProfileKind,
    ChargingProfilePurpose,
    ChargingRateUnit,
    ProfileFormatError,
    RecurrencyKind,
    format_time,
    parse_profile,
    parse_schedule,
    parse_time,
    render_limit,
    render_profile,
    render_schedule,
)

TC_056 = {
    "chargingProfileId": 1,
    "stackLevel": 2,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "validFrom": "2026-01-01T00:00:00.000Z",
    "validTo": "2026-01-02T00:00:00.000Z",
    "chargingSchedule": {
        "duration": 3600,
        "startSchedule": "2026-01-01T00:00:00.000Z",
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6.0, "numberPhases": 3}],
    },
}


def test_round_trip_is_exact() -> None:
    """A profile as a certification case sends it renders back to the same JSON."""
    profile = parse_profile(TC_056)
    assert profile.purpose is ChargingProfilePurpose.TX_DEFAULT
    assert profile.kind is ChargingProfileKind.ABSOLUTE
    assert profile.valid_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert render_profile(profile) == TC_056


def test_optional_fields_are_omitted_not_null() -> None:
    """Absent optional fields stay absent; numberPhases absent means 3."""
    data = {
        "chargingProfileId": 7,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11040}],
        },
    }
    profile = parse_profile(data)
    assert profile.schedule.periods[0].number_phases is None
    assert profile.schedule.periods[0].phases == 3
    rendered = render_profile(profile)
    assert rendered["chargingSchedule"] == {
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11040.0}],
    }
    assert "transactionId" not in rendered and "validFrom" not in rendered


def test_recurring_fields() -> None:
    """recurrencyKind and the transactionId survive the round trip."""
    data = {
        **TC_056,
        "chargingProfileKind": "Recurring",
        "recurrencyKind": "Weekly",
        "transactionId": 42,
    }
    profile = parse_profile(data)
    assert profile.recurrency_kind is RecurrencyKind.WEEKLY
    assert render_profile(profile) == data


@pytest.mark.parametrize(
    ("value", "rendered"), [(6, 6.0), (5.999999, 6.0), (8.04, 8.0), (16.05, 16.1)]
)
def test_limits_have_at_most_one_decimal(value: float, rendered: float) -> None:
    """Limits are rendered to one decimal as the schemas' multipleOf 0.1 demands."""
    assert render_limit(value) == rendered


def test_times_are_utc_with_milliseconds() -> None:
    """Times parse naive as UTC, convert offsets to UTC, and render with ms and Z."""
    assert parse_time("2026-01-01T01:00:00+01:00") == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_time("2026-01-01T00:00:00") == datetime(2026, 1, 1, tzinfo=UTC)
    east = datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(east) == "2026-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    "broken",
    [
        {k: v for k, v in TC_056.items() if k != "stackLevel"},
        {**TC_056, "chargingProfilePurpose": "Sometimes"},
        {**TC_056, "validFrom": "yesterday"},
        {**TC_056, "chargingSchedule": {"chargingRateUnit": "A"}},
    ],
)
def test_malformed_json_is_a_format_error(broken: dict[str, object]) -> None:
    """Missing fields, unknown enum values and bad times raise ProfileFormatError."""
    with pytest.raises(ProfileFormatError):
        parse_profile(broken)


def test_schedule_round_trip() -> None:
    """A GetCompositeSchedule-style schedule (no startSchedule) renders as parsed."""
    data = {
        "duration": 400,
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [
            {"startPeriod": 0, "limit": 8.0},
            {"startPeriod": 50, "limit": 10.0},
        ],
        "minChargingRate": 6.0,
    }
    schedule = parse_schedule(data)
    assert schedule.charging_rate_unit is ChargingRateUnit.A
    assert render_schedule(schedule) == data
