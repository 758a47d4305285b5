"""Journal reads through the bucketed indexes, the latest-status snapshot, pages per commit."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import struct
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from edge.store import Journal, MeterSample
from edge.store import _queries as q
from edge.store import journal as journal_module
from edge.store._codec import encode_sampled_value
from edge.times import format_time
from tests.helpers import Clock

from .test_journal import T0, start, status, stop, wal_size

ROWS = 3 * (1 << q.STATUS_SHIFT) * q.BUCKETS_PER_QUERY  # several statements' worth of buckets


async def new_journal(path: Path) -> None:
    async with Journal(path):
        pass


def bulk(path: Path, sql: str, rows: list[tuple[object, ...]]) -> None:
    """Insert rows straight into a closed journal file (fast set-up of a long history)."""
    with sqlite3.connect(path) as conn:
        conn.executemany(sql, rows)


def status_rows(chargers: list[str]) -> list[tuple[object, ...]]:
    return [(c, 1, f"S{n}", "NoError", f"r{n}") for n, c in enumerate(chargers)]


INSERT_STATUS = (
    "INSERT INTO status_history (charger_id, connector_id, status, error_code, received_at)"
    " VALUES (?, ?, ?, ?, ?)"
)
INSERT_EVENT = "INSERT INTO events (charger_id, kind, data, at) VALUES (?, ?, '{}', ?)"


def expected(path: Path, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
    """The answer by a plain scan, to compare the bucket walk with."""
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


async def test_status_history_walks_every_bucket(tmp_path: Path) -> None:
    """A charger's statuses are all found newest first, however far apart they are."""
    path = tmp_path / "journal.db"
    await new_journal(path)
    rng = random.Random(5)
    chargers = ["RARE", *(f"CP{rng.randrange(50)}" for _ in range(ROWS)), "RARE"]
    chargers[ROWS // 2] = "RARE"
    bulk(path, INSERT_STATUS, status_rows(chargers))
    async with Journal(path) as journal:
        rare = journal.status_history("RARE")
        assert [s.status for s in rare] == [f"S{ROWS + 1}", f"S{ROWS // 2}", "S0"]
        for limit in (1, 70, 1000):
            got = [s.status for s in journal.status_history("CP7", limit=limit)]
            sql = "SELECT status FROM status_history WHERE charger_id = ? ORDER BY id DESC LIMIT ?"
            assert got == [row[0] for row in expected(path, sql, ("CP7", limit))]
        assert journal.status_history("NOBODY") == []
        assert journal.status_history("RARE", limit=0) == []


async def test_status_history_of_an_empty_journal(tmp_path: Path) -> None:
    async with Journal(tmp_path / "journal.db") as journal:
        assert journal.status_history("CP1") == []
        assert journal.events(charger_id="CP1") == []
        assert journal.list_transactions(charger_id="CP1") == []


async def test_events_by_charger_and_kind_walk_every_bucket(tmp_path: Path) -> None:
    """events(charger_id=, kind=) filters while walking; kind alone searches the newest rows."""
    path = tmp_path / "journal.db"
    await new_journal(path)
    rng = random.Random(6)
    rows: list[tuple[object, ...]] = [("CP1", "Rare", "first")]
    for n in range(ROWS):
        charger = None if n % 10 == 0 else f"CP{rng.randrange(40)}"
        rows.append((charger, rng.choice(["Boot", "Authorize", "Operation"]), f"a{n}"))
    rows.append((None, "Newest", "last"))
    bulk(path, INSERT_EVENT, rows)
    async with Journal(path) as journal:
        got = journal.events(charger_id="CP1", kind="Rare")
        assert [e["at"] for e in got] == ["first"]
        sql = (
            "SELECT at FROM events WHERE charger_id = ? AND coalesce(?, kind) = kind"
            " ORDER BY id DESC LIMIT 300"
        )
        for kind in ("Boot", None):
            want = [row[0] for row in expected(path, sql, ("CP3", kind))]
            got = journal.events(charger_id="CP3", kind=kind, limit=300)
            assert [e["at"] for e in got] == want
        # Without a charger: the newest `scan` events are searched.
        assert [e["at"] for e in journal.events(limit=2)] == ["last", f"a{ROWS - 1}"]
        assert [e["at"] for e in journal.events(kind="Newest")] == ["last"]
        assert journal.events(kind="Rare", scan=ROWS // 2) == []  # older than the scan
        assert len(journal.events(kind="Rare", scan=ROWS + 10)) == 1
        assert len(journal.events(kind="Rare")) == 1  # within the default scan
        assert len(journal.events(kind="Boot", scan=100)) <= 100
        assert len(journal.events(limit=500, scan=10)) == 500  # the scan is at least the limit


async def test_list_transactions_by_charger_pages_through_buckets(tmp_path: Path) -> None:
    """Paging a charger's transactions with before_id visits each once, newest first."""
    path = tmp_path / "journal.db"
    await new_journal(path)
    rng = random.Random(7)
    count = 3 * (1 << q.TRANSACTION_SHIFT) * q.BUCKETS_PER_QUERY
    bulk(
        path,
        "INSERT INTO transactions (charger_id, connector_id, id_tag, id_tag_status, meter_start,"
        " start_time, created_at, sample_floor, stop_time) VALUES (?, 1, 'T', 'Accepted', 0,"
        " 't', 'c', 0, ?)",
        [(f"CP{rng.randrange(30)}", None if n % 3 else "stop") for n in range(count)],
    )
    async with Journal(path) as journal:
        clauses = {None: "", False: "AND stop_time IS NOT NULL", True: "AND stop_time IS NULL"}
        for active, clause in clauses.items():
            sql = f"SELECT id FROM transactions WHERE charger_id = ? {clause} ORDER BY id DESC"
            want = [row[0] for row in expected(path, sql, ("CP4",))]
            got: list[int] = []
            before: int | None = None
            while page := journal.list_transactions(
                charger_id="CP4", active=active, limit=37, before_id=before
            ):
                got.extend(t.transaction_id for t in page)
                before = page[-1].transaction_id
            assert got == want
        assert journal.list_transactions(charger_id="CP4", before_id=1) == []


async def test_samples_of_a_long_transaction_span_several_statements(tmp_path: Path) -> None:
    """A transaction's samples among many others' are all found, oldest first."""
    path = tmp_path / "journal.db"
    async with Journal(path) as journal:
        tid = await start(journal)
    count = 3 * (1 << q.SAMPLE_SHIFT) * q.BUCKETS_PER_QUERY
    value = encode_sampled_value(b'[{"value":"1"}]')
    bulk(
        path,
        "INSERT INTO meter_samples (transaction_id, charger_id, connector_id, received,"
        " timestamp, register_wh, sampled_value) VALUES (?, 'CP', 1, 0, 't', ?, ?)",
        [(tid if n % 97 == 0 else tid + 1, float(n), value) for n in range(count)],
    )
    mine = [float(n) for n in range(0, count, 97)]
    async with Journal(path) as journal:
        assert [s.register_wh for s in journal.meter_samples(tid, limit=10_000)] == mine
        assert [s.register_wh for s in journal.meter_samples(tid, limit=100)] == mine[:100]
        assert journal.last_register_wh(tid) == mine[-1]
        await stop(journal, tid, 5)
        assert len(journal.meter_samples(tid, limit=10_000)) == len(mine)


async def test_latest_status_snapshot_is_flushed_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """latest_status is written every LATEST_STATUS_FLUSH statuses; reads merge the rest."""
    monkeypatch.setattr(q, "LATEST_STATUS_FLUSH", 4)
    path = tmp_path / "journal.db"

    def snapshot() -> dict[tuple[str, int], int]:
        with sqlite3.connect(path) as conn:
            return {(c, k): s for c, k, s in conn.execute("SELECT * FROM latest_status")}

    async with Journal(path) as journal:
        for state in ["A", "B", "C"]:
            await journal.add_status(status("CP1", 1, state))
        assert snapshot() == {}
        assert [s.status for s in journal.latest_statuses()] == ["C"]
        await journal.add_status(status("CP2", 1, "D"))
        await journal.add_status(status("CP1", 2, "E"))  # queued after the flush
        assert snapshot() == {("CP1", 1): 3, ("CP2", 1): 4}
        latest = {(s.charger_id, s.connector_id): s.status for s in journal.latest_statuses()}
        assert latest == {("CP1", 1): "C", ("CP1", 2): "E", ("CP2", 1): "D"}
    assert snapshot() == {("CP1", 1): 3, ("CP2", 1): 4, ("CP1", 2): 5}  # flushed at close


async def test_latest_statuses_survive_a_crash_before_the_flush(tmp_path: Path) -> None:
    """Statuses committed but not in the snapshot (a crash) are merged, then flushed at open."""
    path = tmp_path / "journal.db"
    async with Journal(path) as journal:
        await journal.add_status(status("CP1", 1, "Available"))
    # What a kill -9 leaves: history rows newer than the snapshot.
    bulk(path, INSERT_STATUS, [("CP1", 1, "Charging", "E", "r"), ("CP2", 0, "Faulted", "E", "r")])
    async with Journal(path) as journal:
        latest = {(s.charger_id, s.connector_id): s.status for s in journal.latest_statuses()}
        assert latest == {("CP1", 1): "Charging", ("CP2", 0): "Faulted"}
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM latest_status").fetchone() == (2,)


async def test_prune_keeps_latest_statuses_not_yet_in_the_snapshot(tmp_path: Path) -> None:
    """Retention flushes the snapshot first, so no connector loses its latest status."""
    clock = Clock(T0)
    async with Journal(tmp_path / "journal.db", clock=clock) as journal:
        for record in [
            status("CP1", 1, "Preparing", format_time(T0)),
            status("CP1", 1, "Charging", format_time(T0)),
            status("CP1", 2, "Available", format_time(T0)),
            status("CP1", 1, "Finishing", format_time(T0 + timedelta(days=39))),
        ]:
            journal.add_status(record)
        now = T0 + timedelta(days=40)
        deleted = await journal.prune(
            now=now, meter_sample_days=30, transaction_days=30, event_days=30
        )
        assert deleted == 2
        assert [s.status for s in journal.status_history("CP1")] == ["Finishing", "Available"]
        latest = {(s.charger_id, s.connector_id): s.status for s in journal.latest_statuses()}
        assert latest == {("CP1", 1): "Finishing", ("CP1", 2): "Available"}


def wal_frames(path: Path, start: int) -> list[int]:
    """Page numbers of the WAL frames written after byte offset ``start`` (1 KiB pages)."""
    data = Path(f"{path}-wal").read_bytes()[start:]
    frame = 24 + 1024
    return [struct.unpack(">I", data[o : o + 4])[0] for o in range(0, len(data), frame)]


async def test_a_commit_of_many_chargers_writes_few_index_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 rows for 100 chargers in one commit: each index gets a few pages, not ~100."""
    monkeypatch.setattr(journal_module, "_WAL_CHECKPOINT_BYTES", 1 << 40)
    monkeypatch.setattr(journal_module, "_CHECKPOINT_MAX_AGE", 1e9)
    path = tmp_path / "journal.db"
    await new_journal(path)
    # A long history, so an index keyed by charger would have entries on many pages.
    chargers = [f"CP{n:03d}" for n in range(100)]
    bulk(path, INSERT_STATUS, status_rows(chargers * 100))
    bulk(path, INSERT_EVENT, [(c, "Authorize", "a") for c in chargers * 100])
    async with Journal(path) as journal:
        tids = [await start(journal, c) for c in chargers]
        release = threading.Event()
        # Hold the writer so that everything below lands in one batch.
        blocked = journal._writer.submit("block", lambda conn: release.wait(10))
        await asyncio.sleep(0.05)
        offset = wal_size(path)
        writes = []
        for charger, tid in zip(chargers, tids, strict=True):
            writes.append(journal.add_status(status(charger, 1, "Charging")))
            writes.append(journal.add_event(charger_id=charger, kind="Authorize", data={}, at="a"))
            sv = [{"value": "1", "measurand": "Energy.Active.Import.Register"}]
            writes.append(
                journal.add_meter_samples(
                    charger_id=charger,
                    connector_id=1,
                    transaction_id=tid,
                    samples=[MeterSample(timestamp="t", register_wh=1.0, sampled_value=sv)],
                )
            )
        commits = journal.statistics().commits
        release.set()
        await blocked
        await asyncio.gather(*writes)
        assert journal.statistics().commits - commits == 2  # the blocker's, then the batch's
        frames = wal_frames(path, offset)
    with sqlite3.connect(path) as conn:
        try:
            names = dict(conn.execute("SELECT pageno, name FROM dbstat"))
        except sqlite3.OperationalError:
            pytest.skip("this sqlite has no dbstat table")
    pages = Counter(names.get(page, "?") for page in set(frames))
    for index in ("status_history_bucket", "events_bucket", "meter_samples_bucket"):
        assert pages[index] <= 8, pages
    assert pages["latest_status"] == 0, pages
    assert len(set(frames)) < 80, pages
