"""Journal: transactions, samples, statuses, events, group commit, retention."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.store import Journal, JournalClosedError, MeterSample, StatusRecord
from edge.times import format_time
from tests.helpers import Clock

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def journal(tmp_path: Path, clock: Clock) -> AsyncIterator[Journal]:
    j = Journal(tmp_path / "journal.db", clock=clock)
    await j.open()
    yield j
    await j.close()


def start(
    j: Journal, charger: str = "CP1", connector: int = 1, meter: int = 1000, **kw: Any
) -> asyncio.Future[int]:
    return j.start_transaction(
        charger_id=charger,
        connector_id=connector,
        id_tag=kw.get("id_tag", "TAG1"),
        id_tag_status="Accepted",
        meter_start=meter,
        start_time=kw.get("start_time", "2026-01-01T10:00:00Z"),
        reservation_id=kw.get("reservation_id"),
        created_at=kw.get("created_at", format_time(T0)),
    )


def stop(j: Journal, transaction_id: int, meter: int, reason: str = "Local") -> Any:
    return j.stop_transaction(
        transaction_id=transaction_id,
        meter_stop=meter,
        stop_time="2026-01-01T11:00:00Z",
        reason=reason,
        stop_id_tag=None,
    )


def sample(n: float, *, register: bool = True) -> MeterSample:
    values = [{"value": str(n), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]
    return MeterSample(
        timestamp=f"2026-01-01T10:{int(n) % 60:02d}:00Z",
        register_wh=float(n) if register else None,
        sampled_value=values if register else [{"value": "7", "measurand": "SoC"}],
    )


def status(
    charger: str, connector: int, state: str, at: str = "2026-01-01T10:00:00Z"
) -> StatusRecord:
    return StatusRecord(
        charger_id=charger,
        connector_id=connector,
        status=state,
        error_code="NoError",
        info=None,
        vendor_id=None,
        vendor_error_code=None,
        timestamp=at,
        received_at=at,
    )


def wal_size(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def plant(path: Path, content: bytes) -> None:
    path.write_bytes(content)


def set_aside(path: Path) -> bytes:
    [aside] = path.parent.glob(f"{path.name}.corrupt-*[0-9Z]")
    return aside.read_bytes()


async def test_start_and_stop_record_a_transaction(journal: Journal) -> None:
    """A stopped transaction has its stop fields and energy = meterStop - meterStart."""
    tid = await start(journal, meter=1000, reservation_id=7)
    assert tid == 1
    active = journal.get_transaction(tid)
    assert active is not None and active.active and active.reservation_id == 7
    record = await stop(journal, tid, 13_500, reason="EVDisconnected")
    assert record is not None and not record.active
    assert (record.meter_stop, record.energy_wh, record.stop_reason) == (
        13_500,
        12_500.0,
        "EVDisconnected",
    )
    assert journal.get_transaction(tid) == record


async def test_stop_of_unknown_transaction_gives_none(journal: Journal) -> None:
    """Stopping an id the journal never issued resolves to None."""
    assert await stop(journal, 999, 10) is None
    assert journal.get_transaction(999) is None


async def test_second_stop_returns_the_first_unchanged(journal: Journal) -> None:
    """A retried StopTransaction does not overwrite the recorded stop."""
    tid = await start(journal, meter=0)
    first = await stop(journal, tid, 5000)
    again = await stop(journal, tid, 9999, reason="Other")
    assert again == first
    assert journal.get_transaction(tid) == first


async def test_transaction_ids_are_never_reused(tmp_path: Path, clock: Clock) -> None:
    """Ids keep increasing after rows are pruned or deleted and the journal reopened."""
    path = tmp_path / "journal.db"
    async with Journal(path, clock=clock) as j:
        ids = [await start(j) for _ in range(3)]
        assert ids == [1, 2, 3]
        for tid in ids:
            await stop(j, tid, 2000)
        clock.now = T0 + timedelta(days=10)
        assert (
            await j.prune(now=clock.now, meter_sample_days=1, transaction_days=1, event_days=1) == 3
        )
        assert j.list_transactions() == []
        assert await start(j) == 4
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM transactions")
    async with Journal(path, clock=clock) as j:
        assert await start(j) == 5


async def test_samples_round_trip_in_order(journal: Journal) -> None:
    """Samples come back oldest first, per transaction, as received."""
    a = await start(journal, "CP1")
    b = await start(journal, "CP2")
    writes = []
    for n in range(50):
        writes.append(
            journal.add_meter_samples(
                charger_id="CP1",
                connector_id=1,
                transaction_id=a,
                samples=[sample(n), sample(n + 0.5)],
            )
        )
        writes.append(
            journal.add_meter_samples(
                charger_id="CP2", connector_id=1, transaction_id=b, samples=[sample(1000 + n)]
            )
        )
    await asyncio.gather(*writes)
    got = journal.meter_samples(a)
    assert [s.register_wh for s in got] == [x / 2 for x in range(100)]
    assert got[0].sampled_value == sample(0).sampled_value
    assert len(journal.meter_samples(b)) == 50
    assert len(journal.meter_samples(a, limit=7)) == 7
    assert journal.last_register_wh(a) == 49.5
    assert journal.meter_samples(12345) == []


async def test_samples_across_many_buckets_and_after_stop(journal: Journal) -> None:
    """A long transaction's samples are all found, including ones stored after its stop."""
    a = await start(journal, "CP1")
    other = await start(journal, "CP2")
    for n in range(3000):
        tid = a if n % 3 == 0 else other
        journal.add_meter_samples(
            charger_id="CP", connector_id=1, transaction_id=tid, samples=[sample(n)]
        )
    await stop(journal, a, 99_999)
    await journal.add_meter_samples(
        charger_id="CP1", connector_id=1, transaction_id=a, samples=[sample(5000)]
    )
    got = journal.meter_samples(a, limit=10_000)
    assert [s.register_wh for s in got] == [float(n) for n in range(0, 3000, 3)] + [5000.0]
    assert journal.last_register_wh(a) == 5000.0
    assert journal.last_register_wh(other) == 2999.0
    assert journal.meter_samples(a, limit=2)[1].register_wh == 3.0


