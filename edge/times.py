"""Time in edge: one type in code, one text form outside it, one parser.

The rule:

* In code a moment is an aware UTC :class:`~datetime.datetime`: :func:`utc_now`,
  :func:`parse_time`, :func:`from_epoch` give one. A naive datetime means UTC, never local
  time; every function here reads it so, whatever ``TZ`` the process runs under.
* On the wire (OCPP, the operator API) and on disk (documents, the journal, file sidecars)
  a moment is ISO 8601 text in UTC with milliseconds and ``Z``, written by
  :func:`format_time`, e.g. ``2024-05-01T12:00:00.000Z``. Text from outside is read by
  :func:`parse_time`; a charger's timestamp we keep is first made canonical by
  :func:`normalise_time`. Records that mirror a stored row (a transaction's start time,
  a document field) may carry the stored text as it is; parse it where time is computed.
* Epoch seconds (a float) only where arithmetic on moments is the point: the site control
  loop and what it passes to ``profiles.allocation`` / ``profiles.lease``; and a few
  numbers kept as numbers: a charger's ``last_seen`` and a session's ``connected_at``
  (``time.time()``, set per message and per connection), the file store's link expiries,
  upload grants and retention (against file mtimes), the journal's sample receive time
  (an integer column). Convert with :func:`from_epoch`, :func:`to_epoch` and
  :func:`epoch_text`, not with ``datetime.fromtimestamp`` / ``datetime.timestamp``
  (both read a naive datetime as local time).
* ``time.monotonic()`` only for deadlines, timeouts and ages; never shown, never stored.
* A file name carries a compact UTC stamp from :func:`file_stamp`.

``profiles/`` is a pure library and does not import ``edge``; its own
``profiles.model.format_time`` / ``parse_time`` follow the same rules (a test keeps the
two in agreement).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = [
    "epoch_text",
    "file_stamp",
    "format_time",
    "from_epoch",
    "normalise_time",
    "parse_time",
    "to_epoch",
    "utc_now",
]

# fromisoformat (3.11) accepts any single character as the date/time separator; ISO 8601
# and RFC 3339 only allow "T" (and "t", RFC 3339 §5.6). Calendar or week date, extended
# or basic format, ASCII digits only.
_DATE_AND_T = re.compile(r"[0-9]{4}(?:-[0-9]{2}-[0-9]{2}|[0-9]{4}|-W[0-9]{2}-[0-9]|W[0-9]{3})[Tt]")
# RFC 3339 allows a leap second (":60"); datetime does not.
_LEAP_SECOND = re.compile(r"(?<=T[0-9]{2}:[0-9]{2}:)60(?![0-9])")


def utc_now() -> datetime:
    """The wall clock as an aware UTC datetime (the default clock of the service)."""
    return datetime.now(UTC)


def _utc(moment: datetime) -> datetime:
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
        return _utc(datetime.fromisoformat(value) + leap)
    except OverflowError as err:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError("date-time out of range") from err


def normalise_time(text: str) -> str:
    """A charger's timestamp in the canonical form (:func:`format_time`).

    Text :func:`parse_time` refuses is returned unchanged: it is what the charger sent,
    kept as evidence rather than dropped.
    """
    try:
        return format_time(parse_time(text))
    except ValueError:
        return text


def from_epoch(seconds: float) -> datetime:
    """Unix time to an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def to_epoch(moment: datetime) -> float:
    """An aware (or naive, read as UTC) datetime to unix time."""
    return _utc(moment).timestamp()


def epoch_text(seconds: float | None) -> str | None:
    """Unix time as :func:`format_time` text; None stays None."""
    return None if seconds is None else format_time(from_epoch(seconds))


def file_stamp(moment: datetime) -> str:
    """A compact UTC stamp for file names (ISO 8601 basic format), e.g. ``20240501T120000Z``."""
    return _utc(moment).strftime("%Y%m%dT%H%M%SZ")
