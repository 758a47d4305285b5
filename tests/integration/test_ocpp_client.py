"""Charging flows driven by an independent client: mobilityhouse `ocpp` 2.1.0's ChargePoint.

The library's own quirks shape these tests: its `start()` loop awaits each handler (and
each `@after` hook) inline, so a handler that awaits `self.call` deadlocks; follow-up
CALLs are started as tasks instead (`tests.chargepoint.TaskChargePoint.spawn`). Its v16
validator would call schema failures `FormatViolation`, which these tests never provoke.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ocpp.routing import on
from ocpp.v16 import call, call_result

from edge.app import App
from tests.chargepoint import TaskChargePoint, ocpp_connect, reading
from tests.conftest import TIME_SCALE, Api, ocpp_url
from tests.helpers import now_iso

TIMEOUT = 10 * TIME_SCALE


class SimCP(TaskChargePoint):
    """A charger that answers the CSMS's CALLs the way a cooperative charger would."""

    def __init__(self, charger_id: str, connection: Any) -> None:
        super().__init__(charger_id, connection, response_timeout=5 * TIME_SCALE)
        self.meter_wh = 1000
        self.remote_starts: list[dict[str, Any]] = []
        self.remote_stops: list[int] = []
        self.config_requests: list[list[str] | None] = []
        self.started: asyncio.Queue[int] = asyncio.Queue()
        self.stopped: asyncio.Queue[int] = asyncio.Queue()

    @on("RemoteStartTransaction")
    def on_remote_start(self, id_tag: str, connector_id: int | None = None, **_: Any) -> Any:
        self.remote_starts.append({"id_tag": id_tag, "connector_id": connector_id})
        self.spawn(self._start_after_remote(connector_id or 1, id_tag))
        return call_result.RemoteStartTransaction(status="Accepted")

    async def _start_after_remote(self, connector_id: int, id_tag: str) -> None:
        await self.call(
            call.StatusNotification(
                connector_id=connector_id, error_code="NoError", status="Preparing"
            )
        )
        result = await self.call(
            call.StartTransaction(
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start=self.meter_wh,
                timestamp=now_iso(),
            )
        )
        await self.started.put(result.transaction_id)

    @on("RemoteStopTransaction")
    def on_remote_stop(self, transaction_id: int) -> Any:
        self.remote_stops.append(transaction_id)
        self.spawn(self._stop_after_remote(transaction_id))
        return call_result.RemoteStopTransaction(status="Accepted")

    async def _stop_after_remote(self, transaction_id: int) -> None:
        self.meter_wh += 750
        await self.call(
            call.StopTransaction(
                meter_stop=self.meter_wh,
                timestamp=now_iso(),
                transaction_id=transaction_id,
                reason="Remote",
            )
        )
        await self.stopped.put(transaction_id)

    @on("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None) -> Any:
        self.config_requests.append(key)
        known = {
            "HeartbeatInterval": ("300", False),
            "MeterValueSampleInterval": ("60", False),
            "NumberOfConnectors": ("2", True),
        }
        wanted = key or list(known)
        return call_result.GetConfiguration(
            configuration_key=[
                {"key": k, "readonly": known[k][1], "value": known[k][0]}
                for k in wanted
                if k in known
            ],
            unknown_key=[k for k in wanted if k not in known] or None,
        )


@contextlib.asynccontextmanager
async def sim_charger(app: App, charger_id: str) -> AsyncIterator[SimCP]:
    """A connected SimCP with its read loop running; closed and stopped on exit."""
    async with ocpp_connect(ocpp_url(app, charger_id)) as ws, reading(SimCP(charger_id, ws)) as cp:
        yield cp


async def accept_tag(api: Api, id_tag: str) -> None:
    status, _ = await api.request("PUT", f"/api/id-tags/{id_tag}", {"status": "Accepted"})
    assert status in (200, 201)


async def boot(cp: SimCP) -> Any:
    result = await cp.call(
        call.BootNotification(
            charge_point_model="Wallbox-2",
            charge_point_vendor="Acme",
            firmware_version="1.2.3",
            charge_point_serial_number="SN-42",
        )
    )
    assert result is not None
    return result


def sampled(measurand: str, value: str, unit: str, **extra: str) -> dict[str, str]:
    return {"measurand": measurand, "value": value, "unit": unit, **extra}


def meter_value(register: str, unit: str = "Wh") -> dict[str, Any]:
    """One MeterValue with the register plus per-phase current, voltage and power."""
    values = [
        sampled("Energy.Active.Import.Register", register, unit, context="Sample.Periodic"),
        sampled("Power.Active.Import", "11040", "W"),
    ]
    for phase in ("L1", "L2", "L3"):
        values.append(sampled("Current.Import", "16.0", "A", phase=phase))
        values.append(sampled("Voltage", "230.0", "V", phase=f"{phase}-N"))
    return {"timestamp": now_iso(), "sampledValue": values}


async def test_boot_status_authorize_start_meter_values_stop(app: App, api: Api) -> None:
    """A full local session by the ocpp ChargePoint shows in the API with energy and samples."""
    await accept_tag(api, "TAG-OK")
    async with asyncio.timeout(TIMEOUT), sim_charger(app, "LIB1") as cp:
        booted = await boot(cp)
        assert booted.status == "Accepted"
        assert booted.interval == app.config.ocpp.heartbeat_interval
        assert booted.current_time.endswith("Z")

        heartbeat = await cp.call(call.Heartbeat())
        assert heartbeat.current_time.endswith("Z")

        for connector_id in (0, 1, 2):
            answer = await cp.call(
                call.StatusNotification(
                    connector_id=connector_id, error_code="NoError", status="Available"
                )
            )
            assert answer is not None

        authorized = await cp.call(call.Authorize(id_tag="TAG-OK"))
        assert authorized.id_tag_info["status"] == "Accepted"
        unknown = await cp.call(call.Authorize(id_tag="TAG-NOBODY"))
        assert unknown.id_tag_info["status"] == "Invalid"

        await cp.call(
            call.StatusNotification(connector_id=1, error_code="NoError", status="Preparing")
        )
        started = await cp.call(
            call.StartTransaction(
                connector_id=1, id_tag="TAG-OK", meter_start=1000, timestamp=now_iso()
            )
        )
        assert started.id_tag_info["status"] == "Accepted"
        tx_id = started.transaction_id
        assert isinstance(tx_id, int)
        await cp.call(
            call.StatusNotification(connector_id=1, error_code="NoError", status="Charging")
        )

        # One reading in Wh, one in kWh: both are the same register.
        await cp.call(
            call.MeterValues(
                connector_id=1, transaction_id=tx_id, meter_value=[meter_value("1500")]
            )
        )
        await cp.call(
            call.MeterValues(
                connector_id=1, transaction_id=tx_id, meter_value=[meter_value("2.5", "kWh")]
            )
        )

        live = await api.get(f"/api/transactions/{tx_id}")
        assert live["active"] is True
        assert live["chargerId"] == "LIB1"
        assert live["connectorId"] == 1
        assert live["idTag"] == "TAG-OK"
        assert live["meterStart"] == 1000
        assert live["energyWh"] == 1500
        chargers = {c["id"]: c for c in await api.get("/api/chargers")}
        charger = chargers["LIB1"]
        assert charger["connected"] is True
        assert charger["registration"] == "Accepted"
        assert charger["vendor"] == "Acme"
        assert charger["model"] == "Wallbox-2"
        assert charger["firmwareVersion"] == "1.2.3"
        connector = {c["connectorId"]: c for c in charger["connectors"]}[1]
        assert connector["status"] == "Charging"
        assert connector["transactionId"] == tx_id

        stopped = await cp.call(
            call.StopTransaction(
                meter_stop=3200,
                timestamp=now_iso(),
                transaction_id=tx_id,
                reason="EVDisconnected",
                id_tag="TAG-OK",
                transaction_data=[meter_value("3100"), meter_value("3.2", "kWh")],
            )
        )
        assert stopped.id_tag_info["status"] == "Accepted"
        await cp.call(
            call.StatusNotification(connector_id=1, error_code="NoError", status="Finishing")
        )

    done = await api.get(f"/api/transactions/{tx_id}")
    assert done["active"] is False
    assert done["meterStop"] == 3200
    assert done["energyWh"] == 2200
    assert done["stopReason"] == "EVDisconnected"
    assert done["stopTime"] is not None and done["stopTime"].endswith("Z")
    samples = done["meterValues"]
    assert len(samples) == 4
    registers = []
    for sample in samples:
        by_key = {(sv.get("measurand"), sv.get("phase")): sv for sv in sample["sampledValue"]}
        assert by_key[("Current.Import", "L2")]["value"] == "16.0"
        assert by_key[("Voltage", "L3-N")]["unit"] == "V"
        assert by_key[("Power.Active.Import", None)]["value"] == "11040"
        reg = by_key[("Energy.Active.Import.Register", None)]
        registers.append((reg["value"], reg["unit"]))
    assert registers == [("1500", "Wh"), ("2.5", "kWh"), ("3100", "Wh"), ("3.2", "kWh")]

    listed = await api.get("/api/transactions?chargerId=LIB1")
    assert [t["transactionId"] for t in listed] == [tx_id]
    assert await api.get("/api/transactions?chargerId=LIB1&active=true") == []


async def test_transaction_messages_are_always_answered(app: App, api: Api) -> None:
    """Odd but valid transaction messages (unknown ids, -1, no reason, Celcius) get a CALLRESULT."""
    async with asyncio.timeout(TIMEOUT), sim_charger(app, "LIB5") as cp:
        await boot(cp)
        temperatures = {
            "timestamp": now_iso(),
            "sampledValue": [
                sampled("Temperature", "31.5", "Celsius", location="Body"),
                sampled("Temperature", "32.0", "Celcius", location="Body"),
                {"value": "123456"},  # defaults: Energy.Active.Import.Register in Wh
            ],
        }
        # Main meter, no transaction.
        assert await cp.call(call.MeterValues(connector_id=0, meter_value=[temperatures]))
        # A transaction the CSMS never heard of, and the -1 of a charger that never got
        # its StartTransaction.conf (1.6 errata 3.18): answered as if valid.
        for tx_id in (987654, -1):
            assert await cp.call(
                call.MeterValues(connector_id=1, transaction_id=tx_id, meter_value=[temperatures])
            )
            stopped = await cp.call(
                call.StopTransaction(meter_stop=5000, timestamp=now_iso(), transaction_id=tx_id)
            )
            assert stopped is not None

        # "reason" absent means Local (J errata 2.4).
        started = await cp.call(
            call.StartTransaction(
                connector_id=2, id_tag="UNKNOWN-TAG", meter_start=0, timestamp=now_iso()
            )
        )
        # An unknown tag still gets a transaction id; the charger decides what to do.
        assert started.id_tag_info["status"] == "Invalid"
        assert await cp.call(
            call.StopTransaction(
                meter_stop=10,
                timestamp=now_iso(),
                transaction_id=started.transaction_id,
                transaction_data=[temperatures],
            )
        )
    done = await api.get(f"/api/transactions/{started.transaction_id}")
    assert done["active"] is False
    assert done["stopReason"] == "Local"
    assert done["energyWh"] == 10
    assert done["meterValues"][0]["sampledValue"] == temperatures["sampledValue"]


async def test_remote_start_and_stop_through_the_api(app: App, api: Api) -> None:
    """API RemoteStart/RemoteStop reach the ChargePoint's handlers; the transaction is recorded."""
    await accept_tag(api, "TAG-REMOTE")
    async with asyncio.timeout(TIMEOUT), sim_charger(app, "LIB2") as cp:
        await boot(cp)
        await cp.call(
            call.StatusNotification(connector_id=1, error_code="NoError", status="Available")
        )
        status, body = await api.operation(
            "LIB2", "RemoteStartTransaction", {"idTag": "TAG-REMOTE", "connectorId": 1}
        )
        assert status == 200, body
        assert body == {"response": {"status": "Accepted"}}
        assert cp.remote_starts == [{"id_tag": "TAG-REMOTE", "connector_id": 1}]
        tx_id = await cp.started.get()

        active = await api.get("/api/transactions?chargerId=LIB2&active=true")
        assert [t["transactionId"] for t in active] == [tx_id]
        assert active[0]["idTag"] == "TAG-REMOTE"

        status, body = await api.operation(
            "LIB2", "RemoteStopTransaction", {"transactionId": tx_id}
        )
        assert status == 200, body
        assert body == {"response": {"status": "Accepted"}}
        assert await cp.stopped.get() == tx_id
        assert cp.remote_stops == [tx_id]

    done = await api.get(f"/api/transactions/{tx_id}")
    assert done["active"] is False
    assert done["stopReason"] == "Remote"
    assert done["meterStart"] == 1000
    assert done["meterStop"] == 1750
    assert done["energyWh"] == 750


async def test_get_configuration_answered_by_the_charger(app: App, api: Api) -> None:
    """GetConfiguration through the API returns the ChargePoint's answer and records the keys."""
    async with asyncio.timeout(TIMEOUT), sim_charger(app, "LIB3") as cp:
        await boot(cp)
        status, body = await api.operation("LIB3", "GetConfiguration", {})
        assert status == 200, body
        keys = {entry["key"]: entry for entry in body["response"]["configurationKey"]}
        assert keys["HeartbeatInterval"] == {
            "key": "HeartbeatInterval",
            "readonly": False,
            "value": "300",
        }
        assert keys["NumberOfConnectors"]["readonly"] is True
        assert "unknownKey" not in body["response"]

        status, body = await api.operation(
            "LIB3", "GetConfiguration", {"key": ["MeterValueSampleInterval", "NoSuchKey"]}
        )
        assert status == 200, body
        assert body["response"]["configurationKey"] == [
            {"key": "MeterValueSampleInterval", "readonly": False, "value": "60"}
        ]
        assert body["response"]["unknownKey"] == ["NoSuchKey"]
        assert cp.config_requests == [None, ["MeterValueSampleInterval", "NoSuchKey"]]

        detail = await api.get("/api/chargers/LIB3")
        assert detail["configuration"]["HeartbeatInterval"]["value"] == "300"
        assert detail["configuration"]["NumberOfConnectors"]["readonly"] is True


async def test_operation_to_a_charger_without_a_handler(app: App, api: Api) -> None:
    """An action the ChargePoint has no handler for is a 502 CallError; the session goes on."""
    async with asyncio.timeout(TIMEOUT), sim_charger(app, "LIB4") as cp:
        await boot(cp)
        status, body = await api.operation("LIB4", "ClearCache", {})
        assert status == 502, body
        assert body["error"] == "CallError"
        assert body["errorCode"] == "NotImplemented"
        heartbeat = await cp.call(call.Heartbeat())
        assert heartbeat is not None
        status, body = await api.operation(
            "LIB4", "GetConfiguration", {"key": ["HeartbeatInterval"]}
        )
        assert status == 200, body
