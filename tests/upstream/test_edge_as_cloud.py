"""edge-csms as the cloud of another edge-csms (DESIGN §9: "the cloud in tests is a second
edge-csms process").

Edge B runs as its own process, `python -m edge serve`, and plays the fleet operator's
cloud: it knows the site's charger only by its upstream id and password (Basic auth,
security profile 1, unknown chargers refused). Edge A, in-process, is the site controller
whose `[upstream] url` is B's OCPP endpoint. A charger on A then exists on B as if it
were connected to B directly: booted with its own identity, its statuses, its
transactions under B's own ids with every meter value, B's verdicts on id tags, and B's
operator commands reaching it with A's ids and coming back with its answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import tomllib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from edge.app import App
from edge.config import parse_config
from edge.sim.charger import RawCharger
from tests.conftest import API_TOKEN, TIME_SCALE, Api, api_client, ocpp_url, running
from tests.helpers import eventually, now_iso
from tests.integration.service import Service, config_toml, serve
from tests.upstream.test_upstream import (
    BOOT,
    Sent,
    booted,
    charge,
    register_of,
    upstream_entry,
    upstream_entry_when,
)

Payload = dict[str, Any]

TEST_TIMEOUT = 120 * TIME_SCALE
WAIT = 45 * TIME_SCALE  # for what crosses both edges (the link's reconnect back-off included)
SITE_ID = "SITE-1"  # the charger's identity on A
FLEET_ID = "FLEET-7"  # its identity on B, the cloud
FLEET_PASSWORD = "fleet-7-upstream-secret"
DIRECT_ID = "B-DIRECT"  # a charger connected to B itself
CONFIGURATION = {
    "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]
}


def b_toml(data_dir: Path, ocpp_port: int) -> str:
    """Edge B, the cloud: only the chargers it knows, the site's with its password."""
    return (
        "[ocpp]\n"
        'host = "127.0.0.1"\n'
        f"port = {ocpp_port}\n"
        'unknown_chargers = "reject"\n'
        "heartbeat_interval = 60\n"
        f"call_timeout = {10 * TIME_SCALE}\n"
        "\n[web]\n"
        'host = "127.0.0.1"\n'
        "port = 0\n"
        f'api_token = "{API_TOKEN}"\n'
        "\n[storage]\n"
        f"data_dir = {json.dumps(str(data_dir))}\n"
        f"\n[chargers.{FLEET_ID}]\n"
        f"password = {json.dumps(FLEET_PASSWORD)}\n"
        "security_profile = 1\n"
        f"\n[chargers.{DIRECT_ID}]\n"
        'phases = "L1L2L3"\n'
    )


@contextlib.asynccontextmanager
async def edge_b(
    tmp_path: Path, name: str, ocpp_port: int = 0
) -> AsyncIterator[tuple[Service, Api]]:
    """Edge B as a process on tmp_path/b (the same data on every start), its log in
    tmp_path/<name>.log; `ocpp_port` 0 for any free port, else that one (a restart)."""
    config = tmp_path / "b.toml"
    config.write_text(b_toml(tmp_path / "b", ocpp_port))
    async with serve(config, tmp_path / f"{name}.log") as svc, api_client(svc.web_port) as api:
        yield svc, api


@contextlib.asynccontextmanager
async def edge_a(tmp_path: Path, b_ocpp_port: int) -> AsyncIterator[tuple[App, Api]]:
    """Edge A, in-process, the site controller; its cloud is B's OCPP endpoint."""
    text = config_toml(tmp_path / "a", call_timeout=5.0 * TIME_SCALE)
    text += (
        f'\n[upstream]\nurl = "ws://127.0.0.1:{b_ocpp_port}/ocpp"\n'
        f"authorize_timeout = {5.0 * TIME_SCALE}\n"
        f"\n[chargers.{SITE_ID}]\n"
        f'upstream_id = "{FLEET_ID}"\n'
        f"upstream_password = {json.dumps(FLEET_PASSWORD)}\n"
    )
    async with running(parse_config(tomllib.loads(text))) as (app, api):
        yield app, api


