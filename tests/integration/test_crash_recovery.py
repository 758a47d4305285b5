"""The real service as a subprocess: kill -9 mid-transaction, restart on the same data, go on.

DESIGN §5: a StartTransaction / StopTransaction / MeterValues is acknowledged only
after it is durable, and a kill -9 at any instant loses nothing that was
acknowledged and never leaves a file that stops the service from starting.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from edge.sim.charger import RawCharger
from tests.conftest import TIME_SCALE, api_client
from tests.helpers import now_iso
from tests.integration.service import Service, config_toml, serve

pytestmark = pytest.mark.slow

TEST_TIMEOUT = 90 * TIME_SCALE


@contextlib.asynccontextmanager
async def service(tmp_path: Path, name: str) -> AsyncIterator[Service]:
    """The service on tmp_path's data (configured by the first run), logging to `name`.log."""
    config = tmp_path / "config.toml"
    if not config.exists():
        config.write_text(config_toml(tmp_path / "data", call_timeout=5.0 * TIME_SCALE))
    async with serve(config, tmp_path / f"{name}.log") as svc:
        yield svc


def assert_clean_start(svc: Service) -> None:
    text = svc.text()
    assert "Traceback" not in text, text
    assert " ERROR " not in text and " CRITICAL " not in text, text


async def test_kill_mid_transaction_then_finish_after_restart(tmp_path: Path) -> None:
    """A transaction cut by kill -9 finishes after a restart with its energy and samples."""
    async with asyncio.timeout(TEST_TIMEOUT):
        async with service(tmp_path, "first") as svc, api_client(svc.web_port) as api:
            status, _ = await api.request("PUT", "/api/id-tags/TAG1", {"status": "Accepted"})
            assert status == 201
            async with RawCharger.connect(svc.url("CRASH1")) as cp:
                assert (await cp.boot())["status"] == "Accepted"
                # The registration is a state document, flushed about once a second; the
                # kill right after a boot is test_kill_right_after_boot_keeps_the_registration.
                await asyncio.sleep(2.0)
                await cp.status(1, "Preparing")
                started = await cp.call(
                    "StartTransaction",
                    {
                        "connectorId": 1,
                        "idTag": "TAG1",
                        "meterStart": 10_000,
                        "timestamp": now_iso(),
                    },
                )
                tx_id = started["transactionId"]
                await cp.status(1, "Charging")
                for register in (10_400, 10_900):
                    await cp.call("MeterValues", meter_values(tx_id, register))
                assert (await svc.signal(signal.SIGKILL)) == -signal.SIGKILL

        async with service(tmp_path, "second") as svc, api_client(svc.web_port) as api:
            assert await api.get("/api/health") == {"status": "ok"}
            live = await api.get(f"/api/transactions/{tx_id}")
            assert live["active"] is True
            assert live["meterStart"] == 10_000
            assert live["energyWh"] == 900
            assert len(live["meterValues"]) == 2

            async with RawCharger.connect(svc.url("CRASH1")) as cp:
                # No new BootNotification: the registration was remembered.
                frame = await cp.call_raw(
                    "StatusNotification",
                    {"connectorId": 1, "errorCode": "NoError", "status": "Charging"},
                )
                assert frame[0] == 3, frame
                await cp.call("MeterValues", meter_values(tx_id, 11_300))
                stopped = await cp.call(
                    "StopTransaction",
                    {
                        "transactionId": tx_id,
                        "meterStop": 11_500,
                        "timestamp": now_iso(),
                        "idTag": "TAG1",
                        "reason": "Local",
                        "transactionData": [meter_value(11_500)],
                    },
                )
                assert stopped["idTagInfo"]["status"] == "Accepted"

            done = await api.get(f"/api/transactions/{tx_id}")
            assert done["active"] is False
            assert done["meterStop"] == 11_500
            assert done["energyWh"] == 11_500 - 10_000
            assert done["stopReason"] == "Local"
            assert registers(done) == [10_400, 10_900, 11_300, 11_500]
            charger = {c["id"]: c for c in await api.get("/api/chargers")}["CRASH1"]
            assert charger["registration"] == "Accepted"
            assert charger["vendor"] == "VendorX"
            assert svc.text().count("listening for OCPP") == 1
            assert_clean_start(svc)


async def test_kill_right_after_boot_keeps_the_registration(tmp_path: Path) -> None:
    """A boot answered Accepted just before kill -9 is still honoured after the restart."""
    async with asyncio.timeout(TEST_TIMEOUT):
        async with (
            service(tmp_path, "first") as svc,
            RawCharger.connect(svc.url("CRASH2")) as cp,
        ):
            assert (await cp.boot())["status"] == "Accepted"
            await svc.signal(signal.SIGKILL)
        async with (
            service(tmp_path, "second") as svc,
            RawCharger.connect(svc.url("CRASH2")) as cp,
        ):
            frame = await cp.call_raw("Heartbeat", {})
            assert frame[0] == 3, (
                f"a charger told Accepted must not be refused after a crash: {frame}"
            )


def meter_value(register: int) -> dict[str, Any]:
    return {
        "timestamp": now_iso(),
        "sampledValue": [
            {"measurand": "Energy.Active.Import.Register", "unit": "Wh", "value": str(register)},
            {"measurand": "Current.Import", "unit": "A", "phase": "L1", "value": "16.0"},
        ],
    }


def meter_values(tx_id: int, register: int) -> dict[str, Any]:
    return {"connectorId": 1, "transactionId": tx_id, "meterValue": [meter_value(register)]}


