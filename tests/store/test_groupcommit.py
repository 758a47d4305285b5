"""The group-commit writer underneath the journal."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from edge.store._groupcommit import GroupCommitWriter


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[GroupCommitWriter]:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE t (v INTEGER NOT NULL)")
        return conn

    w = GroupCommitWriter(connect)
    await w.start()
    yield w
    await w.stop()


def insert(v: int) -> Callable[[sqlite3.Connection], int]:
    def run(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t (v) VALUES (?)", (v,))
        return v

    return run


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])


async def hold(writer: GroupCommitWriter) -> tuple[threading.Event, asyncio.Future[None]]:
    """Park the writer thread inside an operation so the next submissions form one batch."""
    entered, release = threading.Event(), threading.Event()

    def park(conn: sqlite3.Connection) -> None:
        entered.set()
        release.wait(5)

    parked = writer.submit("park", park)
    await asyncio.to_thread(entered.wait, 5)
    return release, parked


async def test_a_broken_transaction_is_rerun_op_by_op(writer: GroupCommitWriter) -> None:
    """If an op destroys the batch's transaction, the batch is re-run and only that op fails."""

    def breaks(conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")  # what sqlite itself does on e.g. SQLITE_FULL
        raise RuntimeError("disk full")

    release, parked = await hold(writer)
    futures = [writer.submit("insert", insert(n)) for n in range(10)]
    bad = writer.submit("breaks", breaks)
    futures += [writer.submit("insert", insert(n)) for n in range(10, 20)]
    release.set()
    await parked
    results = await asyncio.gather(*futures, bad, return_exceptions=True)
    assert results[:20] == list(range(20))
    assert isinstance(results[20], RuntimeError)
    assert await writer.submit("count", count) == 20
    stats = writer.statistics()
    assert stats.fallbacks == 1
    assert stats.largest_batch == 21


async def test_queued_ops_share_one_commit(writer: GroupCommitWriter) -> None:
    """Operations queued while the writer is busy are committed together."""
    commits = writer.statistics().commits
    release, parked = await hold(writer)
    futures = [writer.submit("insert", insert(n)) for n in range(100)]
    release.set()
    await asyncio.gather(parked, *futures)
    assert writer.statistics().commits - commits == 2  # the parked op's, then all 100


async def test_a_cancelled_caller_does_not_stop_the_write(writer: GroupCommitWriter) -> None:
    """Cancelling the future only stops the wait; the operation still commits."""
    release, parked = await hold(writer)
    writer.submit("insert", insert(1)).cancel()
    release.set()
    await parked
    assert await writer.submit("count", count) == 1


async def test_connect_failure_is_raised_by_start(tmp_path: Path) -> None:
    """An error opening the database surfaces from start()."""

    def connect() -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    w = GroupCommitWriter(connect)
    with pytest.raises(sqlite3.OperationalError):
        await w.start()
    await w.stop()
    assert not w.accepting


@contextlib.asynccontextmanager
async def lazy_writer(tmp_path: Path, lazy_delay: float) -> AsyncIterator[GroupCommitWriter]:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE t (v INTEGER NOT NULL)")
        return conn

    w = GroupCommitWriter(connect, lazy_delay=lazy_delay)
    await w.start()
    try:
        yield w
    finally:
        await w.stop()


async def test_a_lazy_op_rides_in_the_next_commit(tmp_path: Path) -> None:
    """A lazy op makes no commit of its own: the next op's commit carries it, and its
    future is done no later than that op's."""
    async with lazy_writer(tmp_path, 30.0) as writer:
        commits = writer.statistics().commits
        lazy = writer.submit("lazy", insert(1), lazy=True)
        await asyncio.sleep(0.1)
        assert not lazy.done()
        assert writer.statistics().commits == commits
        assert await writer.submit("insert", insert(2)) == 2
        assert lazy.done() and lazy.result() == 1
        assert writer.statistics().commits == commits + 1
        assert await writer.submit("count", count) == 2


async def test_a_lazy_op_alone_is_committed_within_the_delay(tmp_path: Path) -> None:
    async with lazy_writer(tmp_path, 0.2) as writer:
        loop = asyncio.get_running_loop()
        began = loop.time()
        assert await asyncio.wait_for(writer.submit("lazy", insert(1), lazy=True), 5) == 1
        assert loop.time() - began < 2.0  # 0.2 s at most, on a machine that keeps up
        assert await writer.submit("count", count) == 1


async def test_lazy_ops_queued_at_stop_are_committed(tmp_path: Path) -> None:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
        conn.execute("CREATE TABLE t (v INTEGER NOT NULL)")
        return conn

    w = GroupCommitWriter(connect, lazy_delay=60.0)
    await w.start()
    lazy = w.submit("lazy", insert(1), lazy=True)
    await w.stop()
    assert lazy.result() == 1
    with sqlite3.connect(tmp_path / "w.db") as conn:
        assert count(conn) == 1


async def test_committed_callbacks_run_after_the_commit_in_order_even_uncalled_for(
    writer: GroupCommitWriter,
) -> None:
    """`committed` runs on the loop once the op is on disk, in commit order, also for a
    caller that stopped waiting; never for an op that failed."""
    seen: list[int] = []

    def fails(conn: sqlite3.Connection) -> None:
        raise RuntimeError("bug")

    release, parked = await hold(writer)
    first = writer.submit("insert", insert(1), committed=lambda: seen.append(1))
    first.cancel()
    bad = writer.submit("fails", fails, committed=lambda: seen.append(-1))
    last = writer.submit("insert", insert(3), committed=lambda: seen.append(3))
    assert seen == []
    release.set()
    await parked
    assert await last == 3
    with pytest.raises(RuntimeError):
        await bad
    assert seen == [1, 3]
    assert await writer.submit("count", count) == 2
