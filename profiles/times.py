"""Time as text: the project's one ISO 8601 formatter and parser (pure).

`edge.times` states the rule for the whole service and re-exports these; they live
here, in the pure library `edge` builds on, so `profiles` reads and writes the times of
charging profiles by the same rules without importing `edge`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["as_utc", "format_time", "parse_time"]

# fromisoformat (3.11) accepts any single character as the date/time separator; ISO 8601
# and RFC 3339 only allow "T" (and "t", RFC 3339 §5.6). Calendar or week date, extended
# or basic format, ASCII digits only.
_DATE_AND_T = re.compile(r"[0-9]{4}(?:-[0-9]{2}-[0-9]{2}|[0-9]{4}|-W[0-9]{2}-[0-9]|W[0-9]{3})[Tt]")
# RFC 3339 allows a leap second (":60"); datetime does not.
_LEAP_SECOND = re.compile(r"(?<=T[0-9]{2}:[0-9]{2}:)60(?![0-9])")


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime; a naive one is taken as UTC."""
    if moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``: the text form of a moment everywhere.

    ``format_time(datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC))`` returns
    ``"2024-05-01T12:00:00.123Z"`` (truncated, not rounded, to milliseconds). A naive
    datetime is taken as UTC, never as local time. The text is RFC 3339, as OCPP-J wants
    for what a central system sends.
    """
    if moment.utcoffset() is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_time(text: str) -> datetime:
    """Parse a timestamp (an OCPP one, or the operator's) into an aware UTC datetime.

    Accepts any ISO 8601 date-time with a ``T``/``t`` separator that
    :meth:`datetime.fromisoformat` accepts: fractional seconds of any length, ``Z``/``z``,
    ``±hh:mm``/``±hhmm`` offsets, and no offset at all (read as UTC; OCPP 1.6 §3.14
    strongly recommends UTC and naive timestamps from chargers are UTC in practice), and
    a leap second (``:60``, read as the next second).

    Raises:
        ValueError: ``text`` is not such a date-time.
    """
    match = _DATE_AND_T.match(text)
    if match is None:
        raise ValueError("not an ISO 8601 date-time")
    # fromisoformat (3.11) wants upper-case "T" and "Z"; RFC 3339 §5.6 allows lower case.
    sep = match.end() - 1
    value = text[:sep] + "T" + text[sep + 1 :]
    if value.endswith("z"):
        value = value[:-1] + "Z"
    leap = timedelta(0)
    if _LEAP_SECOND.search(value):
        value = _LEAP_SECOND.sub("59", value, count=1)
        leap = timedelta(seconds=1)
    try:
        return as_utc(datetime.fromisoformat(value) + leap)
    except OverflowError as err:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError("date-time out of range") from err
