"""The link's rules, pure: what goes next, how ids are rewritten, how long to wait.

Order: one charger's outbox goes in its order (``seq``), one CALL at a time, so a
transaction's MeterValues and StopTransaction always follow its StartTransaction, whose
answer gives the cloud's id they need. StatusNotifications written while the link was
down are coalesced: one that a later pending StatusNotification of the same connector
supersedes is not sent at all.

Ids: the charger knows the edge's transaction ids; the cloud knows its own. Messages
for the cloud carry the cloud's id (`to_cloud`); commands from the cloud carry it and
reach the charger with the edge's (`edge.upstream.commands`).

Retries: the payload is the stored one, rewritten by a fixed map, serialised the same
way: a retry repeats it byte for byte (clouds de-duplicate by content).

The front: a link sends from the rows it holds in memory (`Front`), read from the outbox
or handed over by the journal as they commit, so a link that keeps up reads nothing.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from edge.store import OutboxEntry

__all__ = [
    "TRANSACTION_ACTIONS",
    "Front",
    "Next",
    "backoff",
    "needs_cloud_id",
    "next_to_send",
    "to_cloud",
]

TRANSACTION_ACTIONS = frozenset({"StartTransaction", "MeterValues", "StopTransaction"})
"""Messages the cloud gets exactly once, and whose refusal parks them (not drops)."""


class Front:
    """The front of one charger's outbox, which its link sends from memory, in order:
    at most `limit` rows, the rest waits on disk.

    Rows join two ways: a read of the outbox (`read`: its oldest `limit` rows not
    parked, when `needs_read`), and the journal handing each row over as it commits
    (`handed`). A handed row joins only if no row the link does not hold can be on disk
    before it: the last read found fewer than `limit` rows and nothing was turned away
    since (`complete`), and the row is newer than every row held so far (one committed
    just before a read is read, then handed too). Otherwise the next read finds it.
    Rows leave by `drop` once the cloud took them (or they were coalesced or parked).

    A read must wait until every row dropped has also left the disk (an ack committed):
    it would be read, and sent, again.
    """

    __slots__ = ("complete", "limit", "rows", "seen")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.rows: list[OutboxEntry] = []
        self.complete = False  # nothing on disk beyond `rows` but rows still to be handed
        self.seen = 0  # the highest seq ever held

    @property
    def needs_read(self) -> bool:
        return not self.rows and not self.complete

    def read(self, rows: list[OutboxEntry]) -> None:
        """`rows`: the outbox's first `limit` rows of the charger, not parked, in order."""
        self.rows = rows
        self.complete = len(rows) < self.limit
        if rows:
            self.seen = max(self.seen, rows[-1].seq)

    def handed(self, entry: OutboxEntry) -> None:
        """`entry` was committed (the journal hands rows over in the outbox's order)."""
        if not self.complete or entry.seq <= self.seen:
            return  # on disk behind rows not held, or held already
        if len(self.rows) >= self.limit:
            self.complete = False  # full (the cloud is away): it waits on disk
            return
        self.rows.append(entry)
        self.seen = entry.seq

    def drop(self, *seqs: int) -> None:
        rows = self.rows
        if len(seqs) == 1 and rows and rows[0].seq == seqs[0]:
            del rows[0]  # the usual case: the row just sent
            return
        gone = set(seqs)
        self.rows = [e for e in rows if e.seq not in gone]

    def tried(self, seq: int) -> None:
        """One more attempt of row `seq` (the cloud refused it)."""
        self.rows = [replace(e, attempts=e.attempts + 1) if e.seq == seq else e for e in self.rows]

    def forget(self) -> None:
        """Rows may have left the disk behind the link's back (retention): read again."""
        self.rows = []
        self.complete = False


@dataclass(frozen=True, slots=True)
class Next:
    """What to do with the front of a charger's outbox."""

    entry: OutboxEntry | None
    """The row to send next (None: nothing to send)."""
    superseded: tuple[int, ...] = ()
    """Rows before it that need not go (statuses a later one of their connector replaces)."""


def next_to_send(entries: Sequence[OutboxEntry], offline_before: str | None = None) -> Next:
    """The next row to send from `entries` (pending, in order), and the statuses before
    it that a later status of the same connector supersedes. Only statuses written while
    the link was down (``created_at`` before `offline_before`, the time the link came
    up; None: none) are coalesced: a connected cloud sees every status."""
    superseded: list[int] = []
    later_status: set[int] = set()
    latest: dict[int, int] = {}  # from the back: each connector's last pending status
    for entry in reversed(entries):
        if entry.action == "StatusNotification" and entry.connector_id is not None:
            if entry.connector_id not in latest:
                latest[entry.connector_id] = entry.seq
            elif offline_before is not None and entry.created_at < offline_before:
                later_status.add(entry.seq)
    for entry in entries:
        if entry.seq in later_status:
            superseded.append(entry.seq)
            continue
        return Next(entry, tuple(superseded))
    return Next(None, tuple(superseded))


def to_cloud(entry: OutboxEntry, cloud_tx: int | None) -> dict[str, Any]:
    """The payload the cloud gets for `entry`: the charger's, with the cloud's
    transaction id where it carries one (`cloud_tx`, known for its transaction)."""
    payload: dict[str, Any] = orjson.loads(entry.payload)
    named = entry.action in ("MeterValues", "StopTransaction") and "transactionId" in payload
    if named and cloud_tx is not None:
        payload["transactionId"] = cloud_tx
    return payload


def needs_cloud_id(entry: OutboxEntry) -> bool:
    """Whether the row names a transaction the cloud must know by its own id."""
    if entry.action == "StopTransaction":
        return True
    return entry.action == "MeterValues" and entry.edge_tx is not None


def backoff(attempt: int, *, base: float = 1.0, cap: float = 60.0,
            rng: Callable[[], float] = random.random) -> float:  # fmt: skip
    """Seconds before reconnect `attempt` (0 = the first retry): exponential up to `cap`,
    with full jitter, so many links do not hit a recovering cloud in the same second."""
    ceiling = min(cap, base * 2.0 ** min(attempt, 30))
    return max(0.1 * base, ceiling * rng())
