"""edge.times: the one time type, formatter and parser, and profiles.model's agreement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.times import (
    epoch_text,
    file_stamp,
    format_time,
    from_epoch,
    normalise_time,
    parse_time,
    to_epoch,
    utc_now,
)
from profiles import model

NOON = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)

# What chargers send: all of it means NOON.
CHARGER_FORMS = [
    "2024-05-01T12:00:00.123Z",
    "2024-05-01T12:00:00.123z",
    "2024-05-01t12:00:00.123Z",
    "2024-05-01t12:00:00.123z",
    "2024-05-01T12:00:00.123",  # no offset: UTC
    "2024-05-01T12:00:00.123+00:00",
    "2024-05-01T14:00:00.123+02:00",
    "2024-05-01T07:00:00.123-0500",
    "2024-05-01T12:00:00.1230Z",
    "2024-05-01T12:00:00.123000Z",
    "2024-05-01T12:00:00.123000000Z",  # more than microseconds: truncated
    "20240501T120000.123Z",  # basic format
    "2024-W18-3T12:00:00.123Z",  # week date
]

JUNK = [
    "",
    "garbage",
    "now",
    "T",
    "12:00:00",
    "2024-05-01",  # a date is not a date-time
    "2024-05-01 12:00:00Z",  # space separator
    "2024-05-01 12:00:00",
    "2024-05-01X12:00:00Z",
    "2024-05-01X12:00",
    "2024-02-30T12:00:00Z",  # no such day
    "2024-05-01T24:00:01Z",
    "2024-05-01T12:61:00Z",
    "2024-05-01T12:00:00+25:00",
    "2024-05-01T12:00:00ZZ",
    "\uff12\uff10\uff12\uff14-05-01T12:00:00Z",  # full-width digits
    "0001-01-01T00:00+01:00",  # before year 1 in UTC
    " 2024-05-01T12:00:00Z",
]


def test_format_time() -> None:
    """UTC with milliseconds (truncated) and Z, whatever the input's offset."""
    assert format_time(datetime(2024, 5, 1, 12, 0, 0, 123999, tzinfo=UTC)) == (
        "2024-05-01T12:00:00.123Z"
    )
    plus2 = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(plus2) == "2024-05-01T12:00:00.000Z"
    assert format_time(datetime(2024, 5, 1, 12)) == "2024-05-01T12:00:00.000Z"
    assert format_time(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00.000Z"


def test_naive_is_utc_never_local(new_york_time: None) -> None:
    """Under a non-UTC local zone a naive datetime still means UTC, everywhere."""
    naive = datetime(2024, 5, 1, 12, 0, 0, 123000)
    assert format_time(naive) == format_time(NOON) == "2024-05-01T12:00:00.123Z"
    assert to_epoch(naive) == to_epoch(NOON) == 1714564800.123
    assert file_stamp(naive) == file_stamp(NOON) == "20240501T120000Z"
    assert parse_time("2024-05-01T12:00:00.123") == NOON
    assert from_epoch(1714564800.123) == NOON
    assert model.format_time(naive) == "2024-05-01T12:00:00.123Z"
    assert model.parse_time("2024-05-01T12:00:00.123") == NOON
    # Winter too (EST, not EDT).
    assert format_time(datetime(2024, 1, 1)) == "2024-01-01T00:00:00.000Z"


@pytest.mark.parametrize("text", CHARGER_FORMS)
def test_parse_time_accepts_what_chargers_send(text: str) -> None:
    """Z, z, offsets, no offset, lower-case t, any fraction length: aware UTC."""
    parsed = parse_time(text)
    assert parsed == NOON
    assert parsed.tzinfo is UTC


def test_parse_time_fractions_of_any_length() -> None:
    """No fraction, one digit to nine digits; beyond microseconds is truncated."""
    assert parse_time("2024-05-01T12:00:00Z") == NOON.replace(microsecond=0)
    for digits in range(1, 10):
        text = "2024-05-01T12:00:00." + "123456789"[:digits] + "Z"
        expected = int("123456789"[: min(digits, 6)].ljust(6, "0"))
        assert parse_time(text) == NOON.replace(microsecond=expected)


def test_parse_time_leap_second() -> None:
    """A leap second (":60", allowed by RFC 3339) becomes the next second."""
    assert parse_time("2016-12-31T23:59:60Z") == datetime(2017, 1, 1, tzinfo=UTC)
    assert parse_time("2016-12-31T23:59:60.500Z") == datetime(2017, 1, 1, 0, 0, 0, 500000, UTC)
    assert parse_time("2016-12-31t18:59:60-05:00") == datetime(2017, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("text", JUNK)
def test_parse_time_refuses_junk(text: str) -> None:
    """Non date-times, wrong separators and out-of-range values raise ValueError."""
    with pytest.raises(ValueError):
        parse_time(text)


def test_round_trips() -> None:
    """format -> parse gives the moment to the millisecond; parse -> format is canonical."""
    for moment in (NOON, datetime(2031, 2, 3, 4, 5, 6, 789999, tzinfo=UTC), from_epoch(0)):
        assert parse_time(format_time(moment)) == moment.replace(
            microsecond=moment.microsecond // 1000 * 1000
        )
    for text in CHARGER_FORMS:
        canonical = format_time(parse_time(text))
        assert canonical == "2024-05-01T12:00:00.123Z"
        assert format_time(parse_time(canonical)) == canonical


def test_normalise_time() -> None:
    """A charger's timestamp becomes canonical; what cannot be parsed is kept as sent."""
    assert normalise_time("2024-05-01T14:00:00.123+02:00") == "2024-05-01T12:00:00.123Z"
    assert normalise_time("2024-05-01t12:00:00.123") == "2024-05-01T12:00:00.123Z"
    assert normalise_time("yesterday") == "yesterday"


def test_epoch_conversions() -> None:
    """Unix time to and from aware UTC; epoch_text formats it and passes None through."""
    assert from_epoch(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert from_epoch(0).tzinfo is UTC
    assert to_epoch(from_epoch(1714564800.25)) == 1714564800.25
    assert epoch_text(1714564800.25) == "2024-05-01T12:00:00.250Z"
    assert epoch_text(None) is None


def test_utc_now_is_aware_utc() -> None:
    """The clock gives aware UTC."""
    now = utc_now()
    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


# --------------------------------------------------------------------------- profiles.model

# profiles/ cannot import edge, so it keeps its own copy; both must follow one rule.
AGREEMENT_TEXTS = [
    *CHARGER_FORMS,
    *JUNK,
    "2016-12-31T23:59:60Z",
    "2024-05-01T12:00:00",
    "2024-05-01T12:00",
    "2024-05-01T12",
    "9999-12-31T23:59:59.999Z",
    "9999-12-31T23:59:59-01:00",
    "2024-05-01T12:00:00.123+0530",
    "2024-05-01T12:00:00.123+05:30:15",
    "yesterday",
]
AGREEMENT_MOMENTS = [
    NOON,
    datetime(2024, 5, 1, 12, 0, 0, 123456),
    datetime(2024, 5, 1, 14, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2))),
    datetime(2024, 5, 1, 7, tzinfo=timezone(timedelta(hours=-5))),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999),
]


