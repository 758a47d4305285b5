"""The cloud link's pure rules: order and coalescing, id rewriting, back-off."""

from __future__ import annotations

import orjson

from edge.store import OutboxEntry
from edge.upstream.rules import Front, backoff, needs_cloud_id, next_to_send, to_cloud


def entry(seq: int, action: str, connector: int | None = 1, edge_tx: int | None = None,
          **payload: object) -> OutboxEntry:  # fmt: skip
    return OutboxEntry(seq, "CP1", action, orjson.dumps(payload), edge_tx, connector,
                       "2026-12-04T10:00:00Z", 0, None)  # fmt: skip


def test_the_front_goes_first_and_statuses_a_later_one_replaces_are_skipped() -> None:
    rows = [
        entry(1, "StatusNotification", status="Preparing"),
        entry(2, "StatusNotification", connector=2, status="Available"),
        entry(3, "StartTransaction", edge_tx=7),
        entry(4, "StatusNotification", status="Charging"),
    ]
    step = next_to_send(rows, offline_before="2026-12-04T10:00:01Z")
    assert step.entry is rows[1] and step.superseded == (1,)  # connector 1's later status
    assert next_to_send(rows).superseded == ()  # online: the cloud sees every status
    assert next_to_send(rows[2:]).entry is rows[2]
    assert next_to_send([]).entry is None


def test_transaction_messages_carry_the_clouds_id_and_nothing_else_changes() -> None:
    meter = entry(5, "MeterValues", edge_tx=7, connectorId=1, transactionId=7,
                  meterValue=[{"timestamp": "2026-12-04T10:00Z", "sampledValue": []}])  # fmt: skip
    sent = to_cloud(meter, 5000)
    assert (
        sent["transactionId"] == 5000
        and sent["meterValue"] == orjson.loads(meter.payload)["meterValue"]
    )
    # The same row rewritten twice gives the same bytes: a retry repeats itself exactly.
    assert orjson.dumps(to_cloud(meter, 5000)) == orjson.dumps(sent)
    start = entry(3, "StartTransaction", edge_tx=7, connectorId=1, idTag="T", meterStart=0)
    assert to_cloud(start, None) == orjson.loads(start.payload)
    assert needs_cloud_id(meter) and not needs_cloud_id(start)
    assert not needs_cloud_id(entry(6, "MeterValues", connectorId=1, meterValue=[]))


def test_backoff_grows_to_its_cap_with_full_jitter() -> None:
    assert backoff(0, rng=lambda: 1.0) == 1.0
    assert backoff(3, rng=lambda: 1.0) == 8.0
    assert backoff(30, rng=lambda: 1.0) == 60.0
    assert backoff(10, rng=lambda: 0.0) == 0.1  # never zero: no tight loop


def meter(seq: int) -> OutboxEntry:
    return entry(seq, "MeterValues", edge_tx=7, connectorId=1, transactionId=7, meterValue=[])


def test_a_front_that_keeps_up_takes_rows_as_they_commit_and_reads_nothing() -> None:
    front = Front(limit=50)
    assert front.needs_read
    front.read([meter(3)])
    assert not front.needs_read and front.complete
    front.handed(meter(5))  # committed after the read
    assert [e.seq for e in front.rows] == [3, 5]
    front.drop(3)
    front.drop(5)
    assert not front.rows and not front.needs_read  # caught up: nothing to read
    front.handed(meter(8))
    assert [e.seq for e in front.rows] == [8] and not front.needs_read


def test_a_row_read_and_then_handed_over_is_held_once() -> None:
    """A row committed just before a read is on disk when the read runs, and is handed
    over after it: sent once, not twice."""
    front = Front(limit=50)
    front.read([meter(3), meter(4)])
    front.handed(meter(4))
    assert [e.seq for e in front.rows] == [3, 4]
    front.drop(3)
    front.drop(4)
    front.handed(meter(4))  # late, and sent already: never again
    assert not front.rows


def test_rows_beyond_a_full_read_wait_on_disk_for_the_next_read() -> None:
    """After a read of `limit` rows, more may be on disk: a row handed over then is not
    taken (it would overtake them); the next read finds it in its place."""
    front = Front(limit=2)
    front.read([meter(1), meter(2)])
    front.handed(meter(9))
    assert [e.seq for e in front.rows] == [1, 2]
    front.drop(1, 2)
    assert front.needs_read
    front.read([meter(3), meter(9)])
    assert [e.seq for e in front.rows] == [3, 9]


def test_a_front_holds_at_most_its_limit_and_the_rest_waits_on_disk() -> None:
    """While the cloud is away rows keep coming: the front stops at `limit` rows (a long
    outage is not held in memory), and what it turned away is read in its place."""
    front = Front(limit=3)
    front.read([])
    for seq in range(1, 8):
        front.handed(meter(seq))
    assert [e.seq for e in front.rows] == [1, 2, 3]
    front.handed(meter(8))
    assert [e.seq for e in front.rows] == [1, 2, 3]
    front.drop(1)
    front.handed(meter(9))  # room again, but rows 4 to 8 wait on disk before it
    assert [e.seq for e in front.rows] == [2, 3]
    front.drop(2, 3)
    assert front.needs_read
    front.read([meter(4), meter(5), meter(6)])
    assert [e.seq for e in front.rows] == [4, 5, 6]


def test_a_forgotten_front_is_read_again_before_anything_is_handed_over() -> None:
    front = Front(limit=50)
    front.read([meter(1)])
    front.forget()  # retention dropped rows behind the link's back
    front.handed(meter(2))
    assert not front.rows and front.needs_read
    front.read([meter(2)])
    front.handed(meter(2))
    assert [e.seq for e in front.rows] == [2]


def test_a_refused_row_counts_its_attempt_in_the_front() -> None:
    front = Front(limit=50)
    front.read([meter(1), meter(2)])
    front.tried(1)
    assert [e.attempts for e in front.rows] == [1, 0]
