"""The edge's cloud upstream link (DESIGN §7) against a real OCPP 1.6J central system.

Each charger of the site appears to the cloud as itself: BootNotification first, then
what the charger sent, in its order, with its timestamps and values, through a durable
outbox that survives outages and kill -9; transactions under the cloud's own ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import time
import tomllib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.app import App
from edge.config import parse_config
from edge.sim.charger import RawCharger
from tests.conftest import TIME_SCALE, Api, api_client, ocpp_url, running
from tests.helpers import eventually, now_iso
from tests.integration.service import Service, config_toml, serve
from tests.upstream.cloud import Cloud, Received

# Names the contract leaves open: align them with the implementation here, in one place.
UPSTREAM_PATH = "/api/upstream"  # DESIGN §7, contract
# In GET /api/transactions/{id}: the idTagInfo status the cloud's StartTransaction.conf gave.
CLOUD_ID_TAG_STATUS = "cloudIdTagStatus"
# Kind of the audit event (GET /api/chargers/{id}/events) for a cloud that rejects a tag late.
CLOUD_REJECTION_EVENT = "CloudIdTagRejected"
# Per charger in GET /api/upstream: the messages the cloud refused for good (count or list).
PARKED = "parked"
# The most attempts a message the cloud keeps refusing may take before it is parked.
MAX_ATTEMPTS = 10

CONTRACT_FIELDS = {"id", "upstreamId", "connected", "pending", "oldestPending", "lastError"}
TX_ACTIONS = ("StartTransaction", "MeterValues", "StopTransaction")
TEST_TIMEOUT = 30 * TIME_SCALE
WAIT = 15 * TIME_SCALE  # for what the edge does on its own (reconnect, replay)
QUICK = 1.0 * TIME_SCALE  # the edge answers its chargers at once, cloud or no cloud
AUTHORIZE_TIMEOUT = 1.0
BOOT = {
    "chargePointVendor": "VendorX",
    "chargePointModel": "ModelY",
    "chargePointSerialNumber": "SN-0042",
    "chargeBoxSerialNumber": "BOX-0042",
    "firmwareVersion": "4.2.1",
}

Payload = dict[str, Any]
Message = tuple[str, Payload]


# The edge, configured with an [upstream] section pointing at the cloud.


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def edge_toml(
    data_dir: Path,
    cloud: Cloud,
    upstream: Mapping[str, object] | None = None,
    chargers: Mapping[str, Mapping[str, object]] | None = None,
) -> str:
    text = config_toml(data_dir, call_timeout=2.0 * TIME_SCALE)
    text += f"\n[upstream]\nurl = {toml_value(cloud.url)}\n"
    text += "".join(f"{k} = {toml_value(v)}\n" for k, v in (upstream or {}).items())
    for charger_id, table in (chargers or {}).items():
        text += f"\n[chargers.{charger_id}]\n"
        text += "".join(f"{k} = {toml_value(v)}\n" for k, v in table.items())
    return text


@contextlib.asynccontextmanager
async def edge(
    tmp_path: Path,
    cloud: Cloud,
    upstream: Mapping[str, object] | None = None,
    chargers: Mapping[str, Mapping[str, object]] | None = None,
) -> AsyncIterator[tuple[App, Api]]:
    """An in-process App whose upstream is `cloud`, with its API client."""
    text = edge_toml(tmp_path / "data", cloud, upstream, chargers)
    async with running(parse_config(tomllib.loads(text))) as (app, api):
        yield app, api


@contextlib.asynccontextmanager
async def edge_service(tmp_path: Path, cloud: Cloud, name: str) -> AsyncIterator[Service]:
    """The edge as a subprocess on tmp_path's data, for kill -9; logging to `name`.log."""
    config = tmp_path / "config.toml"
    if not config.exists():
        config.write_text(edge_toml(tmp_path / "data", cloud))
    async with serve(config, tmp_path / f"{name}.log") as svc:
        yield svc


async def accept_tag(api: Api, id_tag: str) -> None:
    status, body = await api.request("PUT", f"/api/id-tags/{id_tag}", {"status": "Accepted"})
    assert status in (200, 201), (status, body)


# What a charger sends, and what the cloud should get of it.


@dataclass
class Sent:
    """What one charger sent the edge, in order, each answered with a CALLRESULT."""

    cp: RawCharger
    messages: list[Message] = field(default_factory=list)
    answer_times: list[float] = field(default_factory=list)

    async def send(self, action: str, payload: Payload) -> Payload:
        began = time.monotonic()
        frame = await self.cp.call_raw(action, payload)
        self.answer_times.append(time.monotonic() - began)
        assert frame[0] == 3, f"the edge answered {action} with {frame}"
        self.messages.append((action, payload))
        result: Payload = frame[2]
        return result

    async def status(self, connector_id: int, status: str, error_code: str = "NoError") -> Payload:
        payload = {
            "connectorId": connector_id,
            "errorCode": error_code,
            "status": status,
            "timestamp": now_iso(),
        }
        await self.send("StatusNotification", payload)
        return payload

    def last_status(self, connector_id: int) -> Payload:
        return [
            p
            for a, p in self.messages
            if a == "StatusNotification" and p["connectorId"] == connector_id
        ][-1]


def sample(register: int) -> Payload:
    return {
        "timestamp": now_iso(),
        "sampledValue": [
            {"measurand": "Energy.Active.Import.Register", "unit": "Wh", "value": str(register)},
            {"measurand": "Current.Import", "unit": "A", "phase": "L1", "value": "16.0"},
        ],
    }