async def put_tag(api: Api, id_tag: str, status: str) -> None:
    code, body = await api.request("PUT", f"/api/id-tags/{id_tag}", {"status": status})
    assert code in (200, 201), (code, body)


async def until(api: Api, path: str, condition: Callable[[Any], bool]) -> Any:
    """GET `path` until `condition` holds for its answer; that answer."""
    last: list[Any] = []

    async def probe() -> Any:
        data = await api.get(path)
        last[:] = [data]
        return data if condition(data) else None

    try:
        return await eventually(probe, timeout=WAIT)
    except TimeoutError:
        raise AssertionError(f"GET {path} never met the condition; last: {last}") from None


def fleet_charger(chargers: list[Payload]) -> Payload:
    return next((c for c in chargers if c["id"] == FLEET_ID), {})


def connector(charger: Payload, connector_id: int) -> Payload:
    return next((c for c in charger.get("connectors", []) if c["connectorId"] == connector_id), {})


def same_time(one: str, two: str) -> bool:
    return datetime.fromisoformat(one.replace("Z", "+00:00")) == datetime.fromisoformat(
        two.replace("Z", "+00:00")
    )


def sent_payload(sent: Sent, action: str, index: int = -1) -> Payload:
    return [p for a, p in sent.messages if a == action][index]


async def site_charger_booted(api_a: Api, api_b: Api, sent: Sent) -> Payload:
    """The charger boots on A and reports its connectors; B shows it, as A's link sent it;
    A's link has the cloud's Accepted (so Authorize is asked of B)."""
    await booted(sent)
    charger = fleet_charger(
        await until(
            api_b,
            "/api/chargers",
            lambda cs: connector(fleet_charger(cs), 1).get("status") == "Available",
        )
    )
    await upstream_entry_when(
        api_a, SITE_ID, lambda e: e["connected"] and e["registration"] == "Accepted", WAIT
    )
    return charger


async def b_transaction(api_b: Api, condition: Callable[[Payload], bool]) -> Payload:
    transactions = await until(
        api_b, f"/api/transactions?chargerId={FLEET_ID}", lambda ts: any(map(condition, ts))
    )
    found: Payload = next(t for t in transactions if condition(t))
    return found


