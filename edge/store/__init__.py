"""Durable state: tinydb state documents and the sqlite journal (DESIGN.md §5).

- :class:`DocumentStore`: one small tinydb file per concern (chargers, id tags,
  reservations, ...), written atomically, flushed in batches by its owner.
- :class:`Journal`: append-heavy records (transactions, meter samples, status
  history, events) in sqlite WAL with group commit; await a write's future
  before acknowledging the charger.
"""

from ._outbox import OutboxEntry, OutboxMessage, OutboxSummary
from .documents import AtomicJSONStorage, DocumentStore, DocumentStoreStatistics
from .errors import JournalClosedError, StoreError
from .journal import Journal
from .records import JournalStatistics, MeterSample, StatusRecord, TransactionRecord

__all__ = [
    "AtomicJSONStorage",
    "DocumentStore",
    "DocumentStoreStatistics",
    "Journal",
    "JournalClosedError",
    "JournalStatistics",
    "MeterSample",
    "OutboxEntry",
    "OutboxMessage",
    "OutboxSummary",
    "StatusRecord",
    "StoreError",
    "TransactionRecord",
]