def register_of(payload: Payload) -> int | None:
    for value in payload.get("meterValue", [{}])[0].get("sampledValue", []):
        if value.get("measurand") == "Energy.Active.Import.Register":
            return int(value["value"])
    return None


async def charge(
    sent: Sent,
    id_tag: str = "TAG1",
    *,
    connector_id: int = 1,
    meter_start: int = 1000,
    samples: int = 3,
    step: int = 100,
    finish: bool = True,
) -> int:
    """Preparing, StartTransaction, Charging, `samples` MeterValues and (if `finish`)
    StopTransaction and Finishing; the transaction id the edge gave the charger."""
    await sent.status(connector_id, "Preparing")
    conf = await sent.send(
        "StartTransaction",
        {
            "connectorId": connector_id,
            "idTag": id_tag,
            "meterStart": meter_start,
            "timestamp": now_iso(),
        },
    )
    transaction_id: int = conf["transactionId"]
    await sent.status(connector_id, "Charging")
    register = meter_start
    for _ in range(samples):
        register += step
        await sent.send(
            "MeterValues",
            {
                "connectorId": connector_id,
                "transactionId": transaction_id,
                "meterValue": [sample(register)],
            },
        )
    if finish:
        register += step
        await sent.send(
            "StopTransaction",
            {
                "transactionId": transaction_id,
                "idTag": id_tag,
                "meterStop": register,
                "timestamp": now_iso(),
                "reason": "Local",
                "transactionData": [sample(register)],
            },
        )
        await sent.status(connector_id, "Finishing")
    return transaction_id


async def booted(sent: Sent, connectors: tuple[int, ...] = (0, 1)) -> None:
    """BootNotification (accepted by the edge) and Available for `connectors`."""
    assert (await sent.send("BootNotification", BOOT))["status"] == "Accepted"
    for connector_id in connectors:
        await sent.status(connector_id, "Available")


def as_cloud_sees_it(messages: list[Message], edge_id: int, cloud_id: int) -> list[Message]:
    """The charger's `messages`, the edge's transaction id replaced by the cloud's."""
    out: list[Message] = []
    for action, payload in messages:
        if action in ("MeterValues", "StopTransaction") and payload.get("transactionId") == edge_id:
            payload = {**payload, "transactionId": cloud_id}
        out.append((action, payload))
    return out


def transaction_messages(messages: list[Message]) -> list[Message]:
    return [(a, p) for a, p in messages if a in TX_ACTIONS]


def received_messages(calls: list[Received], *actions: str) -> list[Message]:
    return [(c.action, c.payload) for c in calls if not actions or c.action in actions]


def cloud_transaction_id(cloud: Cloud, charger_id: str) -> int:
    """The id of the cloud's answer to the (last answered) StartTransaction."""
    answered = [c for c in cloud.received(charger_id, "StartTransaction") if c.accepted]
    assert answered, f"the cloud answered no StartTransaction of {charger_id}"
    assert answered[-1].answer is not None
    transaction_id: int = answered[-1].answer[2]["transactionId"]
    return transaction_id


def accepted(payload: Payload) -> Callable[[Received], bool]:
    """A CALL with this very payload that the cloud answered with a CALLRESULT."""
    return lambda call: call.payload == payload and call.accepted


def assert_in_order(got: list[Message], expected: list[Message]) -> None:
    """`expected` occurs in `got` in this order (other messages may come between)."""
    position = 0
    for message in got:
        if position < len(expected) and message == expected[position]:
            position += 1
    assert position == len(expected), (
        f"not in the charger's order: missing from {expected[position]} on;\n"
        f"the cloud got {[a for a, _ in got]}"
    )


def assert_exactly_once(
    got: list[Message], expected: list[Message], *, one_repeat_allowed: bool = False
) -> None:
    """`got` is `expected`; or, with `one_repeat_allowed`, `expected` with one message sent
    twice in a row (the one in flight at a kill -9)."""
    if got == expected:
        return
    if one_repeat_allowed and len(got) == len(expected) + 1:
        for i in range(len(got) - 1):
            if got[i] == got[i + 1] and got[:i] + got[i + 1 :] == expected:
                return
    raise AssertionError(
        f"the cloud got the transaction messages {[a for a, _ in got]} "
        f"instead of {[a for a, _ in expected]} (exactly once, in order, with the cloud's id):"
        f"\n  got      {got}\n  expected {expected}"
    )


async def synced(cloud: Cloud, charger_id: str, payload: Payload) -> None:
    """Wait until the cloud has accepted this message of the charger's."""
    action = "StatusNotification" if "status" in payload else "BootNotification"
    await cloud.wait_for(charger_id, action, accepted(payload), timeout=WAIT)


async def upstream_entry(api: Api, charger_id: str) -> Payload:
    data = await api.get(UPSTREAM_PATH)
    entries = {entry["id"]: entry for entry in data["chargers"]}
    assert charger_id in entries, f"{charger_id} not in {UPSTREAM_PATH}: {data}"
    entry: Payload = entries[charger_id]
    return entry


async def upstream_entry_when(
    api: Api, charger_id: str, condition: Callable[[Payload], bool], timeout: float = WAIT
) -> Payload:
    last: list[Payload] = []

    async def probe() -> Payload:
        entry = await upstream_entry(api, charger_id)
        last[:] = [entry]
        return entry if condition(entry) else {}

    try:
        return await eventually(probe, timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"{UPSTREAM_PATH} for {charger_id}: {last}") from None


def parse_utc(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text[:-1] + "+00:00")


def parked_count(entry: Payload) -> int:
    value = entry.get(PARKED, 0)
    return len(value) if isinstance(value, list) else int(value)


# Steady state.


