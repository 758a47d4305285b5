"""Reservations the CSMS believes a charger holds (OCPP 1.6 Reservation profile), as pure data.

A charger's reservations are a list of JSON dicts kept in its document. Every
function here returns a new list (the registry saves a field only when its value
changes, so nothing is mutated in place). Times are OCPP strings (UTC, ms, Z).

Entry fields: reservationId, chargerId, connectorId, idTag, parentIdTag,
expiryDate, status (Active, Used, Expired, Cancelled), transactionId, createdAt,
endedAt, endReason.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from edge.times import format_time, parse_time

__all__ = [
    "ACTIVE",
    "CANCELLED",
    "EXPIRED",
    "KEEP_ENDED",
    "USED",
    "Entry",
    "add",
    "end",
    "expire",
    "new_entry",
    "next_id",
]

Entry = dict[str, Any]

ACTIVE = "Active"
USED = "Used"
EXPIRED = "Expired"
CANCELLED = "Cancelled"

# Ended reservations kept per charger (the most recently ended).
KEEP_ENDED = 50


def _time(value: str) -> datetime | None:
    try:
        return parse_time(value)
    except (TypeError, ValueError):
        return None


def new_entry(
    *,
    charger_id: str,
    reservation_id: int,
    connector_id: int,
    id_tag: str,
    parent_id_tag: str | None,
    expiry_date: str,
    now: str,
) -> Entry:
    """An Active reservation as the charger accepted it."""
    parsed = _time(expiry_date)
    return {
        "reservationId": reservation_id,
        "chargerId": charger_id,
        "connectorId": connector_id,
        "idTag": id_tag,
        "parentIdTag": parent_id_tag,
        "expiryDate": format_time(parsed) if parsed is not None else expiry_date,
        "status": ACTIVE,
        "transactionId": None,
        "createdAt": now,
        "endedAt": None,
        "endReason": None,
    }


def _bounded(entries: list[Entry], keep_ended: int) -> list[Entry]:
    """Every active entry, and the `keep_ended` most recently ended ones, in list order."""
    ended = [e for e in entries if e["status"] != ACTIVE]
    if len(ended) <= keep_ended:
        return entries
    ended.sort(key=lambda e: e.get("endedAt") or "")
    dropped = {id(e) for e in ended[: len(ended) - keep_ended]}
    return [e for e in entries if id(e) not in dropped]


def add(entries: list[Entry], entry: Entry, *, keep_ended: int = KEEP_ENDED) -> list[Entry]:
    """`entries` with `entry` added. "If the reservationId in the request matches a
    reservation in the Charge Point, then the Charge Point SHALL replace that
    reservation with the new reservation in the request" (1.6 §5.13): an active
    entry with the same id is dropped; ended ones stay as history."""
    kept = [
        e
        for e in entries
        if not (e["status"] == ACTIVE and e["reservationId"] == entry["reservationId"])
    ]
    return _bounded([*kept, entry], keep_ended)


def end(
    entries: list[Entry],
    matches: Iterable[int],
    *,
    status: str,
    reason: str,
    now: str,
    transaction_id: int | None = None,
) -> tuple[list[Entry], list[Entry]]:
    """End the active entries whose positions are in `matches`; returns (entries, ended)."""
    positions = set(matches)
    result, ended = [], []
    for position, entry in enumerate(entries):
        if position in positions and entry["status"] == ACTIVE:
            entry = {**entry, "status": status, "endedAt": now, "endReason": reason}
            if transaction_id is not None:
                entry["transactionId"] = transaction_id
            ended.append(entry)
        result.append(entry)
    return (_bounded(result, KEEP_ENDED), ended) if ended else (entries, [])


def expire(entries: list[Entry], now: datetime) -> tuple[list[Entry], list[Entry]]:
    """End every active entry whose expiryDate has passed; returns (entries, expired)."""
    due = []
    for position, entry in enumerate(entries):
        expiry = _time(entry["expiryDate"])
        if entry["status"] == ACTIVE and expiry is not None and expiry <= now:
            due.append(position)
    if not due:
        return entries, []
    return end(entries, due, status=EXPIRED, reason="Expired", now=format_time(now))


def next_id(known: Iterable[int]) -> int:
    """The next reservation id: above every id known (ids stay unique and increasing)."""
    return max((i for i in known if isinstance(i, int)), default=0) + 1