async def test_last_register_skips_samples_without_one(journal: Journal) -> None:
    """last_register_wh is the newest sample that has an energy register; None if none has."""
    tid = await start(journal)
    assert journal.last_register_wh(tid) is None
    await journal.add_meter_samples(
        charger_id="CP1",
        connector_id=1,
        transaction_id=tid,
        samples=[sample(10), sample(11, register=False)],
    )
    assert journal.last_register_wh(tid) == 10.0


async def test_connector_samples_outside_transactions(journal: Journal) -> None:
    """Samples sent without a transaction are found per connector, oldest first."""
    await journal.add_meter_samples(
        charger_id="CP1", connector_id=0, transaction_id=None, samples=[sample(1), sample(2)]
    )
    await journal.add_meter_samples(
        charger_id="CP1", connector_id=1, transaction_id=None, samples=[sample(3)]
    )
    assert [s.register_wh for s in journal.connector_samples("CP1", 0)] == [1.0, 2.0]
    assert [s.register_wh for s in journal.connector_samples("CP1", 0, limit=1)] == [2.0]
    assert journal.connector_samples("CP2", 0) == []


async def test_latest_statuses_pick_the_newest_per_connector(journal: Journal) -> None:
    """latest_statuses has one record per (charger, connector): the last one received."""
    for record in [
        status("CP1", 1, "Preparing"),
        status("CP1", 2, "Available"),
        status("CP1", 1, "Charging"),
        status("CP2", 0, "Unavailable"),
        status("CP1", 1, "Finishing"),
    ]:
        journal.add_status(record)
    await journal.add_status(status("CP2", 0, "Available"))
    latest = {(s.charger_id, s.connector_id): s.status for s in journal.latest_statuses()}
    assert latest == {("CP1", 1): "Finishing", ("CP1", 2): "Available", ("CP2", 0): "Available"}
    history = journal.status_history("CP1")
    assert [s.status for s in history] == ["Finishing", "Charging", "Available", "Preparing"]
    assert len(journal.status_history("CP1", limit=2)) == 2


async def test_events_filter_newest_first(journal: Journal) -> None:
    """events() filters by charger and kind and returns the newest first with data decoded."""
    journal.add_event(
        charger_id="CP1", kind="Boot", data={"vendor": "V"}, at="2026-01-01T10:00:00Z"
    )
    journal.add_event(
        charger_id=None, kind="OperatorCommand", data={"action": "Reset"}, at="2026-01-01T10:01:00Z"
    )
    await journal.add_event(
        charger_id="CP1", kind="Anomaly", data={"n": [1, 2]}, at="2026-01-01T10:02:00Z"
    )
    assert [e["kind"] for e in journal.events()] == ["Anomaly", "OperatorCommand", "Boot"]
    assert journal.events(charger_id="CP1", kind="Boot") == [
        {"charger_id": "CP1", "kind": "Boot", "data": {"vendor": "V"}, "at": "2026-01-01T10:00:00Z"}
    ]
    assert len(journal.events(limit=1)) == 1


