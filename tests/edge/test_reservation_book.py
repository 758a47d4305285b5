"""Pure reservation bookkeeping (edge.reservations): replace, end, expire, bound, allocate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge.features import reservation_book as r

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def entry(reservation_id: int, *, minutes: int = 10, connector_id: int = 1) -> r.Entry:
    return r.new_entry(
        charger_id="CP",
        reservation_id=reservation_id,
        connector_id=connector_id,
        id_tag="TAG",
        parent_id_tag=None,
        expiry_date=(NOW + timedelta(minutes=minutes)).isoformat(),
        now="2025-01-01T12:00:00.000Z",
    )


def test_new_entry_normalises_the_expiry() -> None:
    """The stored expiryDate is OCPP's UTC form whatever offset it was given in."""
    assert entry(1)["expiryDate"] == "2025-01-01T12:10:00.000Z"
    assert entry(1)["status"] == r.ACTIVE


def test_add_replaces_only_an_active_entry_with_the_same_id() -> None:
    """Same id replaces the active reservation; an ended one with that id stays as history."""
    entries = r.add([], entry(1))
    entries, _ = r.end(entries, [0], status=r.USED, reason="x", now="t")
    entries = r.add(entries, entry(1, connector_id=2))
    entries = r.add(entries, entry(1, connector_id=3))
    assert [(e["status"], e["connectorId"]) for e in entries] == [(r.USED, 1), (r.ACTIVE, 3)]


def test_end_sets_status_reason_and_transaction_without_mutating() -> None:
    """end() returns new entries for those it ends, and leaves ended ones alone."""
    original = [entry(1), entry(2)]
    entries, ended = r.end(original, [1], status=r.USED, reason="Tx", now="t", transaction_id=9)
    assert original[1]["status"] == r.ACTIVE
    assert [e["reservationId"] for e in ended] == [2]
    assert entries[1] | {} == {**original[1], "status": r.USED, "endedAt": "t",
                               "endReason": "Tx", "transactionId": 9}  # fmt: skip
    assert r.end(entries, [1], status=r.CANCELLED, reason="y", now="u") == (entries, [])


def test_expire_ends_only_entries_past_their_expiry() -> None:
    """An entry expires once now reaches its expiryDate."""
    entries = [entry(1, minutes=5), entry(2, minutes=20)]
    same, expired = r.expire(entries, NOW + timedelta(minutes=4))
    assert (same, expired) == (entries, [])
    entries, expired = r.expire(entries, NOW + timedelta(minutes=5))
    assert [e["reservationId"] for e in expired] == [1]
    assert [e["status"] for e in entries] == [r.EXPIRED, r.ACTIVE]


def test_ended_entries_are_bounded_but_active_ones_kept() -> None:
    """Only the most recently ended KEEP_ENDED entries are kept; active ones always."""
    entries = r.add([], entry(1000))
    for i in range(r.KEEP_ENDED + 5):
        entries = r.add(entries, entry(i))
        entries, _ = r.end(entries, [len(entries) - 1], status=r.USED, reason="x", now=f"{i:04}")
    ended = [e["reservationId"] for e in entries if e["status"] != r.ACTIVE]
    assert ended == list(range(5, r.KEEP_ENDED + 5))
    assert entries[0]["reservationId"] == 1000


def test_next_id_is_above_every_known_id() -> None:
    """Allocation starts at 1 and goes above the highest id known."""
    assert r.next_id([]) == 1
    assert r.next_id([3, 17, 2]) == 18