@pytest.mark.slow
async def test_a_charger_on_edge_a_lives_on_edge_b_the_cloud_and_obeys_it(tmp_path: Path) -> None:
    """Through A's cloud link, B (a separate edge-csms process) sees the charger boot with
    its vendor/model/serials/firmware, its statuses, B's verdict on its Authorize, a whole
    transaction under B's own id with every meter value and the stop; B's operator API
    then commands it: GetConfiguration comes back with the charger's answer, a CALLERROR
    of the charger comes back as that CALLERROR, and RemoteStopTransaction with B's id
    reaches the charger with A's id."""
    async with asyncio.timeout(TEST_TIMEOUT), edge_b(tmp_path, "b") as (b, api_b):
        await put_tag(api_b, "TAG-OK", "Accepted")
        await put_tag(api_b, "TAG-BLOCKED", "Blocked")
        # B's own charger takes B's first transaction id, so that B's ids and A's differ.
        async with RawCharger.connect(b.url(DIRECT_ID)) as direct:
            await direct.boot()
            start = {"connectorId": 1, "idTag": "TAG-OK", "meterStart": 0, "timestamp": now_iso()}
            direct_tx = (await direct.call("StartTransaction", start))["transactionId"]
            stop = {"transactionId": direct_tx, "meterStop": 10, "timestamp": now_iso()}
            await direct.call("StopTransaction", stop)

        async with (
            edge_a(tmp_path, b.ocpp_port) as (app, api_a),
            RawCharger.connect(ocpp_url(app, SITE_ID)) as cp,
        ):
            await put_tag(api_a, "TAG-BLOCKED", "Accepted")  # A alone would let it charge
            sent = Sent(cp)
            on_b = await site_charger_booted(api_a, api_b, sent)
            assert on_b["connected"] is True and on_b["registration"] == "Accepted", on_b
            assert {k: on_b[k] for k in ("vendor", "model", "firmwareVersion")} == {
                "vendor": BOOT["chargePointVendor"],
                "model": BOOT["chargePointModel"],
                "firmwareVersion": BOOT["firmwareVersion"],
            }, on_b
            assert on_b["serialNumber"] == BOOT["chargePointSerialNumber"], on_b
            assert on_b["chargeBoxSerialNumber"] == BOOT["chargeBoxSerialNumber"], on_b
            assert connector(on_b, 0)["status"] == "Available", on_b
            b_ids = {c["id"] for c in await api_b.get("/api/chargers")}
            assert b_ids == {FLEET_ID, DIRECT_ID}, "B knows the charger by its upstream id"

            # B's verdicts: a tag A does not know, and one B has blocked.
            conf = await sent.send("Authorize", {"idTag": "TAG-OK"})
            assert conf["idTagInfo"]["status"] == "Accepted", conf
            conf = await sent.send("Authorize", {"idTag": "TAG-BLOCKED"})
            assert conf["idTagInfo"]["status"] == "Blocked", conf

            edge_id = await charge(sent, "TAG-OK", samples=3)  # registers 1100..1300, 1400
            done = await b_transaction(api_b, lambda t: not t["active"])
            cloud_id = done["transactionId"]
            assert cloud_id not in (edge_id, direct_tx), (cloud_id, edge_id, direct_tx)
            on_a = await api_a.get(f"/api/transactions/{edge_id}")
            assert on_a["cloudTransactionId"] == cloud_id, on_a
            assert on_a["idTagStatus"] == "Accepted" and on_a["cloudIdTagStatus"] == "Accepted"
            started = sent_payload(sent, "StartTransaction")
            stopped = sent_payload(sent, "StopTransaction")
            assert done["chargerId"] == FLEET_ID and done["connectorId"] == 1, done
            assert done["idTag"] == "TAG-OK", done
            assert (done["meterStart"], done["meterStop"]) == (1000, 1400), done
            assert done["energyWh"] == 400 and done["stopReason"] == "Local", done
            assert same_time(done["startTime"], started["timestamp"]), done
            assert same_time(done["stopTime"], stopped["timestamp"]), done
            detail = await api_b.get(f"/api/transactions/{cloud_id}")
            registers = [register_of({"meterValue": [m]}) for m in detail["meterValues"]]
            assert registers == [1100, 1200, 1300, 1400], detail["meterValues"]
            sent_times = [
                p["meterValue"][0]["timestamp"] for a, p in sent.messages if a == "MeterValues"
            ]
            sent_times.append(stopped["transactionData"][0]["timestamp"])
            assert all(
                same_time(m["timestamp"], t)
                for m, t in zip(detail["meterValues"], sent_times, strict=True)
            ), detail["meterValues"]
            finishing = await until(
                api_b,
                f"/api/chargers/{FLEET_ID}",
                lambda c: connector(c, 1).get("status") == "Finishing",
            )
            assert connector(finishing, 1)["transactionId"] is None, finishing

            # B's operator commands the charger through A.
            cp.answers["GetConfiguration"] = CONFIGURATION
            code, body = await api_b.operation(
                FLEET_ID, "GetConfiguration", {"key": ["HeartbeatInterval"]}
            )
            assert (code, body) == (200, {"response": CONFIGURATION}), (code, body)
            assert ("GetConfiguration", {"key": ["HeartbeatInterval"]}) in cp.received_calls
            # Both record the answer's effect; A's audit says the cloud asked.
            for api, charger_id in ((api_b, FLEET_ID), (api_a, SITE_ID)):
                detail = await api.get(f"/api/chargers/{charger_id}")
                assert "HeartbeatInterval" in json.dumps(detail["configuration"]), detail

            # The operation's audit record is journalled behind the answer: wait for it.
            async def relayed_by_cloud() -> bool:
                events = await api_a.get(f"/api/chargers/{SITE_ID}/events?kind=Operation")
                return any(
                    e["data"].get("action") == "GetConfiguration"
                    and e["data"].get("origin") == "cloud"
                    for e in events
                )

            assert await eventually(relayed_by_cloud, timeout=WAIT)

            cp.answers["ChangeConfiguration"] = ("NotSupported", "read-only on this model")
            change = {"key": "MeterValueSampleInterval", "value": "60"}
            code, body = await api_b.operation(FLEET_ID, "ChangeConfiguration", change)
            assert code == 502, (code, body)
            assert body["error"] == "CallError" and body["errorCode"] == "NotSupported", body
            assert ("ChangeConfiguration", change) in cp.received_calls

            second = await charge(sent, "TAG-OK", meter_start=2000, samples=1, finish=False)
            running_tx = await b_transaction(api_b, lambda t: t["active"])
            assert running_tx["meterStart"] == 2000, running_tx
            cp.answers["RemoteStopTransaction"] = {"status": "Accepted"}
            code, body = await api_b.operation(
                FLEET_ID, "RemoteStopTransaction", {"transactionId": running_tx["transactionId"]}
            )
            assert (code, body) == (200, {"response": {"status": "Accepted"}}), (code, body)
            assert ("RemoteStopTransaction", {"transactionId": second}) in cp.received_calls
            await sent.send(
                "StopTransaction",
                {
                    "transactionId": second,
                    "meterStop": 2150,
                    "timestamp": now_iso(),
                    "reason": "Remote",
                },
            )
            stopped_remotely = await b_transaction(
                api_b,
                lambda t: t["transactionId"] == running_tx["transactionId"] and not t["active"],
            )
            assert stopped_remotely["stopReason"] == "Remote", stopped_remotely
            assert stopped_remotely["meterStop"] == 2150, stopped_remotely
            await upstream_entry_when(api_a, SITE_ID, lambda e: e["pending"] == 0, WAIT)
            assert (await upstream_entry(api_a, SITE_ID))["parked"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("outage", ["stopped", "killed"])
async def test_b_down_a_transaction_on_a_reaches_b_once_when_b_is_back(
    tmp_path: Path, outage: str
) -> None:
    """B (the cloud) is stopped (SIGTERM) or killed (SIGKILL); a whole transaction runs on
    A meanwhile, answered by A; B starts again on the same port and data: B gets the
    transaction once (one transaction, each meter value once, the stop), with the
    charger's own timestamps, and A's outbox is empty."""
    async with asyncio.timeout(TEST_TIMEOUT):
        async with edge_b(tmp_path, "b-first") as (b, api_b):
            port = b.ocpp_port
            await put_tag(api_b, "TAG-OK", "Accepted")
            async with edge_a(tmp_path, port) as (app, api_a):
                await put_tag(api_a, "TAG-OK", "Accepted")
                async with RawCharger.connect(ocpp_url(app, SITE_ID)) as cp:
                    sent = Sent(cp)
                    await site_charger_booted(api_a, api_b, sent)
                    if outage == "stopped":
                        assert (await b.signal(signal.SIGTERM)) == 0
                    else:
                        assert (await b.signal(signal.SIGKILL)) == -signal.SIGKILL
                    await upstream_entry_when(api_a, SITE_ID, lambda e: not e["connected"], WAIT)

                    edge_id = await charge(sent, "TAG-OK", samples=3)
                    entry = await upstream_entry(api_a, SITE_ID)
                    assert entry["pending"] >= 5, entry  # start, 3 meter values, stop

                    async with edge_b(tmp_path, "b-second", port) as (_, api_b):
                        done = await b_transaction(api_b, lambda t: not t["active"])
                        await upstream_entry_when(api_a, SITE_ID, lambda e: e["pending"] == 0, WAIT)
                        transactions = await api_b.get(f"/api/transactions?chargerId={FLEET_ID}")
                        assert len(transactions) == 1, transactions
                        detail = await api_b.get(f"/api/transactions/{done['transactionId']}")
                        on_a = await api_a.get(f"/api/transactions/{edge_id}")
        assert on_a["cloudTransactionId"] == done["transactionId"], on_a
        started = sent_payload(sent, "StartTransaction")
        stopped = sent_payload(sent, "StopTransaction")
        assert (done["meterStart"], done["meterStop"], done["energyWh"]) == (1000, 1400, 400)
        assert same_time(done["startTime"], started["timestamp"]), done
        assert same_time(done["stopTime"], stopped["timestamp"]), done
        registers = [register_of({"meterValue": [m]}) for m in detail["meterValues"]]
        assert registers == [1100, 1200, 1300, 1400], detail["meterValues"]
