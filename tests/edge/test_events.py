"""The event bus and the index of active transactions."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from edge.events import ChargerEvent, Connected, Disconnected, EventBus, StatusChanged
from edge.store import TransactionRecord
from edge.transactions.active import ActiveTransactions

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _event(kind: type[ChargerEvent]) -> ChargerEvent:
    return kind(charger_id="CP1", at=AT)


def test_bus_fans_out_and_survives_a_failing_subscriber(caplog: pytest.LogCaptureFixture) -> None:
    """Every subscriber gets each event; one that raises is logged and the rest still run."""
    bus = EventBus()
    seen: list[str] = []

    def broken(event: ChargerEvent) -> None:
        raise RuntimeError("boom")

    bus.subscribe(broken)
    unsubscribe = bus.subscribe(lambda e: seen.append(type(e).__name__))
    assert bus.has_subscribers
    with caplog.at_level(logging.ERROR):
        bus.publish(_event(Connected))
    assert seen == ["Connected"]
    assert "event subscriber failed on Connected" in caplog.text
    unsubscribe()
    bus.publish(_event(Disconnected))
    assert seen == ["Connected"]


def test_events_are_typed_and_frozen() -> None:
    """A domain event carries typed fields and cannot be changed by a subscriber."""
    event = StatusChanged(
        charger_id="CP1", at=AT, connector_id=1, status="Charging", previous="Preparing",
        error_code="NoError",
    )  # fmt: skip
    assert isinstance(event, ChargerEvent)
    with pytest.raises(AttributeError):
        event.status = "Available"  # type: ignore[misc]


def _record(transaction_id: int, id_tag: str, connector_id: int = 1) -> TransactionRecord:
    return TransactionRecord(
        transaction_id=transaction_id, charger_id="CP1", connector_id=connector_id,
        id_tag=id_tag, id_tag_status="Accepted", meter_start=1000,
        start_time="2026-01-01T00:00:00.000Z", reservation_id=None, stop_time=None,
        meter_stop=None, stop_reason=None, stop_id_tag=None, energy_wh=None,
        created_at="2026-01-01T00:00:00.000Z",
    )  # fmt: skip


def test_active_transactions_are_found_by_id_tag_case_insensitively() -> None:
    """Transactions are indexed by idTag (CiString: case-insensitive) and leave the index on pop."""
    active = ActiveTransactions()
    active.add(_record(1, "Tag-A"), last_register_wh=1500.0)
    active.add(_record(2, "tag-a", connector_id=2))
    active.add(_record(3, "OTHER"))
    assert sorted(t.transaction_id for t in active.for_id_tag("TAG-A")) == [1, 2]
    tx = active.get(1)
    assert tx is not None and tx.energy_wh == 500.0
    assert active.pop(1) is tx and active.pop(1) is None
    assert [t.transaction_id for t in active.for_id_tag("tag-a")] == [2]
    active.pop(2)
    assert active.for_id_tag("tag-a") == [] and len(active) == 1