async def test_steady_sync_boot_first_then_the_charger_order_under_the_cloud_id(
    tmp_path: Path, cloud: Cloud
) -> None:
    """Boot first with the charger's own identity, then everything in the charger's order,
    its values untouched, MeterValues/StopTransaction under the cloud's transaction id."""
    async with asyncio.timeout(TEST_TIMEOUT), edge(tmp_path, cloud) as (app, api):
        await accept_tag(api, "TAG1")
        async with RawCharger.connect(ocpp_url(app, "SYNC1")) as cp:
            sent = Sent(cp)
            await booted(sent)
            edge_id = await charge(sent)
            await synced(cloud, "SYNC1", sent.last_status(1))

            calls = cloud.received("SYNC1")
            assert calls[0].action == "BootNotification", cloud.actions("SYNC1")
            assert calls[0].payload == BOOT
            assert cloud.actions("SYNC1").count("BootNotification") == 1
            cloud_id = cloud_transaction_id(cloud, "SYNC1")
            assert cloud_id != edge_id, "the cloud's ids must differ from the edge's here"
            expected = as_cloud_sees_it(sent.messages[1:], edge_id, cloud_id)
            assert_exactly_once(
                received_messages(calls, *TX_ACTIONS), transaction_messages(expected)
            )
            assert_in_order(
                received_messages(calls[1:], "StatusNotification", *TX_ACTIONS), expected
            )
            assert all(c.accepted for c in calls), [(c.action, c.answer) for c in calls]
            # The charger only ever saw the edge's id, which the edge's API knows.
            transaction = await api.get(f"/api/transactions/{edge_id}")
            assert transaction["chargerId"] == "SYNC1" and transaction["active"] is False

            data = await api.get(UPSTREAM_PATH)
            assert data["url"] == cloud.url
            entry = await upstream_entry_when(
                api, "SYNC1", lambda e: e["connected"] is True and e["pending"] == 0
            )
            assert set(entry) >= CONTRACT_FIELDS, entry
            assert entry["upstreamId"] == "SYNC1"
            assert entry["oldestPending"] is None
        connection = cloud.connections[calls[0].connection - 1]
        assert connection.subprotocol == "ocpp1.6"
        assert connection.path == "/ocpp/SYNC1"


async def test_heartbeat_at_the_interval_the_cloud_gives(tmp_path: Path, cloud: Cloud) -> None:
    cloud.heartbeat_interval = 1
    async with (
        asyncio.timeout(TEST_TIMEOUT),
        edge(tmp_path, cloud) as (app, _),
        RawCharger.connect(ocpp_url(app, "BEAT1")) as cp,
    ):
        await booted(Sent(cp), connectors=())
        beats = await cloud.wait_for("BEAT1", "Heartbeat", count=3, timeout=WAIT)
        gaps = [b.at - a.at for a, b in itertools.pairwise(beats)]
        assert all(0.5 <= gap <= 3.0 * TIME_SCALE for gap in gaps), gaps


async def test_a_charger_reboot_boots_it_again_toward_the_cloud(
    tmp_path: Path, cloud: Cloud
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT), edge(tmp_path, cloud) as (app, _):
        async with RawCharger.connect(ocpp_url(app, "REBOOT1")) as cp:
            sent = Sent(cp)
            await booted(sent)
            await synced(cloud, "REBOOT1", sent.last_status(1))
        new_boot = {**BOOT, "firmwareVersion": "4.3.0"}
        async with RawCharger.connect(ocpp_url(app, "REBOOT1")) as cp:
            sent = Sent(cp)
            assert (await sent.send("BootNotification", new_boot))["status"] == "Accepted"
            after = await sent.status(1, "Available")
            await synced(cloud, "REBOOT1", after)
        actions = cloud.actions("REBOOT1")
        boots = cloud.received("REBOOT1", "BootNotification")
        assert [b.payload for b in boots] == [BOOT, new_boot], actions
        last = cloud.received("REBOOT1")
        assert last.index(boots[1]) < next(i for i, c in enumerate(last) if c.payload == after), (
            actions
        )


@pytest.mark.parametrize("verdict", ["Pending", "Rejected"])
async def test_nothing_but_boot_until_the_cloud_accepts_it(
    tmp_path: Path, cloud: Cloud, verdict: str
) -> None:
    """The edge retries the Boot at the cloud's interval, sends nothing else meanwhile,
    keeps the outbox, and delivers it once the Boot is Accepted."""
    cloud.boot_status, cloud.boot_interval = verdict, 1
    async with asyncio.timeout(TEST_TIMEOUT), edge(tmp_path, cloud) as (app, api):
        await accept_tag(api, "TAG1")
        async with RawCharger.connect(ocpp_url(app, "PEND1")) as cp:
            sent = Sent(cp)
            await booted(sent)
            edge_id = await charge(sent, samples=2, finish=False)
            assert max(sent.answer_times) < QUICK, sent.answer_times
            boots = await cloud.wait_for("PEND1", "BootNotification", count=2, timeout=WAIT)
            assert set(cloud.actions("PEND1")) == {"BootNotification"}
            assert all(b.payload == BOOT for b in boots)
            assert boots[1].at - boots[0].at >= 0.8, "retried before the cloud's interval"
            entry = await upstream_entry(api, "PEND1")
            assert entry["pending"] >= 3, entry  # StartTransaction and 2 MeterValues at least
            assert entry["oldestPending"] is not None, entry

            cloud.boot_status = "Accepted"
            last = transaction_messages(sent.messages)[-1][1]
            await cloud.wait_for(
                "PEND1",
                "MeterValues",
                lambda c: c.accepted and c.payload["meterValue"] == last["meterValue"],
                timeout=WAIT,
            )
            calls = cloud.received("PEND1")
            first_other = next(i for i, c in enumerate(calls) if c.action != "BootNotification")
            assert first_other > 0
            boot_before = calls[first_other - 1]
            assert boot_before.answer is not None
            assert boot_before.answer[2]["status"] == "Accepted", "sent before an Accepted Boot"
            assert not any(c.action == "BootNotification" for c in calls[first_other:])
            expected = as_cloud_sees_it(
                sent.messages[1:], edge_id, cloud_transaction_id(cloud, "PEND1")
            )
            assert_exactly_once(
                received_messages(calls, *TX_ACTIONS), transaction_messages(expected)
            )
            await upstream_entry_when(api, "PEND1", lambda e: e["pending"] == 0)


