"""The cloud link's pure rules: order and coalescing, id rewriting, back-off."""

from __future__ import annotations

import orjson

from edge.store import OutboxEntry
from edge.upstream.rules import backoff, needs_cloud_id, next_to_send, to_cloud


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