async def test_list_transactions_filters_and_pages(journal: Journal) -> None:
    """list_transactions filters by charger and activity, newest first, paged by before_id."""
    ids = [await start(journal, f"CP{n % 2}") for n in range(6)]
    await stop(journal, ids[0], 2000)
    await stop(journal, ids[3], 2000)
    assert [t.transaction_id for t in journal.list_transactions()] == ids[::-1]
    assert [t.transaction_id for t in journal.list_transactions(charger_id="CP1")] == [6, 4, 2]
    assert [t.transaction_id for t in journal.list_transactions(active=False)] == [4, 1]
    assert [t.transaction_id for t in journal.list_transactions(charger_id="CP1", active=True)] == [
        6,
        2,
    ]
    assert [t.transaction_id for t in journal.list_transactions(limit=2, before_id=5)] == [4, 3]
    assert [t.transaction_id for t in journal.active_transactions()] == [2, 3, 5, 6]


async def test_group_commit_batches_concurrent_writes(journal: Journal) -> None:
    """200 concurrent writes are committed in far fewer transactions than writes."""
    tid = await start(journal)
    before = journal.statistics()
    writes = [
        journal.add_meter_samples(
            charger_id="CP1", connector_id=1, transaction_id=tid, samples=[sample(n)]
        )
        for n in range(200)
    ]
    await asyncio.gather(*writes)
    after = journal.statistics()
    assert after.operations - before.operations == 200
    assert after.commits - before.commits < 200 / 5
    assert after.largest_batch > 5
    assert after.queue_depth == 0
    assert len(journal.meter_samples(tid)) == 200


