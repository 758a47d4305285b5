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

The formatter and the parser are implemented once, in the pure library ``profiles.times``
(``profiles`` does not import ``edge``), and re-exported here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from profiles.times import as_utc, format_time, parse_time

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


def utc_now() -> datetime:
    """The wall clock as an aware UTC datetime (the default clock of the service)."""
    return datetime.now(UTC)


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
    return as_utc(moment).timestamp()


def epoch_text(seconds: float | None) -> str | None:
    """Unix time as :func:`format_time` text; None stays None."""
    return None if seconds is None else format_time(from_epoch(seconds))


def file_stamp(moment: datetime) -> str:
    """A compact UTC stamp for file names (ISO 8601 basic format), e.g. ``20240501T120000Z``."""
    return as_utc(moment).strftime("%Y%m%dT%H%M%SZ")