# Outages.


async def test_outage_a_whole_transaction_arrives_once_in_order_after_it(
    tmp_path: Path, cloud: Cloud
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT), edge(tmp_path, cloud) as (app, api):
        await accept_tag(api, "TAG1")
        async with RawCharger.connect(ocpp_url(app, "OUT1")) as cp:
            sent = Sent(cp)
            await booted(sent)
            await synced(cloud, "OUT1", sent.last_status(1))
            before = len(sent.messages)
            await cloud.stop(abrupt=True)
            outage = datetime.now(UTC)

            edge_id = await charge(sent, samples=3)
            assert max(sent.answer_times[before:]) < QUICK, sent.answer_times
            # StartTransaction, 3 MeterValues, StopTransaction at least (statuses may coalesce).
            entry = await upstream_entry_when(api, "OUT1", lambda e: e["pending"] >= 5)
            assert entry["connected"] is False, entry
            oldest = parse_utc(entry["oldestPending"])
            assert outage - timedelta(seconds=2) <= oldest <= datetime.now(UTC), entry

            await cloud.start()
            await cloud.wait_for("OUT1", "StopTransaction", lambda c: c.accepted, timeout=WAIT)
            await synced(cloud, "OUT1", sent.last_status(1))
            calls = cloud.received("OUT1")
            cloud_id = cloud_transaction_id(cloud, "OUT1")
            expected = as_cloud_sees_it(sent.messages, edge_id, cloud_id)
            assert_exactly_once(
                received_messages(calls, *TX_ACTIONS), transaction_messages(expected)
            )
            # A plain reconnect: no second BootNotification (boot_on_reconnect is false).
            assert cloud.actions("OUT1").count("BootNotification") == 1, cloud.actions("OUT1")
            await upstream_entry_when(
                api,
                "OUT1",
                lambda e: (
                    e["connected"] is True and e["pending"] == 0 and e["oldestPending"] is None
                ),
            )


@pytest.mark.parametrize("boot_on_reconnect", [None, True], ids=["default", "true"])
async def test_a_plain_reconnect_boots_only_when_configured(
    tmp_path: Path, cloud: Cloud, boot_on_reconnect: bool | None
) -> None:
    """After a reconnect: Boot again only with boot_on_reconnect, then the current
    StatusNotification of every connector."""
    upstream = {} if boot_on_reconnect is None else {"boot_on_reconnect": boot_on_reconnect}
    async with (
        asyncio.timeout(TEST_TIMEOUT),
        edge(tmp_path, cloud, upstream) as (app, _),
        RawCharger.connect(ocpp_url(app, "RECO1")) as cp,
    ):
        sent = Sent(cp)
        await booted(sent)
        await synced(cloud, "RECO1", sent.last_status(1))
        first = cloud.received("RECO1")[0].connection
        await cloud.disconnect("RECO1")

        def again(call: Received) -> bool:
            return call.connection > first

        await cloud.wait_for("RECO1", "StatusNotification", again, count=2, timeout=WAIT)
        later = [c for c in cloud.received("RECO1") if again(c)]
        if boot_on_reconnect:
            assert later[0].action == "BootNotification", [c.action for c in later]
            assert later[0].payload == BOOT
        else:
            assert "BootNotification" not in [c.action for c in later]
        statuses = {
            c.payload["connectorId"]: c.payload["status"]
            for c in later
            if c.action == "StatusNotification"
        }
        assert statuses == {0: "Available", 1: "Available"}


async def test_statuses_may_coalesce_offline_but_the_last_arrives_after_the_transaction(
    tmp_path: Path, cloud: Cloud
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT), edge(tmp_path, cloud) as (app, api):
        await accept_tag(api, "TAG1")
        async with RawCharger.connect(ocpp_url(app, "COAL1")) as cp:
            sent = Sent(cp)
            await booted(sent, connectors=(0, 1, 2))
            await synced(cloud, "COAL1", sent.last_status(2))
            await cloud.stop()
            await sent.status(2, "Unavailable")
            edge_id = await charge(sent, samples=2)
            await sent.status(1, "Available")
            await sent.status(2, "Faulted", "GroundFailure")
            await sent.status(2, "Available")
            await sent.status(2, "Unavailable")
            await cloud.start()

            final = {n: sent.last_status(n) for n in (1, 2)}
            for payload in final.values():
                await synced(cloud, "COAL1", payload)
            calls = cloud.received("COAL1")
            cloud_id = cloud_transaction_id(cloud, "COAL1")
            expected = as_cloud_sees_it(sent.messages, edge_id, cloud_id)
            assert_exactly_once(
                received_messages(calls, *TX_ACTIONS), transaction_messages(expected)
            )
            for connector_id, payload in final.items():
                mine = [
                    c
                    for c in calls
                    if c.action == "StatusNotification" and c.payload["connectorId"] == connector_id
                ]
                assert mine[-1].payload == payload, (connector_id, [c.payload for c in mine])
            stop = calls.index(cloud.received("COAL1", "StopTransaction")[-1])
            assert calls.index([c for c in calls if c.payload == final[1]][-1]) > stop, (
                "connector 1's last status came before its transaction's end"
            )