def registers(transaction: dict[str, Any]) -> list[int]:
    values = []
    for sample in transaction["meterValues"]:
        for sv in sample["sampledValue"]:
            if sv.get("measurand") == "Energy.Active.Import.Register":
                values.append(int(sv["value"]))
    return values


@dataclass
class Acked:
    """What the CSMS acknowledged to one charger before the kill."""

    charger_id: str
    meter_start: int
    transaction_id: int | None = None
    registers: list[int] = field(default_factory=list)


async def charge_until_killed(url: str, acked: Acked, ready: asyncio.Event) -> None:
    """Boot, start, then send MeterValues back to back until the connection dies (while
    waiting for an answer, or while sending the next one: ConnectionClosed)."""
    with contextlib.suppress(ConnectionError, ConnectionClosed, OSError, TimeoutError):
        async with RawCharger.connect(url) as cp:
            await cp.boot()
            started = await cp.call(
                "StartTransaction",
                {
                    "connectorId": 1,
                    "idTag": acked.charger_id,
                    "meterStart": acked.meter_start,
                    "timestamp": now_iso(),
                },
            )
            acked.transaction_id = started["transactionId"]
            ready.set()
            register = acked.meter_start
            while True:
                register += 7
                frame = await cp.call_raw(
                    "MeterValues", meter_values(acked.transaction_id, register)
                )
                assert frame[0] == 3, frame
                acked.registers.append(register)
    # The connection died (the service was killed); whatever was not acknowledged is lost.
    ready.set()


async def test_kill_during_concurrent_meter_values(tmp_path: Path) -> None:
    """After kill -9 amid many chargers' MeterValues, everything acknowledged is journalled."""
    n = 12
    acked = [Acked(f"BURST{i:02d}", meter_start=1000 * i) for i in range(n)]
    async with asyncio.timeout(TEST_TIMEOUT):
        async with service(tmp_path, "first") as svc:
            readies = [asyncio.Event() for _ in acked]
            tasks = [
                asyncio.create_task(charge_until_killed(svc.url(a.charger_id), a, r))
                for a, r in zip(acked, readies, strict=True)
            ]
            try:
                for ready in readies:
                    await asyncio.wait_for(ready.wait(), 15 * TIME_SCALE)
                await asyncio.sleep(1.0)  # a second of MeterValues from every charger
                assert all(a.registers for a in acked), "every charger got MeterValues through"
                await svc.signal(signal.SIGKILL)
                await asyncio.wait_for(asyncio.gather(*tasks), 15 * TIME_SCALE)
            finally:
                for task in tasks:
                    task.cancel()
        assert all(a.transaction_id is not None for a in acked)
        sent = sum(len(a.registers) for a in acked)
        assert sent >= n

        async with service(tmp_path, "second") as svc, api_client(svc.web_port) as api:
            assert await api.get("/api/health") == {"status": "ok"}
            assert_clean_start(svc)
            for a in acked:
                tx = await api.get(f"/api/transactions/{a.transaction_id}?limit=100000")
                assert tx["chargerId"] == a.charger_id
                assert tx["meterStart"] == a.meter_start
                assert tx["active"] is True
                stored = registers(tx)
                missing = sorted(set(a.registers) - set(stored))
                assert not missing, f"{a.charger_id}: acknowledged but lost: {missing[:10]}"
                # At most the one in flight at the kill may be stored without an answer.
                assert len(stored) - len(a.registers) in (0, 1)
                assert tx["energyWh"] >= a.registers[-1] - a.meter_start
            active = await api.get("/api/transactions?active=true&limit=1000")
            assert {t["transactionId"] for t in active} >= {a.transaction_id for a in acked}

            # The restarted service takes traffic as usual.
            async with RawCharger.connect(svc.url("BURST00")) as cp:
                tx_id = acked[0].transaction_id
                last = acked[0].registers[-1] + 1000
                await cp.call(
                    "StopTransaction",
                    {"transactionId": tx_id, "meterStop": last, "timestamp": now_iso()},
                )
            done = await api.get(f"/api/transactions/{tx_id}")
            assert done["active"] is False
            assert done["energyWh"] == last - acked[0].meter_start
            assert done["stopReason"] == "Local"


async def test_sigterm_shuts_down_gracefully(tmp_path: Path) -> None:
    """SIGTERM with chargers connected closes their connections and exits 0 within a few seconds."""
    async with asyncio.timeout(TEST_TIMEOUT), service(tmp_path, "run") as svc:
        async with contextlib.AsyncExitStack() as stack:
            chargers = [
                await stack.enter_async_context(RawCharger.connect(svc.url(f"TERM{i}")))
                for i in range(5)
            ]
            for cp in chargers:
                assert (await cp.boot())["status"] == "Accepted"
            started = await chargers[0].call(
                "StartTransaction",
                {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": now_iso()},
            )
            t0 = time.monotonic()
            rc = await svc.signal(signal.SIGTERM, timeout=10 * TIME_SCALE)
            elapsed = time.monotonic() - t0
            assert rc == 0, svc.text()
            assert elapsed < 8 * TIME_SCALE
            for cp in chargers:
                await asyncio.wait_for(cp.ws.wait_closed(), 5 * TIME_SCALE)
                assert cp.ws.close_code in (1000, 1001), cp.ws.close_code
        text = svc.text()
        assert "Traceback" not in text, text
        assert "stopped" in text

    # The transaction it had acknowledged is there after the restart.
    async with (
        asyncio.timeout(TEST_TIMEOUT),
        service(tmp_path, "again") as svc,
        api_client(svc.web_port) as api,
    ):
        tx = await api.get(f"/api/transactions/{started['transactionId']}")
        assert tx["active"] is True
        assert tx["chargerId"] == "TERM0"
