"""The dependencies feature handlers receive.

Handlers get one `Services` object instead of reaching for globals; tests build
it around temporary stores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edge.chargers import ChargerRegistry
from edge.config import Config
from edge.events import ChargerEvent, EventBus
from edge.id_tags import IdTagList
from edge.metrics import Metrics
from edge.site.leases import LeaseBook
from edge.store import Journal
from edge.times import format_time, utc_now
from edge.transactions.active import ActiveTransactions

__all__ = ["Services"]


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
    leases: LeaseBook = field(default_factory=LeaseBook)
    clock: Callable[[], datetime] = utc_now

    def now(self) -> datetime:
        return self.clock()

    def now_text(self) -> str:
        return format_time(self.clock())

    def record(self, charger_id: str | None, kind: str, data: dict[str, Any]) -> None:
        """Journal an event without waiting for the disk (audit trail, not acknowledged data)."""
        self.journal.add_event(charger_id=charger_id, kind=kind, data=data, at=self.now_text())

    def publish(self, event: ChargerEvent) -> None:
        """Fan a domain event out to its subscribers (`edge.events`)."""
        self.events.publish(event)