@pytest.mark.slow
async def test_kill_during_the_outage_everything_acknowledged_reaches_the_cloud(
    tmp_path: Path, cloud: Cloud
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        async with edge_service(tmp_path, cloud, "first") as svc, api_client(svc.web_port) as api:
            await accept_tag(api, "TAG1")
            async with RawCharger.connect(svc.url("KILL1")) as cp:
                sent = Sent(cp)
                await booted(sent)
                await synced(cloud, "KILL1", sent.last_status(1))
                await asyncio.sleep(2.0)  # state documents are flushed about once a second
                await cloud.stop()
                edge_id = await charge(sent, samples=3)
                assert (await svc.signal(signal.SIGKILL)) == -signal.SIGKILL

        restarted = len(cloud.connections)
        async with edge_service(tmp_path, cloud, "second"):
            await asyncio.sleep(0.5)
            await cloud.start()
            await cloud.wait_for("KILL1", "StopTransaction", lambda c: c.accepted, timeout=WAIT)
            await synced(cloud, "KILL1", sent.last_status(1))

        calls = cloud.received("KILL1")
        later = [c for c in calls if c.connection > restarted]
        assert later[0].action == "BootNotification", [c.action for c in later]
        assert later[0].payload == BOOT
        expected = as_cloud_sees_it(sent.messages, edge_id, cloud_transaction_id(cloud, "KILL1"))
        assert_exactly_once(received_messages(calls, *TX_ACTIONS), transaction_messages(expected))


@pytest.mark.slow
async def test_kill_during_the_replay_loses_nothing_and_repeats_at_most_the_one_in_flight(
    tmp_path: Path, cloud: Cloud
) -> None:
    samples = 20
    async with asyncio.timeout(TEST_TIMEOUT):
        async with edge_service(tmp_path, cloud, "first") as svc, api_client(svc.web_port) as api:
            await accept_tag(api, "TAG1")
            async with RawCharger.connect(svc.url("KILL2")) as cp:
                sent = Sent(cp)
                await booted(sent)
                await synced(cloud, "KILL2", sent.last_status(1))
                await asyncio.sleep(2.0)  # state documents are flushed about once a second
                await cloud.stop()
                edge_id = await charge(sent, samples=samples)
                cloud.delays["*"] = 0.1  # a slow cloud: the replay takes seconds
                await cloud.start()
                await cloud.wait_for("KILL2", "MeterValues", count=5, timeout=WAIT)
                assert (await svc.signal(signal.SIGKILL)) == -signal.SIGKILL
                assert not cloud.received("KILL2", "StopTransaction"), "killed too late"

        restarted = len(cloud.connections)
        async with edge_service(tmp_path, cloud, "second"):
            await cloud.wait_for("KILL2", "StopTransaction", lambda c: c.accepted, timeout=WAIT)
            await synced(cloud, "KILL2", sent.last_status(1))

        calls = cloud.received("KILL2")
        later = [c for c in calls if c.connection > restarted]
        assert later[0].action == "BootNotification", [c.action for c in later]
        expected = as_cloud_sees_it(sent.messages, edge_id, cloud_transaction_id(cloud, "KILL2"))
        got = received_messages(calls, *TX_ACTIONS)
        assert_exactly_once(got, transaction_messages(expected), one_repeat_allowed=True)
        transaction_calls = [c for c in calls if c.action in TX_ACTIONS]
        for one, two in itertools.pairwise(transaction_calls):
            if one.payload == two.payload:
                assert one.raw_payload == two.raw_payload, "a repeat must be byte for byte"


def meter_values(transaction_id: int, register: int) -> Payload:
    return {"connectorId": 1, "transactionId": transaction_id, "meterValue": [sample(register)]}


async def test_the_cloud_gets_a_message_only_once_the_ack_before_it_is_on_disk(
    tmp_path: Path, cloud: Cloud
) -> None:
    """The ack of a message the cloud took rides in the journal's next commit instead of
    making one of its own; yet whenever the cloud receives a charger's message, every
    message of the charger it took before is gone from the outbox on disk, so a kill -9
    could repeat only the last one. In bursts (the next message waits in memory while the
    cloud answers) and spaced out (the ack waits for a commit to ride in) alike; and the
    last ack reaches the disk with no message after it to carry it."""
    async with asyncio.timeout(TEST_TIMEOUT), edge(tmp_path, cloud) as (app, api):
        await accept_tag(api, "TAG1")
        journal = app.services.journal
        still_on_disk: list[int | None] = []

        def probe(call: Received) -> None:
            if call.charge_point != "ACK1" or call.action != "MeterValues":
                return
            taken = {
                register_of(c.payload) for c in cloud.received("ACK1", "MeterValues") if c.accepted
            }
            on_disk = {
                register_of(json.loads(e.payload))
                for e in journal.outbox_pending("ACK1", 1000)
                if e.action == "MeterValues"
            }
            still_on_disk.extend(taken & on_disk)

        cloud.on_call = probe
        async with RawCharger.connect(ocpp_url(app, "ACK1")) as cp:
            sent = Sent(cp)
            await booted(sent)
            edge_id = await charge(sent, samples=0, finish=False)
            cloud.delays["MeterValues"] = 0.05
            for register in range(1010, 1090, 10):
                await sent.send("MeterValues", meter_values(edge_id, register))
            await cloud.wait_for(
                "ACK1",
                "MeterValues",
                lambda c: c.accepted and register_of(c.payload) == 1080,
                timeout=WAIT,
            )
            cloud.delays.clear()
            for register in range(1090, 1140, 10):
                await sent.send("MeterValues", meter_values(edge_id, register))
                await asyncio.sleep(0.1)
            await cloud.wait_for(
                "ACK1",
                "MeterValues",
                lambda c: c.accepted and register_of(c.payload) == 1130,
                timeout=WAIT,
            )
            await upstream_entry_when(api, "ACK1", lambda e: e["pending"] == 0)
            assert still_on_disk == [], "sent before the ack of the one before was on disk"
            expected = as_cloud_sees_it(sent.messages, edge_id, cloud_transaction_id(cloud, "ACK1"))
            assert_exactly_once(
                received_messages(cloud.received("ACK1"), *TX_ACTIONS),
                transaction_messages(expected),
            )


@pytest.mark.slow
async def test_kill_while_online_loses_nothing_and_repeats_at_most_the_last_message_taken(
    tmp_path: Path, cloud: Cloud
) -> None:
    """kill -9 while a charger's messages go to the cloud as they come (their acks riding
    in later commits): after the restart every message the charger got an answer for
    reaches the cloud once, in order; only the one the cloud took last may come again,
    byte for byte, right after itself. (The message the charger was waiting on at the
    kill may be on disk or not; if so it goes too.)"""
    unanswered: list[Payload] = []
    async with asyncio.timeout(TEST_TIMEOUT):
        async with edge_service(tmp_path, cloud, "first") as svc, api_client(svc.web_port) as api:
            await accept_tag(api, "TAG1")
            async with RawCharger.connect(svc.url("KILL3")) as cp:
                sent = Sent(cp)
                await booted(sent)
                await synced(cloud, "KILL3", sent.last_status(1))
                await asyncio.sleep(2.0)  # state documents are flushed about once a second
                edge_id = await charge(sent, samples=0, finish=False)

                async def stream() -> None:
                    for register in itertools.count(1010, 10):
                        unanswered[:] = [meter_values(edge_id, register)]
                        await sent.send("MeterValues", unanswered[0])
                        unanswered.clear()
                        await asyncio.sleep(0.02)

                streaming = asyncio.create_task(stream())
                await cloud.wait_for("KILL3", "MeterValues", count=15, timeout=WAIT)
                assert (await svc.signal(signal.SIGKILL)) == -signal.SIGKILL
                streaming.cancel()
                with contextlib.suppress(BaseException):
                    await streaming

        async with (
            edge_service(tmp_path, cloud, "second") as svc,
            api_client(svc.web_port) as api,
        ):
            await upstream_entry_when(api, "KILL3", lambda e: e["pending"] == 0)

        cloud_id = cloud_transaction_id(cloud, "KILL3")
        expected = transaction_messages(as_cloud_sees_it(sent.messages, edge_id, cloud_id))
        got = received_messages(cloud.received("KILL3"), *TX_ACTIONS)
        late = as_cloud_sees_it([("MeterValues", p) for p in unanswered], edge_id, cloud_id)
        copies = 0
        while late and got and got[-1] == late[0] and copies < 2:
            got.pop()
            copies += 1
        assert_exactly_once(got, expected, one_repeat_allowed=copies < 2)
        calls = [c for c in cloud.received("KILL3") if c.action in TX_ACTIONS]
        for one, two in itertools.pairwise(calls):
            if one.payload == two.payload:
                assert one.raw_payload == two.raw_payload, "a repeat must be byte for byte"


# Retries and refusals.


async def test_a_retry_repeats_the_payload_byte_for_byte(tmp_path: Path, cloud: Cloud) -> None:
    cloud.silent.add("StartTransaction")
    async with asyncio.timeout(TEST_TIMEOUT), edge(tmp_path, cloud) as (app, api):
        await accept_tag(api, "TAG1")
        async with RawCharger.connect(ocpp_url(app, "RETRY1")) as cp:
            sent = Sent(cp)
            await booted(sent)
            edge_id = await charge(sent, samples=1, finish=False)
            (first,) = await cloud.wait_for("RETRY1", "StartTransaction", timeout=WAIT)
            await asyncio.sleep(0.5)
            cloud.silent.clear()
            await cloud.disconnect("RETRY1")  # as a black hole ends: the link breaks
            await cloud.wait_for("RETRY1", "MeterValues", lambda c: c.accepted, timeout=WAIT)
            starts = cloud.received("RETRY1", "StartTransaction")
            assert len(starts) >= 2
            assert all(s.raw_payload == first.raw_payload for s in starts), [s.raw for s in starts]
            cloud_id = cloud_transaction_id(cloud, "RETRY1")
            expected = as_cloud_sees_it(sent.messages, edge_id, cloud_id)
            got = received_messages(cloud.received("RETRY1", "MeterValues"))
            assert got == transaction_messages(expected)[1:]
            assert [t.charge_point for t in cloud.transactions.values()] == ["RETRY1"]


async def test_a_cloud_that_rejects_the_tag_afterwards_is_recorded(
    tmp_path: Path, cloud: Cloud
) -> None:
    cloud.id_tag_status["LATE1"] = "Blocked"
    async with asyncio.timeout(TEST_TIMEOUT), edge(tmp_path, cloud) as (app, api):
        await accept_tag(api, "LATE1")
        async with RawCharger.connect(ocpp_url(app, "REJ1")) as cp:
            sent = Sent(cp)
            await booted(sent)
            edge_id = await charge(sent, "LATE1", samples=1, finish=False)
            await cloud.wait_for("REJ1", "StartTransaction", lambda c: c.accepted, timeout=WAIT)

            async def flagged() -> Payload:
                transaction: Payload = await api.get(f"/api/transactions/{edge_id}")
                return transaction if transaction.get(CLOUD_ID_TAG_STATUS) else {}

            transaction = await eventually(flagged, timeout=WAIT)
            assert transaction[CLOUD_ID_TAG_STATUS] == "Blocked", transaction
            assert transaction["idTagStatus"] == "Accepted"  # what the charger was told

            async def audited() -> list[Payload]:
                events: list[Payload] = await api.get("/api/chargers/REJ1/events")
                return [e for e in events if e.get("kind") == CLOUD_REJECTION_EVENT]

            (event,) = await eventually(audited, timeout=WAIT)
            assert "Blocked" in json.dumps(event), event


async def test_a_message_the_cloud_keeps_refusing_is_parked_and_the_queue_goes_on(
    tmp_path: Path, cloud: Cloud
) -> None:
    cloud.fail(
        "MeterValues", "InternalError", "cannot store", when=lambda p: register_of(p) == 1200
    )
    async with asyncio.timeout(TEST_TIMEOUT), edge(tmp_path, cloud) as (app, api):
        await accept_tag(api, "TAG1")
        async with RawCharger.connect(ocpp_url(app, "PARK1")) as cp:
            sent = Sent(cp)
            await booted(sent)
            edge_id = await charge(sent, samples=3)  # registers 1100, 1200, 1300; stop 1400
            await cloud.wait_for(
                "PARK1", "StopTransaction", lambda c: c.accepted, timeout=20 * TIME_SCALE
            )
            await synced(cloud, "PARK1", sent.last_status(1))
            entry = await upstream_entry_when(api, "PARK1", lambda e: parked_count(e) >= 1)
            assert parked_count(entry) == 1, entry

            refused = [
                c for c in cloud.received("PARK1", "MeterValues") if register_of(c.payload) == 1200
            ]
            assert 2 <= len(refused) <= MAX_ATTEMPTS, len(refused)  # retried, boundedly
            await asyncio.sleep(1.5)
            assert len(
                [
                    c
                    for c in cloud.received("PARK1", "MeterValues")
                    if register_of(c.payload) == 1200
                ]
            ) == len(refused), "still retrying after parking"
            cloud_id = cloud_transaction_id(cloud, "PARK1")
            expected = [
                m
                for m in transaction_messages(as_cloud_sees_it(sent.messages, edge_id, cloud_id))
                if register_of(m[1]) != 1200
            ]
            got = [
                (c.action, c.payload) for c in cloud.received("PARK1", *TX_ACTIONS) if c.accepted
            ]
            assert got == expected


# Cloud → charger.


async def test_cloud_commands_reach_the_charger_with_its_ids_and_get_its_answers(
    tmp_path: Path, cloud: Cloud
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT), edge(tmp_path, cloud) as (app, api):
        await accept_tag(api, "TAG1")
        async with RawCharger.connect(ocpp_url(app, "CMD1")) as cp:
            cp.answers.update(
                {
                    "RemoteStopTransaction": {"status": "Accepted"},
                    "ChangeAvailability": {"status": "Scheduled"},
                    "TriggerMessage": {"status": "Rejected"},
                }
            )
            sent = Sent(cp)
            await booted(sent)
            edge_id = await charge(sent, samples=1, finish=False)
            await cloud.wait_for("CMD1", "StartTransaction", lambda c: c.accepted, timeout=WAIT)
            cloud_id = cloud_transaction_id(cloud, "CMD1")

            frame = await cloud.call("CMD1", "RemoteStopTransaction", {"transactionId": cloud_id})
            assert frame[0] == 3 and frame[2] == {"status": "Accepted"}, frame
            assert ("RemoteStopTransaction", {"transactionId": edge_id}) in cp.received_calls
            cp.answers["RemoteStopTransaction"] = {"status": "Rejected"}
            frame = await cloud.call("CMD1", "RemoteStopTransaction", {"transactionId": cloud_id})
            assert frame[0] == 3 and frame[2] == {"status": "Rejected"}, frame

            change = {"connectorId": 1, "type": "Inoperative"}
            frame = await cloud.call("CMD1", "ChangeAvailability", change)
            assert frame[0] == 3 and frame[2] == {"status": "Scheduled"}, frame
            assert ("ChangeAvailability", change) in cp.received_calls
            trigger = {"requestedMessage": "MeterValues", "connectorId": 1}
            frame = await cloud.call("CMD1", "TriggerMessage", trigger)
            assert frame[0] == 3 and frame[2] == {"status": "Rejected"}, frame

            # A transaction id the edge does not know is refused, not forwarded.
            stops = len([c for c in cp.received_calls if c[0] == "RemoteStopTransaction"])
            frame = await cloud.call("CMD1", "RemoteStopTransaction", {"transactionId": 987654})
            assert frame[0] == 3 and frame[2] == {"status": "Rejected"}, frame
            assert len([c for c in cp.received_calls if c[0] == "RemoteStopTransaction"]) == stops


async def test_a_command_for_a_charger_not_connected_to_the_edge_is_a_call_error(
    tmp_path: Path, cloud: Cloud
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT), edge(tmp_path, cloud) as (app, _):
        async with RawCharger.connect(ocpp_url(app, "AWAY1")) as cp:
            sent = Sent(cp)
            await booted(sent)
            await synced(cloud, "AWAY1", sent.last_status(1))
            cloud.delays["StatusNotification"] = 3.0  # the link stays up: a message is pending
            await sent.status(1, "Unavailable")
            await cloud.wait_for("AWAY1", "StatusNotification", count=3, timeout=WAIT)
        frame = await cloud.call(
            "AWAY1", "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}
        )
        assert frame[0] == 4, frame


# Authorize.


@pytest.mark.parametrize("cloud_state", ["answers", "late", "black_hole", "down"])
async def test_authorize_uses_the_cloud_verdict_in_time_else_the_edge_answers(
    tmp_path: Path, cloud: Cloud, cloud_state: str
) -> None:
    cloud.authorize_status.update({"LOCALOK": "Blocked", "CLOUDONLY": "Accepted"})
    upstream = {"authorize_timeout": AUTHORIZE_TIMEOUT}
    async with asyncio.timeout(TEST_TIMEOUT), edge(tmp_path, cloud, upstream) as (app, api):
        await accept_tag(api, "LOCALOK")
        async with RawCharger.connect(ocpp_url(app, "AUTH1")) as cp:
            sent = Sent(cp)
            await booted(sent)
            await synced(cloud, "AUTH1", sent.last_status(1))
            if cloud_state == "answers":
                cloud.delays["Authorize"] = 0.3
            elif cloud_state == "late":
                cloud.delays["Authorize"] = AUTHORIZE_TIMEOUT + 2.0
            elif cloud_state == "black_hole":
                cloud.silent.add("Authorize")
            else:
                await cloud.stop()

            local = {"LOCALOK": "Accepted", "CLOUDONLY": "Invalid"}
            for id_tag in ("LOCALOK", "CLOUDONLY"):
                began = time.monotonic()
                conf = await sent.send("Authorize", {"idTag": id_tag})
                took = time.monotonic() - began
                assert took <= AUTHORIZE_TIMEOUT + 0.5 * TIME_SCALE, (id_tag, took)
                wanted = (
                    cloud.authorize_status[id_tag] if cloud_state == "answers" else local[id_tag]
                )
                assert conf["idTagInfo"]["status"] == wanted, (id_tag, conf)
            if cloud_state == "answers":
                asked = [c.payload["idTag"] for c in cloud.received("AUTH1", "Authorize")]
                assert asked == ["LOCALOK", "CLOUDONLY"]


async def test_identity_and_credentials_toward_the_cloud(tmp_path: Path, cloud: Cloud) -> None:
    """upstream_id names the charger toward the cloud; the [upstream] password is the
    default, upstream_password overrides it for a charger."""
    cloud.passwords.update({"FLEET-7": "site-secret", "OWN1": "own-secret"})
    upstream = {"password": "site-secret"}
    chargers = {"LOCAL7": {"upstream_id": "FLEET-7"}, "OWN1": {"upstream_password": "own-secret"}}
    async with (
        asyncio.timeout(TEST_TIMEOUT),
        edge(tmp_path, cloud, upstream, chargers) as (app, api),
    ):
        for charger_id in ("LOCAL7", "OWN1"):
            async with RawCharger.connect(ocpp_url(app, charger_id)) as cp:
                await booted(Sent(cp), connectors=())
        (boot,) = await cloud.wait_for("FLEET-7", "BootNotification", timeout=WAIT)
        assert boot.payload == BOOT
        await cloud.wait_for("OWN1", "BootNotification", timeout=WAIT)
        assert "LOCAL7" not in cloud.calls
        credentials = {c.charge_point: c.credentials for c in cloud.connections}
        assert credentials == {
            "FLEET-7": ("FLEET-7", "site-secret"),
            "OWN1": ("OWN1", "own-secret"),
        }
        assert all(c.subprotocol == "ocpp1.6" for c in cloud.connections)
        entry = await upstream_entry(api, "LOCAL7")
        assert entry["upstreamId"] == "FLEET-7"


async def test_a_flapping_cloud_gets_every_transaction_message_once_in_order(
    tmp_path: Path, cloud: Cloud
) -> None:
    """The cloud drops the connection again and again while a transaction runs and is
    replayed (each answer a little late, so drops land mid-CALL): whatever was in flight
    at a drop may come again, byte for byte, right after itself; nothing is lost, nothing
    else repeats, the order holds, and the charger is always answered at once."""
    async with asyncio.timeout(TEST_TIMEOUT * 2), edge(tmp_path, cloud) as (app, api):
        await accept_tag(api, "TAG1")
        async with RawCharger.connect(ocpp_url(app, "FLAP1")) as cp:
            sent = Sent(cp)
            await booted(sent)
            await synced(cloud, "FLAP1", sent.last_status(1))
            cloud.delays["*"] = 0.15
            before = len(sent.messages)
            charging = asyncio.create_task(charge(sent, samples=12))
            for _ in range(5):
                await eventually(lambda: cloud.connected("FLAP1"))  # it comes back by itself
                await asyncio.sleep(0.3)
                await cloud.disconnect("FLAP1")
            edge_id = await charging
            assert max(sent.answer_times[before:]) < QUICK, sent.answer_times
            cloud.delays.clear()
            await cloud.wait_for("FLAP1", "StopTransaction", lambda c: c.accepted, timeout=WAIT)
            calls = cloud.received("FLAP1")
            cloud_id = cloud_transaction_id(cloud, "FLAP1")
            expected = transaction_messages(as_cloud_sees_it(sent.messages, edge_id, cloud_id))
            got = received_messages(calls, *TX_ACTIONS)
            # Drop a repeat that directly follows its original (the one in flight at a drop).
            deduplicated = [m for i, m in enumerate(got) if i == 0 or m != got[i - 1]]
            assert deduplicated == expected, (len(got), len(expected))
            assert len({c.connection for c in calls}) >= 6, "the cloud dropped the link 5 times"
