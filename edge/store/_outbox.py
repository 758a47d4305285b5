"""SQL of the upstream outbox and the transaction id map, in the journal's database.

An outbox row is what one charger message must become toward the cloud: the charger's
own payload (its JSON as received, edge ids inside), in the charger's order (``seq``).
It is inserted by the same journal operation that records the message, so it commits
in the same transaction: a message the charger saw acknowledged is in the outbox.
A row leaves when the cloud's CALLRESULT is recorded (`ack`, which stores the cloud's
transaction id of a StartTransaction in the same commit), or when it has waited longer
than the retention. Rows the cloud keeps refusing are *parked*: kept, shown, not sent.

The table holds only what the cloud has not taken yet, so it stays small and its pages
stay cached; its index is keyed by charger (a few dozen chargers, appends per charger).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

__all__ = [
    "INDEXES",
    "TABLES",
    "OutboxEntry",
    "OutboxMessage",
    "OutboxSummary",
    "ack",
    "cloud_tx",
    "edge_tx",
    "expire",
    "insert",
    "note_attempt",
    "parked",
    "pending",
    "summaries",
]

TABLES = (
    """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    charger_id TEXT NOT NULL,
    action TEXT NOT NULL,
    payload BLOB NOT NULL,
    edge_tx INTEGER,
    connector_id INTEGER,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    parked TEXT
)""",
    """
CREATE TABLE IF NOT EXISTS upstream_tx (
    edge_tx INTEGER PRIMARY KEY,
    cloud_tx INTEGER NOT NULL,
    id_tag_status TEXT
)""",
)
INDEXES = (
    "CREATE INDEX IF NOT EXISTS outbox_charger ON outbox (charger_id, seq)",
    "CREATE INDEX IF NOT EXISTS upstream_tx_cloud ON upstream_tx (cloud_tx)",
)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A charger message for the cloud, as the journal operation recording it inserts it."""

    charger_id: str
    action: str
    payload: bytes
    """The charger's payload, JSON as received (ids are the edge's)."""
    created_at: str
    connector_id: int | None = None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbox row."""

    seq: int
    charger_id: str
    action: str
    payload: bytes
    edge_tx: int | None
    connector_id: int | None
    created_at: str
    attempts: int
    parked: str | None


@dataclass(frozen=True, slots=True)
class OutboxSummary:
    """One charger's outbox: waiting rows (parked ones included) and the oldest."""

    charger_id: str
    pending: int
    parked: int
    oldest: str | None


def insert(conn: sqlite3.Connection, message: OutboxMessage, edge_tx: int | None) -> OutboxEntry:
    """Insert `message`; the row it became (valid once its transaction commits)."""
    seq = conn.execute(
        "INSERT INTO outbox (charger_id, action, payload, edge_tx, connector_id, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            message.charger_id,
            message.action,
            message.payload,
            edge_tx,
            message.connector_id,
            message.created_at,
        ),
    ).lastrowid
    assert seq is not None
    return OutboxEntry(
        seq,
        message.charger_id,
        message.action,
        message.payload,
        edge_tx,
        message.connector_id,
        message.created_at,
        0,
        None,
    )


def pending(conn: sqlite3.Connection, charger_id: str, limit: int) -> list[OutboxEntry]:
    """The charger's next rows not parked, oldest first."""
    rows = conn.execute(
        "SELECT seq, charger_id, action, payload, edge_tx, connector_id, created_at, attempts,"
        " parked FROM outbox WHERE charger_id = ? AND parked IS NULL ORDER BY seq LIMIT ?",
        (charger_id, limit),
    ).fetchall()
    return [OutboxEntry(*row) for row in rows]


def parked(conn: sqlite3.Connection, charger_id: str | None, limit: int) -> list[OutboxEntry]:
    sql = (
        "SELECT seq, charger_id, action, payload, edge_tx, connector_id, created_at, attempts,"
        " parked FROM outbox WHERE parked IS NOT NULL"
    )
    args: tuple[object, ...] = ()
    if charger_id is not None:
        sql += " AND charger_id = ?"
        args = (charger_id,)
    rows = conn.execute(sql + " ORDER BY seq LIMIT ?", (*args, limit)).fetchall()
    return [OutboxEntry(*row) for row in rows]


def summaries(conn: sqlite3.Connection) -> dict[str, OutboxSummary]:
    rows = conn.execute(
        "SELECT charger_id, count(*), count(parked), min(created_at) FROM outbox"
        " GROUP BY charger_id"
    ).fetchall()
    return {r[0]: OutboxSummary(r[0], r[1], r[2], r[3]) for r in rows}


def ack(
    conn: sqlite3.Connection,
    seqs: tuple[int, ...],
    mapping: tuple[int, int, str | None] | None,
) -> None:
    """Rows the cloud took (or that need not go: a status coalesced); with `mapping`
    ``(edge_tx, cloud_tx, id_tag_status)`` from a StartTransaction.conf."""
    if mapping is not None:
        conn.execute(
            "INSERT OR REPLACE INTO upstream_tx (edge_tx, cloud_tx, id_tag_status)"
            " VALUES (?, ?, ?)",
            mapping,
        )
    conn.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])


def note_attempt(conn: sqlite3.Connection, seq: int, parked_reason: str | None) -> None:
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, parked = ? WHERE seq = ?",
        (parked_reason, seq),
    )


def expire(conn: sqlite3.Connection, before: str) -> int:
    """Drop rows created before `before` (the retention); the count dropped."""
    return conn.execute("DELETE FROM outbox WHERE created_at < ?", (before,)).rowcount


def cloud_tx(conn: sqlite3.Connection, edge_tx: int) -> tuple[int, str | None] | None:
    row = conn.execute(
        "SELECT cloud_tx, id_tag_status FROM upstream_tx WHERE edge_tx = ?", (edge_tx,)
    ).fetchone()
    return None if row is None else (row[0], row[1])


def edge_tx(conn: sqlite3.Connection, cloud: object) -> int | None:
    """The edge's id of the cloud's transaction `cloud` (whatever the cloud sent: an id
    that is no integer SQLite holds is none of ours)."""
    if not isinstance(cloud, int) or isinstance(cloud, bool) or not -(2**63) <= cloud < 2**63:
        return None
    row = conn.execute(
        "SELECT edge_tx FROM upstream_tx WHERE cloud_tx = ? ORDER BY edge_tx DESC LIMIT 1",
        (cloud,),
    ).fetchone()
    return None if row is None else int(row[0])
