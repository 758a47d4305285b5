"""The cloud outbox in the journal: written with the record, left only when acknowledged."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from edge.store import Journal, MeterSample, OutboxEntry, OutboxMessage, StatusRecord

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def message(
    action: str, connector: int | None = 1, at: str = "2026-12-04T10:00:00Z"
) -> OutboxMessage:
    return OutboxMessage("CP1", action, orjson.dumps({"action": action}), at, connector)


async def test_rows_commit_with_their_records_in_order_and_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    async with Journal(path) as journal:
        tx = await journal.start_transaction(
            charger_id="CP1", connector_id=1, id_tag="T", id_tag_status="Accepted",
            meter_start=0, start_time="2026-12-04T10:00:00Z", reservation_id=None,
            created_at="2026-12-04T10:00:00Z", outbox=message("StartTransaction"),
        )  # fmt: skip
        await journal.add_meter_samples(
            charger_id="CP1", connector_id=1, transaction_id=tx,
            samples=[MeterSample(timestamp="2026-12-04T10:00:10Z", register_wh=10.0,
                                 sampled_value=[{"value": "10"}])],
            outbox=message("MeterValues"),
        )  # fmt: skip
        await journal.stop_transaction(
            transaction_id=tx, meter_stop=20, stop_time="2026-12-04T10:01:00Z", reason="Local",
            stop_id_tag=None, outbox=message("StopTransaction", None),
        )  # fmt: skip
        await journal.add_event(charger_id="CP1", kind="DataTransfer", data={}, at="x",
                                outbox=message("DataTransfer", None))  # fmt: skip
    async with Journal(path) as journal:
        rows = journal.outbox_pending("CP1")
        assert [r.action for r in rows] == [
            "StartTransaction", "MeterValues", "StopTransaction", "DataTransfer"
        ]  # fmt: skip
        assert [r.edge_tx for r in rows] == [tx, tx, tx, None]
        assert journal.outbox_summaries()["CP1"].pending == 4
        # The start's acknowledgement carries the cloud's id, in the same commit.
        await journal.outbox_ack((rows[0].seq,), (tx, 5000, "Accepted"))
        assert journal.cloud_transaction(tx) == (5000, "Accepted")
        assert journal.edge_transaction(5000) == tx
        # Whatever else the cloud names is no transaction of ours, never an error.
        for other in (5001, 2**63, -(2**63) - 1, "5000", True, None, 5000.0):
            assert journal.edge_transaction(other) is None, other
        assert journal.outbox_pending("CP1")[0].action == "MeterValues"


async def test_refused_rows_count_attempts_then_park_out_of_the_queue(tmp_path: Path) -> None:
    async with Journal(tmp_path / "journal.db") as journal:
        await journal.add_event(charger_id="CP1", kind="X", data={}, at="x",
                                outbox=message("DataTransfer", None))  # fmt: skip
        await journal.add_event(charger_id="CP1", kind="X", data={}, at="x",
                                outbox=message("DataTransfer", None))  # fmt: skip
        first, second = journal.outbox_pending("CP1")
        await journal.outbox_attempt(first.seq)
        assert journal.outbox_pending("CP1")[0].attempts == 1
        await journal.outbox_attempt(first.seq, "CALLERROR InternalError")
        assert [r.seq for r in journal.outbox_pending("CP1")] == [second.seq]
        (parked,) = journal.outbox_parked()
        assert parked.seq == first.seq and parked.parked == "CALLERROR InternalError"
        summary = journal.outbox_summaries()["CP1"]
        assert (summary.pending, summary.parked) == (2, 1)


async def test_rows_past_the_retention_are_dropped_and_counted(tmp_path: Path) -> None:
    async with Journal(tmp_path / "journal.db") as journal:
        old = (T0 - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
        await journal.add_event(charger_id="CP1", kind="X", data={}, at="x",
                                outbox=message("DataTransfer", None, old))  # fmt: skip
        await journal.add_event(charger_id="CP1", kind="X", data={}, at="x",
                                outbox=message("DataTransfer", None))  # fmt: skip
        assert await journal.outbox_expire(T0 - timedelta(days=30)) == 1
        assert len(journal.outbox_pending("CP1")) == 1


async def test_each_row_is_handed_over_once_committed_in_order(tmp_path: Path) -> None:
    """`on_outbox` gets every row as it commits (with its seq, as a read would give it),
    in the outbox's order, also when the writer's caller stopped waiting."""
    async with Journal(tmp_path / "journal.db") as journal:
        handed: list[OutboxEntry] = []
        journal.on_outbox = handed.append
        tx = await journal.start_transaction(
            charger_id="CP1", connector_id=1, id_tag="T", id_tag_status="Accepted",
            meter_start=0, start_time="2026-12-04T10:00:00Z", reservation_id=None,
            created_at="2026-12-04T10:00:00Z", outbox=message("StartTransaction"),
        )  # fmt: skip
        assert [e.action for e in handed] == ["StartTransaction"]
        samples = journal.add_meter_samples(
            charger_id="CP1", connector_id=1, transaction_id=tx,
            samples=[MeterSample(timestamp="2026-12-04T10:00:10Z", register_wh=10.0,
                                 sampled_value=[{"value": "10"}])],
            outbox=message("MeterValues"),
        )  # fmt: skip
        samples.cancel()  # the charger went away: the row is written and handed all the same
        status = StatusRecord(
            charger_id="CP1", connector_id=1, status="Charging", error_code="NoError",
            info=None, vendor_id=None, vendor_error_code=None, timestamp=None, received_at="x",
        )  # fmt: skip
        await journal.add_status(status, message("StatusNotification"))
        assert handed == journal.outbox_pending("CP1")
        assert [e.action for e in handed] == ["StartTransaction", "MeterValues",
                                              "StatusNotification"]  # fmt: skip
        assert [e.edge_tx for e in handed] == [tx, tx, None]


async def test_a_lazy_ack_leaves_with_the_next_commit_or_a_flush(tmp_path: Path) -> None:
    """A lazy ack makes no commit of its own: until its future is done the row is still on
    disk; the next write, or `flush`, commits it."""
    async with Journal(tmp_path / "journal.db", lazy_delay=30.0) as journal:
        for _ in range(3):
            await journal.add_event(charger_id="CP1", kind="X", data={}, at="x",
                                    outbox=message("DataTransfer", None))  # fmt: skip
        first, second, third = journal.outbox_pending("CP1")
        ack = journal.outbox_ack((first.seq,), lazy=True)
        await asyncio.sleep(0.05)
        assert not ack.done() and len(journal.outbox_pending("CP1")) == 3
        await journal.add_event(charger_id="CP1", kind="Y", data={}, at="x")
        assert ack.done()
        assert [r.seq for r in journal.outbox_pending("CP1")] == [second.seq, third.seq]
        ack = journal.outbox_ack((second.seq,), lazy=True)
        await journal.flush()
        assert ack.done()
        assert [r.seq for r in journal.outbox_pending("CP1")] == [third.seq]
