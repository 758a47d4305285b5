"""Journal schema: migration from version 1, and refusing a newer version."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import orjson
import pytest

from edge.store import Journal, StoreError
from edge.store._codec import encode_sampled_value
from edge.store._queries import SCHEMA_VERSION

# Schema version 1, verbatim (with its BUCKET_SHIFT = 10 substituted).
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS transactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    charger_id TEXT NOT NULL,
    connector_id INTEGER NOT NULL,
    id_tag TEXT NOT NULL,
    id_tag_status TEXT NOT NULL,
    meter_start INTEGER NOT NULL,
    start_time TEXT NOT NULL,
    reservation_id INTEGER,
    stop_time TEXT,
    meter_stop INTEGER,
    stop_reason TEXT,
    stop_id_tag TEXT,
    energy_wh REAL,
    created_at TEXT NOT NULL,
    stopped_at TEXT,
    sample_floor INTEGER NOT NULL,
    sample_ceiling INTEGER
);
CREATE INDEX IF NOT EXISTS transactions_charger ON transactions (charger_id);
CREATE INDEX IF NOT EXISTS transactions_active ON transactions (charger_id)
    WHERE stop_time IS NULL;

CREATE TABLE IF NOT EXISTS meter_samples (
    id INTEGER PRIMARY KEY,
    transaction_id INTEGER,
    charger_id TEXT NOT NULL,
    connector_id INTEGER NOT NULL,
    received INTEGER NOT NULL,
    timestamp TEXT NOT NULL,
    register_wh REAL,
    sampled_value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS meter_samples_tx
    ON meter_samples (id >> 10, transaction_id) WHERE transaction_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS status_history (
    id INTEGER PRIMARY KEY,
    charger_id TEXT NOT NULL,
    connector_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    error_code TEXT NOT NULL,
    info TEXT,
    vendor_id TEXT,
    vendor_error_code TEXT,
    timestamp TEXT,
    received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS status_history_charger ON status_history (charger_id);
CREATE TABLE IF NOT EXISTS latest_status (
    charger_id TEXT NOT NULL,
    connector_id INTEGER NOT NULL,
    status_id INTEGER NOT NULL,
    PRIMARY KEY (charger_id, connector_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    charger_id TEXT,
    kind TEXT NOT NULL,
    data BLOB NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_charger ON events (charger_id) WHERE charger_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_kind ON events (kind);

PRAGMA user_version = 1;
"""
V2_INDEXES = {
    "events_bucket",
    "meter_samples_bucket",
    "status_history_bucket",
    "transactions_active",
    "transactions_bucket",
}
CURRENT_INDEXES = V2_INDEXES | {"outbox_charger", "upstream_tx_cloud"}  # v3: the cloud outbox


