"""The dependencies feature handlers receive.

Handlers get one `Services` object instead of reaching for globals; tests build
it around temporary stores.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from edge.chargers import ChargerRegistry
from edge.config import Config
from edge.events import ChargerEvent, EventBus
from edge.id_tags import CloudVerdicts, IdTagList
from edge.metrics import Metrics
from edge.security.authority import CertificateAuthority
from edge.site.leases import LeaseBook
from edge.store import Journal, OutboxMessage
from edge.times import format_time, utc_now
from edge.transactions.active import ActiveTransactions

if TYPE_CHECKING:
    from edge.security.connection import ConnectionSecurity

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
    cloud_verdicts: CloudVerdicts | None = None
    """The cloud's recent verdicts on id tags (with a cloud)."""
    cloud_authorize: Callable[[str, str], Awaitable[dict[str, Any] | None]] | None = None
    """Asks the cloud about an id tag for a charger: its idTagInfo, or None when the
    cloud cannot answer within ``authorize_timeout`` (set by the cloud link)."""
    cloud_data_transfer: (
        Callable[[str, dict[str, Any]], Awaitable[dict[str, Any] | None]] | None
    ) = None
    """Passes a charger's DataTransfer to the cloud: its answer, or None when the cloud
    cannot answer within ``authorize_timeout`` (set by the cloud link)."""
    certificates: CertificateAuthority | None = None
    """The site CA: signs chargers' CSRs, keeps the register of what it issued (set by
    the app; None answers SignCertificate Rejected)."""

    security: ConnectionSecurity | None = None
    """Who may connect as which charger (`edge.security.connection`; set by the app)."""
    tls_reload: Callable[[], None] = lambda: None
    """Rebuilds the wss listener's TLS context from its files (set by the app)."""

    def security_changed(self) -> None:
        """The TLS material changed (a revocation, a new client CA, a renewed server
        certificate): new connections use it from now on. A reload that fails keeps the
        current context and logs why."""
        self.tls_reload()

    def now(self) -> datetime:
        return self.clock()

    def now_text(self) -> str:
        return format_time(self.clock())

    def record(self, charger_id: str | None, kind: str, data: dict[str, Any]) -> None:
        """Journal an event without waiting for the disk (audit trail, not acknowledged data)."""
        self.journal.add_event(charger_id=charger_id, kind=kind, data=data, at=self.now_text())

    def for_cloud(
        self, charger_id: str, action: str, payload: dict[str, Any], connector_id: int | None = None
    ) -> OutboxMessage | None:
        """The charger's message as the cloud's outbox keeps it (DESIGN §7): written by
        the journal operation that records the message; None without a cloud."""
        if self.config.upstream is None:
            return None
        return OutboxMessage(
            charger_id=charger_id,
            action=action,
            payload=orjson.dumps(payload),
            created_at=self.now_text(),
            connector_id=connector_id,
        )

    async def record_for_cloud(self, charger_id: str, kind: str, data: dict[str, Any]) -> None:
        """Journal a charger's notification that the cloud gets too (`kind` is its
        action): with a cloud, awaited, so it is in the outbox before the charger's
        answer; without one, like `record`."""
        outbox = self.for_cloud(charger_id, kind, data)
        if outbox is None:
            self.record(charger_id, kind, data)
            return
        await self.journal.add_event(
            charger_id=charger_id, kind=kind, data=data, at=self.now_text(), outbox=outbox
        )

    def publish(self, event: ChargerEvent) -> None:
        """Fan a domain event out to its subscribers (`edge.events`)."""
        self.events.publish(event)
