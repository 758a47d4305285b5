"""The cloud central system itself, driven by a plain WebSocket charge point (no edge)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from edge.sim.charger import RawCharger
from tests.conftest import TIME_SCALE
from tests.upstream.cloud import FIRST_TRANSACTION_ID, Cloud, raw_payload

TIMEOUT = 10 * TIME_SCALE
BOOT = {"chargePointVendor": "VendorX", "chargePointModel": "ModelY"}


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def start(meter_start: int = 100, timestamp: str = "2025-01-02T03:04:05.000Z") -> dict[str, object]:
    return {"connectorId": 1, "idTag": "TAG1", "meterStart": meter_start, "timestamp": timestamp}


def test_raw_payload_is_the_payload_text_as_written() -> None:
    frame = ' [ 2 , "a,]b" ,"MeterValues",  {"x": [1, {"y": "]"}], "z" : 1.50} ] '
    assert raw_payload(frame) == '{"x": [1, {"y": "]"}], "z" : 1.50}'
    assert raw_payload('[2,"1","Heartbeat",{}]') == "{}"
    with pytest.raises(ValueError):
        raw_payload('{"not": "a frame"}')


async def test_boot_and_calls_are_recorded_in_order_with_their_raw_text(cloud: Cloud) -> None:
    async with asyncio.timeout(TIMEOUT):
        async with RawCharger.connect(cloud.url + "/CP1") as cp:
            conf = await cp.call("BootNotification", BOOT)
            assert conf["status"] == "Accepted"
            assert conf["interval"] == cloud.heartbeat_interval
            raw = '[2, "s1", "StatusNotification", {"connectorId": 1, "errorCode": "NoError",  "status": "Available"}]'  # noqa: E501
            await cp.send_frame(raw)
            assert (await cp.next_unmatched()) == [3, "s1", {}]
            assert "currentTime" in await cp.call("Heartbeat", {})
        received = cloud.received("CP1")
        assert [c.action for c in received] == [
            "BootNotification",
            "StatusNotification",
            "Heartbeat",
        ]
        assert received[0].payload == BOOT
        assert received[1].raw == raw
        assert received[1].raw_payload == raw[raw.index("{") : -1]
        assert all(c.accepted for c in received)
        assert received[0].at <= received[1].at <= received[2].at
        (connection,) = cloud.connections
        assert connection.charge_point == "CP1"
        assert connection.subprotocol == "ocpp1.6"
        assert connection.credentials is None


async def test_the_ocpp16_subprotocol_and_the_path_are_required(cloud: Cloud) -> None:
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(InvalidStatus) as refused:
            await connect(cloud.url + "/CP1", proxy=None, open_timeout=5)
        assert refused.value.response.status_code == 400
        with pytest.raises(InvalidStatus) as refused:
            async with RawCharger.connect(f"ws://127.0.0.1:{cloud.port}/elsewhere/CP1"):
                pass
        assert refused.value.response.status_code == 404
        assert cloud.connections == []


async def test_basic_credentials_are_checked_where_configured(cloud: Cloud) -> None:
    cloud.passwords["CP1"] = "s3cret"
    async with asyncio.timeout(TIMEOUT):
        for headers in (None, basic("CP1", "wrong"), basic("CP2", "s3cret")):
            with pytest.raises(InvalidStatus) as refused:
                async with RawCharger.connect(cloud.url + "/CP1", headers=headers):
                    pass
            assert refused.value.response.status_code == 401
        async with RawCharger.connect(cloud.url + "/CP1", headers=basic("CP1", "s3cret")) as cp:
            assert (await cp.call("BootNotification", BOOT))["status"] == "Accepted"
        # Others are not asked for credentials.
        async with RawCharger.connect(cloud.url + "/CP2") as cp:
            assert (await cp.call("BootNotification", BOOT))["status"] == "Accepted"
        assert [c.credentials for c in cloud.connections] == [("CP1", "s3cret"), None]


@pytest.mark.parametrize("status", ["Pending", "Rejected"])
async def test_boot_can_be_pending_or_rejected_with_an_interval(cloud: Cloud, status: str) -> None:
    cloud.boot_status, cloud.boot_interval = status, 7
    async with asyncio.timeout(TIMEOUT), RawCharger.connect(cloud.url + "/CP1") as cp:
        conf = await cp.call("BootNotification", BOOT)
        assert (conf["status"], conf["interval"]) == (status, 7)
        cloud.boot_status = "Accepted"
        assert (await cp.call("BootNotification", BOOT))["status"] == "Accepted"


async def test_its_own_transaction_ids_deduplicated_by_content(cloud: Cloud) -> None:
    cloud.id_tag_status["BAD"] = "Blocked"
    async with asyncio.timeout(TIMEOUT), RawCharger.connect(cloud.url + "/CP1") as cp:
        first = await cp.call("StartTransaction", start())
        assert first == {"transactionId": FIRST_TRANSACTION_ID, "idTagInfo": {"status": "Accepted"}}
        # The same content again (a retry, with a new message id): the same transaction.
        assert await cp.call("StartTransaction", start()) == first
        second = await cp.call("StartTransaction", start(meter_start=101))
        assert second["transactionId"] == FIRST_TRANSACTION_ID + 1
        bad = await cp.call("StartTransaction", {**start(), "idTag": "BAD"})
        assert bad == {
            "transactionId": FIRST_TRANSACTION_ID + 2,
            "idTagInfo": {"status": "Blocked"},
        }
        sample = {
            "timestamp": "2025-01-02T03:05:00.000Z",
            "sampledValue": [{"value": "150", "measurand": "Energy.Active.Import.Register"}],
        }
        meter = {"connectorId": 1, "transactionId": FIRST_TRANSACTION_ID, "meterValue": [sample]}
        assert await cp.call("MeterValues", meter) == {}
        stop = {
            "transactionId": FIRST_TRANSACTION_ID,
            "meterStop": 200,
            "timestamp": "2025-01-02T03:06:00.000Z",
            "idTag": "TAG1",
        }
        assert await cp.call("StopTransaction", stop) == {"idTagInfo": {"status": "Accepted"}}
        no_tag = {**stop, "transactionId": FIRST_TRANSACTION_ID + 1}
        del no_tag["idTag"]
        assert await cp.call("StopTransaction", no_tag) == {}
    transaction = cloud.transactions[FIRST_TRANSACTION_ID]
    assert (transaction.charge_point, transaction.meter_start) == ("CP1", 100)
    assert transaction.meter_values == [meter]
    assert transaction.stop == stop


async def test_authorize_verdicts_and_delays(cloud: Cloud) -> None:
    cloud.authorize_status["BLOCKED"] = "Blocked"
    async with asyncio.timeout(TIMEOUT), RawCharger.connect(cloud.url + "/CP1") as cp:
        assert await cp.call("Authorize", {"idTag": "ANY"}) == {"idTagInfo": {"status": "Accepted"}}
        assert await cp.call("Authorize", {"idTag": "BLOCKED"}) == {
            "idTagInfo": {"status": "Blocked"}
        }
        cloud.delays["Authorize"] = 0.5
        began = time.monotonic()
        await cp.call("Authorize", {"idTag": "ANY"})
        assert time.monotonic() - began >= 0.5
        # A delayed answer does not hold up the cloud's other work.
        began = time.monotonic()
        pending = asyncio.create_task(cp.call("Authorize", {"idTag": "ANY"}))
        await asyncio.sleep(0.05)
        await cp.call("Heartbeat", {})
        assert time.monotonic() - began < 0.4
        await pending


async def test_other_charger_messages_are_answered(cloud: Cloud) -> None:
    calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        (
            "DataTransfer",
            {"vendorId": "VendorX", "messageId": "m", "data": "d"},
            {"status": "Accepted"},
        ),
        ("DiagnosticsStatusNotification", {"status": "Uploaded"}, {}),
        ("FirmwareStatusNotification", {"status": "Installed"}, {}),
        (
            "SecurityEventNotification",
            {"type": "StartupOfTheDevice", "timestamp": "2025-01-02T03:04:05Z"},
            {},
        ),
        ("SignedFirmwareStatusNotification", {"status": "Installed", "requestId": 1}, {}),
        ("LogStatusNotification", {"status": "Uploaded", "requestId": 2}, {}),
    ]
    async with asyncio.timeout(TIMEOUT), RawCharger.connect(cloud.url + "/CP1") as cp:
        for action, payload, answer in calls:
            assert await cp.call(action, payload) == answer, action
    assert [c.action for c in cloud.received("CP1")] == [action for action, _, _ in calls]


async def test_an_invalid_payload_is_refused_by_the_schema(cloud: Cloud) -> None:
    async with asyncio.timeout(TIMEOUT), RawCharger.connect(cloud.url + "/CP1") as cp:
        frame = await cp.call_raw("StartTransaction", {"connectorId": 1, "idTag": "TAG1"})
        assert frame[0] == 4, frame
        (received,) = cloud.received("CP1")
        assert received.answer == frame and not received.accepted


async def test_black_hole_silence_and_call_errors(cloud: Cloud) -> None:
    async with asyncio.timeout(TIMEOUT), RawCharger.connect(cloud.url + "/CP1") as cp:
        cloud.black_hole = True
        with pytest.raises(TimeoutError):
            await cp.call("Heartbeat", {}, timeout=0.3)
        cloud.black_hole = False
        cloud.silent.add("StatusNotification")
        with pytest.raises(TimeoutError):
            status = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
            await cp.call("StatusNotification", status, timeout=0.3)
        assert "currentTime" in await cp.call("Heartbeat", {})
        cloud.silent.clear()
        rule = cloud.fail(
            "MeterValues", "InternalError", "no", when=lambda p: p["connectorId"] == 2
        )
        meter = {
            "meterValue": [{"timestamp": "2025-01-02T03:05:00Z", "sampledValue": [{"value": "1"}]}]
        }
        frame = await cp.call_raw("MeterValues", {"connectorId": 2, **meter})
        assert frame[0] == 4 and frame[2:4] == ["InternalError", "no"], frame
        assert await cp.call("MeterValues", {"connectorId": 1, **meter}) == {}
        cloud.errors.remove(rule)
        assert await cp.call("MeterValues", {"connectorId": 2, **meter}) == {}
    received = cloud.received("CP1")
    assert [c.answer is None for c in received] == [True, True, False, False, False, False]
    assert [c.accepted for c in received] == [False, False, True, False, True, True]


async def test_stop_and_start_on_the_same_port(cloud: Cloud) -> None:
    port = cloud.port
    async with asyncio.timeout(TIMEOUT):
        async with RawCharger.connect(cloud.url + "/CP1") as cp:
            await cp.call("Heartbeat", {})
            await cloud.stop()
            await asyncio.wait_for(cp.ws.wait_closed(), 5)
        with pytest.raises(OSError):
            async with RawCharger.connect(cloud.url + "/CP1"):
                pass
        await cloud.start()
        assert cloud.port == port
        async with RawCharger.connect(cloud.url + "/CP1") as cp:
            await cp.call("Heartbeat", {})
            await cloud.stop(abrupt=True)
            await asyncio.wait_for(cp.ws.wait_closed(), 5)
        await cloud.start()
        async with RawCharger.connect(cloud.url + "/CP1") as cp:
            await cp.call("Heartbeat", {})
        await cloud.wait_disconnected("CP1")
    assert [c.connection for c in cloud.received("CP1")] == [1, 2, 3]
    assert all(c.closed_at is not None for c in cloud.connections)


async def test_calls_to_a_charge_point_return_its_answer(cloud: Cloud) -> None:
    async with asyncio.timeout(TIMEOUT), RawCharger.connect(cloud.url + "/CP1") as cp:
        await cloud.wait_connected("CP1")
        cp.answers["RemoteStopTransaction"] = {"status": "Accepted"}
        cp.answers["ChangeAvailability"] = ("NotSupported", "no")
        frame = await cloud.call("CP1", "RemoteStopTransaction", {"transactionId": 5000})
        assert frame[0] == 3 and frame[2] == {"status": "Accepted"}
        frame = await cloud.call(
            "CP1", "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}
        )
        assert frame[0] == 4 and frame[2] == "NotSupported"
        assert cp.received_calls == [
            ("RemoteStopTransaction", {"transactionId": 5000}),
            ("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}),
        ]
        # The charge point's own CALLs are answered meanwhile.
        cp.answers["TriggerMessage"] = "silent"
        waiting = asyncio.create_task(
            cloud.call("CP1", "TriggerMessage", {"requestedMessage": "Heartbeat"}, timeout=1)
        )
        await cp.wait_for_call("TriggerMessage")
        assert "currentTime" in await cp.call("Heartbeat", {})
        with pytest.raises(TimeoutError):
            await waiting
    with pytest.raises(ConnectionError):
        await cloud.call("CP1", "Reset", {"type": "Soft"})


async def test_wait_for_says_what_arrived(cloud: Cloud) -> None:
    async with asyncio.timeout(TIMEOUT), RawCharger.connect(cloud.url + "/CP1") as cp:
        await cp.call("Heartbeat", {})
        (beat,) = await cloud.wait_for("CP1", "Heartbeat")
        assert json.loads(beat.raw)[2] == "Heartbeat"
        with pytest.raises(AssertionError, match=r"received 0 of 1 BootNotification.*Heartbeat"):
            await cloud.wait_for("CP1", "BootNotification", timeout=0.1)