def _start(conn: sqlite3.Connection, charger: str) -> int:
    """Insert a transaction the way version 1 did."""
    cursor = conn.execute(
        "INSERT INTO transactions (charger_id, connector_id, id_tag, id_tag_status, meter_start,"
        " start_time, reservation_id, created_at, sample_floor) VALUES (?, 1, 'TAG', 'Accepted',"
        " 0, 't0', NULL, '2026-01-01T00:00:00.000Z',"
        " (SELECT coalesce(max(id), 0) FROM meter_samples))",
        (charger,),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _sample(conn: sqlite3.Connection, tid: int | None, charger: str, wh: float) -> None:
    value = orjson.dumps([{"value": str(wh), "measurand": "Energy.Active.Import.Register"}])
    conn.execute(
        "INSERT INTO meter_samples (transaction_id, charger_id, connector_id, received, timestamp,"
        " register_wh, sampled_value) VALUES (?, ?, 1, 0, 't', ?, ?)",
        (tid, charger, wh, encode_sampled_value(value)),
    )


def _status(conn: sqlite3.Connection, charger: str, connector: int, status: str) -> None:
    """Insert a status the way version 1 did: history row and latest_status upsert."""
    cursor = conn.execute(
        "INSERT INTO status_history (charger_id, connector_id, status, error_code, received_at)"
        " VALUES (?, ?, ?, 'NoError', 'r')",
        (charger, connector, status),
    )
    conn.execute(
        "INSERT INTO latest_status VALUES (?, ?, ?) ON CONFLICT (charger_id, connector_id)"
        " DO UPDATE SET status_id = excluded.status_id",
        (charger, connector, cursor.lastrowid),
    )


def make_v1_journal(path: Path) -> dict[str, int]:
    """A version 1 file with every kind of row; returns the transaction ids."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA page_size = 1024")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(f"BEGIN; {V1_SCHEMA} COMMIT;")
    conn.execute("BEGIN")
    stopped = _start(conn, "CP1")
    active = _start(conn, "CP2")
    # Spans several version 1 buckets (1024 samples) and many version 2 ones.
    for n in range(3000):
        _sample(conn, stopped if n % 2 else active, "CP1" if n % 2 else "CP2", float(n))
    _sample(conn, None, "CP3", 7.0)
    conn.execute(
        "UPDATE transactions SET stop_time = 't1', meter_stop = 10, stop_reason = 'Local',"
        " energy_wh = 10.0, stopped_at = '2026-01-01T01:00:00.000Z',"
        " sample_ceiling = (SELECT coalesce(max(id), 0) FROM meter_samples) WHERE id = ?",
        (stopped,),
    )
    later = _start(conn, "CP1")
    for charger, connector, status in [
        ("CP1", 1, "Preparing"),
        ("CP1", 1, "Charging"),
        ("CP2", 1, "Charging"),
        ("CP1", 2, "Available"),
        ("CP1", 1, "Finishing"),
    ]:
        _status(conn, charger, connector, status)
    events: list[tuple[str | None, str]] = [
        ("CP1", "Boot"),
        (None, "Operation"),
        ("CP1", "Authorize"),
    ]
    for event_charger, kind in events:
        conn.execute(
            "INSERT INTO events (charger_id, kind, data, at) VALUES (?, ?, ?, 'a')",
            (event_charger, kind, orjson.dumps({"k": kind})),
        )
    conn.execute("COMMIT")
    conn.close()
    return {"stopped": stopped, "active": active, "later": later}


def indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL"
        )
        return {row[0] for row in rows}


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


async def test_version_1_file_is_migrated_without_loss(tmp_path: Path) -> None:
    """Opening a v1 journal swaps its indexes for the bucketed ones; every read still works."""
    path = tmp_path / "journal.db"
    ids = make_v1_journal(path)
    async with Journal(path) as journal:
        assert user_version(path) == SCHEMA_VERSION
        assert indexes(path) == CURRENT_INDEXES
        stopped = journal.meter_samples(ids["stopped"], limit=10_000)
        assert [s.register_wh for s in stopped] == [float(n) for n in range(1, 3000, 2)]
        assert len(journal.meter_samples(ids["active"], limit=10_000)) == 1500
        assert journal.last_register_wh(ids["active"]) == 2998.0
        assert journal.meter_samples(ids["later"]) == []
        assert [s.register_wh for s in journal.connector_samples("CP3", 1)] == [7.0]
        assert [t.transaction_id for t in journal.active_transactions()] == [
            ids["active"],
            ids["later"],
        ]
        assert [t.transaction_id for t in journal.list_transactions(charger_id="CP1")] == [
            ids["later"],
            ids["stopped"],
        ]
        assert [t.transaction_id for t in journal.list_transactions(active=False)] == [
            ids["stopped"]
        ]
        latest = {(s.charger_id, s.connector_id): s.status for s in journal.latest_statuses()}
        assert latest == {("CP1", 1): "Finishing", ("CP1", 2): "Available", ("CP2", 1): "Charging"}
        assert [s.status for s in journal.status_history("CP1")] == [
            "Finishing",
            "Available",
            "Charging",
            "Preparing",
        ]
        assert [e["kind"] for e in journal.events(charger_id="CP1")] == ["Authorize", "Boot"]
        assert [e["data"] for e in journal.events(kind="Operation")] == [{"k": "Operation"}]
        # Ids go on from version 1's sequence.
        tid = await journal.start_transaction(
            charger_id="CP9",
            connector_id=1,
            id_tag="T",
            id_tag_status="Accepted",
            meter_start=0,
            start_time="t",
            reservation_id=None,
            created_at="c",
        )
        assert tid == ids["later"] + 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    async with Journal(path) as journal:  # a v2 file opens as is
        assert len(journal.list_transactions()) == 4
    assert indexes(path) == CURRENT_INDEXES


async def test_a_failed_migration_leaves_version_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The migration is one transaction: if it fails, the file is still a whole v1 file."""
    from edge.store import _queries

    path = tmp_path / "journal.db"
    make_v1_journal(path)
    monkeypatch.setattr(_queries, "INDEXES", (*_queries.INDEXES, "CREATE INDEX broken ON nope (x)"))
    with pytest.raises(sqlite3.OperationalError):
        await Journal(path).open()
    assert user_version(path) == 1
    assert "events_kind" in indexes(path)
    monkeypatch.undo()
    async with Journal(path) as journal:
        assert len(journal.list_transactions()) == 3
    assert user_version(path) == SCHEMA_VERSION


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A file written by a newer version is not opened (nor changed)."""
    path = tmp_path / "journal.db"
    async with Journal(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer"):
        await Journal(path).open()
    assert user_version(path) == 99
    assert not any(p.name.startswith("journal.db.corrupt") for p in os.scandir(tmp_path))
