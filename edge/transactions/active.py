"""Ongoing transactions as the CSMS tracks them between messages, rebuilt from the journal."""

from __future__ import annotations

from dataclasses import dataclass

from edge.store import Journal, TransactionRecord

__all__ = ["ActiveTransaction", "ActiveTransactions"]


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
        """Track a transaction the journal holds (at start-up)."""
        self.start(
            ActiveTransaction(
                transaction_id=record.transaction_id,
                charger_id=record.charger_id,
                connector_id=record.connector_id,
                id_tag=record.id_tag,
                meter_start=record.meter_start,
                start_time=record.start_time,
                last_register_wh=last_register_wh,
            )
        )

    def start(self, tx: ActiveTransaction) -> None:
        """Track a transaction that just started."""
        self._by_tag.setdefault(tx.id_tag.casefold(), set()).add(tx.transaction_id)
        self._by_id[tx.transaction_id] = tx

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

    def for_charger(self, charger_id: str) -> list[ActiveTransaction]:
        """The charger's ongoing transactions (a scan: for operator requests only)."""
        return [tx for tx in self._by_id.values() if tx.charger_id == charger_id]

    def for_id_tag(self, id_tag: str) -> list[ActiveTransaction]:
        ids = self._by_tag.get(id_tag.casefold(), ())
        return [self._by_id[i] for i in ids]

    def __len__(self) -> int:
        return len(self._by_id)