async def test_one_failing_operation_does_not_fail_its_batch(
    journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    """Only the bad operation of a batch fails; the others commit, and the failure is logged."""
    tid = await start(journal)
    before = journal.statistics()
    good = [
        journal.add_meter_samples(
            charger_id="CP1", connector_id=1, transaction_id=tid, samples=[sample(n)]
        )
        for n in range(20)
    ]
    bad = journal.add_event(charger_id=None, kind=None, data={}, at="x")  # type: ignore[arg-type]
    more = [journal.add_event(charger_id="CP1", kind="Ok", data={}, at="y") for _ in range(5)]
    with caplog.at_level(logging.ERROR):
        results = await asyncio.gather(*good, bad, *more, return_exceptions=True)
    assert isinstance(results[20], sqlite3.IntegrityError)
    assert all(r is None for r in results[:20] + results[21:])
    assert len(journal.meter_samples(tid)) == 20
    assert len(journal.events(kind="Ok")) == 5
    after = journal.statistics()
    assert after.failed_operations - before.failed_operations == 1
    assert after.commits - before.commits < 5
    assert "add_event failed" in caplog.text


async def test_prune_keeps_active_transactions_and_recent_rows(
    journal: Journal, clock: Clock
) -> None:
    """Retention deletes old closed transactions, samples, events, statuses; nothing active."""
    old_closed = await start(journal, "CP1")
    old_active = await start(journal, "CP2")
    for tid in (old_closed, old_active):
        await journal.add_meter_samples(
            charger_id="CP", connector_id=1, transaction_id=tid, samples=[sample(1), sample(2)]
        )
    await journal.add_meter_samples(
        charger_id="CP3", connector_id=0, transaction_id=None, samples=[sample(3)]
    )
    await stop(journal, old_closed, 3000)
    journal.add_status(status("CP1", 1, "Charging", format_time(T0)))
    journal.add_status(status("CP1", 1, "Finishing", format_time(T0)))
    await journal.add_event(charger_id="CP1", kind="Boot", data={}, at=format_time(T0))

    clock.now = T0 + timedelta(days=40)
    recent = await start(journal, "CP4", created_at=format_time(clock.now))
    await journal.add_meter_samples(
        charger_id="CP4", connector_id=1, transaction_id=recent, samples=[sample(4)]
    )
    await stop(journal, recent, 2000)
    await journal.add_event(charger_id="CP1", kind="Boot", data={}, at=format_time(clock.now))

    deleted = await journal.prune(
        now=clock.now, meter_sample_days=30, transaction_days=30, event_days=30
    )
    # 3 samples (old closed x2, outside a transaction x1) + 1 transaction + 1 event + 1 status
    assert deleted == 6
    assert journal.get_transaction(old_closed) is None
    assert journal.get_transaction(old_active) is not None
    assert len(journal.meter_samples(old_active)) == 2
    assert len(journal.meter_samples(recent)) == 1
    assert journal.connector_samples("CP3", 0) == []
    assert [s.status for s in journal.status_history("CP1")] == ["Finishing"]
    assert [s.status for s in journal.latest_statuses()] == ["Finishing"]
    assert len(journal.events()) == 1
    assert (
        await journal.prune(now=clock.now, meter_sample_days=30, transaction_days=30, event_days=30)
        == 0
    )


async def test_prune_runs_in_bounded_steps(journal: Journal, clock: Clock) -> None:
    """A large prune is split into several commits and still deletes everything old."""
    await asyncio.gather(
        *(
            journal.add_event(charger_id=None, kind="E", data={}, at=format_time(T0))
            for _ in range(2500)
        )
    )
    await journal.add_event(
        charger_id=None, kind="E", data={}, at=format_time(T0 + timedelta(days=5))
    )
    commits = journal.statistics().commits
    deleted = await journal.prune(
        now=T0 + timedelta(days=5), meter_sample_days=1, transaction_days=1, event_days=1
    )
    assert deleted == 2500
    assert journal.statistics().commits - commits >= 3
    assert len(journal.events()) == 1


async def test_close_drains_pending_writes(tmp_path: Path) -> None:
    """Writes queued but not awaited before close() are committed and their futures resolved."""
    path = tmp_path / "journal.db"
    j = Journal(path)
    await j.open()
    tid = await start(j)
    pending = [
        j.add_meter_samples(
            charger_id="CP1", connector_id=1, transaction_id=tid, samples=[sample(n)]
        )
        for n in range(300)
    ]
    await j.close()
    assert all(f.done() and f.exception() is None for f in pending)
    assert wal_size(path) == 0  # checkpointed into the main file
    async with Journal(path) as again:
        assert len(again.meter_samples(tid)) == 300


async def test_writes_after_close_fail_with_journal_closed(tmp_path: Path) -> None:
    """A write submitted to a closed journal fails its future; a read raises."""
    j = Journal(tmp_path / "journal.db")
    await j.open()
    await j.close()
    with pytest.raises(JournalClosedError):
        await j.add_event(charger_id=None, kind="E", data={}, at="x")
    with pytest.raises(JournalClosedError):
        j.active_transactions()


async def test_corrupt_journal_is_set_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A non-database file is set aside; the journal starts and ids do not restart at 1."""
    path = tmp_path / "journal.db"
    plant(path, b"this is not a database" * 100)
    plant(Path(f"{path}-wal"), b"garbage")
    with caplog.at_level(logging.ERROR):
        async with Journal(path) as j:
            assert await start(j) > 1_000_000_000
    assert set_aside(path).startswith(b"this is not a database")
    assert "unreadable" in caplog.text


async def test_synchronous_is_validated(tmp_path: Path) -> None:
    """An unknown synchronous level is refused up front."""
    with pytest.raises(ValueError):
        Journal(tmp_path / "j.db", synchronous="SOMETIMES")
    async with Journal(tmp_path / "j.db", synchronous="normal") as j:
        assert await start(j) == 1


async def test_unserialisable_data_fails_the_future(journal: Journal) -> None:
    """Data orjson cannot encode fails the returned future instead of raising at the call."""
    failed = journal.add_event(charger_id=None, kind="E", data={"x": object()}, at="x")
    with pytest.raises(TypeError):
        await failed
    bad = MeterSample(timestamp="t", register_wh=None, sampled_value=[{"v": {1, 2}}])
    with pytest.raises(TypeError):
        await journal.add_meter_samples(
            charger_id="CP1", connector_id=1, transaction_id=None, samples=[bad]
        )
    assert journal.events() == []


async def test_open_twice_is_refused(journal: Journal) -> None:
    """A journal is opened once; a second open() is a programming error."""
    with pytest.raises(RuntimeError):
        await journal.open()