def _parsed(parse: object, text: str) -> datetime | str:
    assert callable(parse)
    try:
        result = parse(text)
    except ValueError:
        return "refused"
    assert isinstance(result, datetime)
    return result


@pytest.mark.parametrize("text", AGREEMENT_TEXTS)
def test_profiles_model_parses_like_edge(text: str) -> None:
    """profiles.model.parse_time accepts and refuses exactly what edge.times does."""
    assert _parsed(model.parse_time, text) == _parsed(parse_time, text)


def test_profiles_model_refuses_with_its_own_error() -> None:
    """The library's refusal is its ProfileFormatError (a ValueError)."""
    with pytest.raises(model.ProfileFormatError):
        model.parse_time("2024-05-01")


@pytest.mark.parametrize("moment", AGREEMENT_MOMENTS, ids=str)
def test_profiles_model_formats_like_edge(moment: datetime) -> None:
    """profiles.model.format_time writes exactly what edge.times does."""
    assert model.format_time(moment) == format_time(moment)


offsets = st.one_of(
    st.none(),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
        lambda minutes: timezone(timedelta(minutes=minutes))
    ),
)


@given(
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
    offsets,
)
def test_edge_and_profiles_agree_on_any_moment(moment: datetime, tz: timezone | None) -> None:
    """Any datetime, naive or with any offset: the same text, and it parses back the same."""
    moment = moment.replace(tzinfo=tz)
    text = format_time(moment)
    assert model.format_time(moment) == text
    assert parse_time(text) == model.parse_time(text)
    assert format_time(parse_time(text)) == text
    # The wire forms of the same moment, as a charger might write them.
    for variant in (moment.isoformat(), moment.isoformat(timespec="milliseconds")):
        assert parse_time(variant) == model.parse_time(variant)


@given(st.text(alphabet="0123456789-:.+TtZz W", max_size=30))
def test_edge_and_profiles_agree_on_any_text(text: str) -> None:
    """Random timestamp-like text: both accept it with the same result, or both refuse."""
    assert _parsed(model.parse_time, text) == _parsed(parse_time, text)
