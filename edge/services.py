"""The dependencies feature handlers receive, and the in-process event bus.

Handlers get one `Services` object instead of reaching for globals; tests build
it around temporary stores. Events published here fan out to consumers (site
control loop, metrics, the web page) that must never block a charger's reply:
subscribers are plain callables that only record or enqueue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from edge.chargers import ChargerRegistry
from edge.config import Config
from edge.id_tags import IdTagList
from edge.metrics import Metrics
from edge.ocppj import format_datetime
from edge.store import Journal, TransactionRecord

__all__ = [
    "ActiveTransaction",
    "ActiveTransactions",
    "ChargerEvent",
    "EventBus",
    "Services",
    "utc_now",
]

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerEvent:
    """Something a charger did or reported: `kind` names it, `data` carries the details.

    Kinds: Connected, Disconnected, Booted, StatusChanged, TransactionStarted,
    TransactionStopped, MeterValues, and the names of CSMS operations with their outcome.
    """

    charger_id: str
    kind: str
    data: dict[str, Any]
    at: datetime


class EventBus:
    """Synchronous fan-out of ChargerEvents; a failing subscriber is logged, never propagated."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[ChargerEvent], None]] = []

    def subscribe(self, callback: Callable[[ChargerEvent], None]) -> Callable[[], None]:
        """Register a callback; returns a function that unsubscribes it."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscribers)

    def publish(self, event: ChargerEvent) -> None:
        for callback in tuple(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.exception("event subscriber failed on %s", event.kind)


@dataclass(slots=True)
class ActiveTransaction:
    """An ongoing transaction as the CSMS tracks it between messages."""

    transaction_id: int
    charger_id: str
    connector_id: int
    id_tag: str
    meter_start: int
    start_time: str
    last_register_wh: float | None = None

    @property
    def energy_wh(self) -> float | None:
        if self.last_register_wh is None:
            return None
        return self.last_register_wh - self.meter_start


class ActiveTransactions:
    """Ongoing transactions by id, rebuilt from the journal at start-up."""

    def __init__(self) -> None:
        self._by_id: dict[int, ActiveTransaction] = {}
        # casefolded idTag → transaction ids: the ConcurrentTx check must not scan the site.
        self._by_tag: dict[str, set[int]] = {}

    def load(self, journal: Journal) -> None:
        for record in journal.active_transactions():
            self.add(record, last_register_wh=journal.last_register_wh(record.transaction_id))

    def add(self, record: TransactionRecord, last_register_wh: float | None = None) -> None:
        self._by_tag.setdefault(record.id_tag.casefold(), set()).add(record.transaction_id)
        self._by_id[record.transaction_id] = ActiveTransaction(
            transaction_id=record.transaction_id,
            charger_id=record.charger_id,
            connector_id=record.connector_id,
            id_tag=record.id_tag,
            meter_start=record.meter_start,
            start_time=record.start_time,
            last_register_wh=last_register_wh,
        )

    def get(self, transaction_id: int) -> ActiveTransaction | None:
        return self._by_id.get(transaction_id)

    def pop(self, transaction_id: int) -> ActiveTransaction | None:
        tx = self._by_id.pop(transaction_id, None)
        if tx is not None:
            key = tx.id_tag.casefold()
            ids = self._by_tag.get(key)
            if ids is not None:
                ids.discard(transaction_id)
                if not ids:
                    del self._by_tag[key]
        return tx

    def for_id_tag(self, id_tag: str) -> list[ActiveTransaction]:
        ids = self._by_tag.get(id_tag.casefold(), ())
        return [self._by_id[i] for i in ids]

    def __len__(self) -> int:
        return len(self._by_id)


@dataclass(slots=True, kw_only=True)
class Services:
    """Everything a feature handler may use."""

    config: Config
    chargers: ChargerRegistry
    id_tags: IdTagList
    journal: Journal
    transactions: ActiveTransactions
    metrics: Metrics
    events: EventBus = field(default_factory=EventBus)
    clock: Callable[[], datetime] = utc_now

    def now(self) -> datetime:
        return self.clock()

    def now_text(self) -> str:
        return format_datetime(self.clock())

    def record(self, charger_id: str | None, kind: str, data: dict[str, Any]) -> None:
        """Journal an event without waiting for the disk (audit trail, not acknowledged data)."""
        self.journal.add_event(charger_id=charger_id, kind=kind, data=data, at=self.now_text())

    def publish(self, charger_id: str, kind: str, data: dict[str, Any]) -> None:
        if self.events.has_subscribers:
            event = ChargerEvent(charger_id=charger_id, kind=kind, data=data, at=self.now())
            self.events.publish(event)
