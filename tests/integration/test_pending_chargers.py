"""How many unknown identities may wait for approval (`[ocpp] max_pending_chargers`), and
an operator removing a charger from the registry (`DELETE /api/chargers/{id}`).

Against the real App on 127.0.0.1 with real WebSocket clients.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.exceptions import InvalidStatus

from drivers import KNOWN_MODELS, serve_meter
from edge.app import App
from edge.config import ChargerSettings, Config, MeterConfig, SiteConfig
from edge.server import PENDING_FULL_EVENTS_PER_MINUTE
from edge.sim.charger import RawCharger
from tests.chargepoint import basic_auth
from tests.conftest import API_TOKEN, TIME_SCALE, Api, make_config, ocpp_url, running
from tests.helpers import booted, eventually, eventually_listed
from tests.upstream.cloud import Cloud
from tests.upstream.test_upstream import edge

TIMEOUT = 15 * TIME_SCALE
PASSWORD = "0123456789abcdef"


def pending_config(tmp_path: Path, cap: int, **chargers: ChargerSettings) -> Config:
    base = make_config(tmp_path / "data", unknown_chargers="pending", max_pending_chargers=cap)
    return dataclasses.replace(base, chargers=dict(chargers))


async def refused_status(app: App, charger_id: str) -> int:
    """The HTTP status of a handshake as `charger_id` that the server must refuse."""
    with pytest.raises(InvalidStatus) as info:
        async with RawCharger.connect(ocpp_url(app, charger_id)):
            pass
    return info.value.response.status_code


async def boot_status(app: App, charger_id: str, **connect: Any) -> str:
    """Connect as `charger_id`, boot, disconnect: the BootNotification's status."""
    async with RawCharger.connect(ocpp_url(app, charger_id), **connect) as cp:
        return str((await cp.boot())["status"])


async def listed(api: Api) -> list[str]:
    return [c["id"] for c in await api.get("/api/chargers")]


def refused_full(app: App) -> float:
    return app.services.metrics.value("edge_connections_refused_total", reason="pending_full")


async def disconnected(api: Api, charger_id: str) -> None:
    async def probe() -> bool:
        status, body = await api.request("GET", f"/api/chargers/{charger_id}")
        return status == 200 and body["connected"] is False

    await eventually(probe)


# --- the cap ------------------------------------------------------------------------------


async def test_cap_refuses_the_next_unknown_identity_with_404(tmp_path: Path) -> None:
    """Two pending at most: a third unknown identity gets 404 and is not registered; known,
    operator-registered and configured chargers still connect, a pending one reconnects;
    approving or deleting a pending charger makes room again."""
    config = pending_config(tmp_path, 2, CONF1=ChargerSettings())
    async with asyncio.timeout(TIMEOUT), running(config) as (app, api):
        # Configured, even when an operator put it back to Pending: never counted.
        assert await boot_status(app, "CONF1") == "Accepted"
        status, _ = await api.request("PUT", "/api/chargers/CONF1", {"registration": "Pending"})
        assert status == 200
        status, _ = await api.request("PUT", "/api/chargers/KNOWN1", {"registration": "Accepted"})
        assert status == 201

        assert await boot_status(app, "NEW1") == "Pending"
        assert await boot_status(app, "NEW2") == "Pending"
        assert await refused_status(app, "NEW3") == 404
        assert "NEW3" not in await listed(api)
        assert refused_full(app) == 1

        # Known ones are not affected: a pending one, an accepted one, a configured one.
        assert await boot_status(app, "NEW1") == "Pending"
        assert await boot_status(app, "KNOWN1") == "Accepted"
        assert await boot_status(app, "CONF1") == "Pending"
        assert refused_full(app) == 1

        # Approving one makes room for one.
        status, _ = await api.request("PUT", "/api/chargers/NEW1", {"registration": "Accepted"})
        assert status == 200
        assert await boot_status(app, "NEW3") == "Pending"
        assert await refused_status(app, "NEW4") == 404

        # Deleting one makes room for one.
        await disconnected(api, "NEW2")
        status, body = await api.request("DELETE", "/api/chargers/NEW2")
        assert (status, body) == (200, {"deleted": "NEW2"})
        assert await boot_status(app, "NEW4") == "Pending"
        assert await refused_status(app, "NEW5") == 404
        assert refused_full(app) == 3
        assert sorted(await listed(api)) == ["CONF1", "KNOWN1", "NEW1", "NEW3", "NEW4"]


async def test_concurrent_handshakes_do_not_overshoot_the_cap(tmp_path: Path) -> None:
    """Twenty unknown identities at once against three places: three get in, also when
    the handshakes' security checks take a while (they all pass the cap's check before
    the first session registers its charger)."""
    config = pending_config(tmp_path, 3)
    async with asyncio.timeout(TIMEOUT), running(config) as (app, api):
        server = app._ocpp
        assert server is not None
        admit = server._admit

        async def slow_admit(*args: Any) -> Any:
            await asyncio.sleep(0.2)
            return await admit(*args)

        server._admit = slow_admit  # type: ignore[method-assign]

        async def attempt(n: int) -> int:
            try:
                async with RawCharger.connect(ocpp_url(app, f"RUSH{n}")) as cp:
                    await cp.boot()
            except InvalidStatus as err:
                return err.response.status_code
            return 101

        results = await asyncio.gather(*(attempt(n) for n in range(20)))
        assert sorted(results) == [101] * 3 + [404] * 17, results
        assert len(await listed(api)) == 3


async def test_a_flood_of_refusals_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No place at all (0): every unknown identity gets 404; one warning, a bounded number
    of security events, every refusal counted."""
    flood = PENDING_FULL_EVENTS_PER_MINUTE + 10
    config = pending_config(tmp_path, 0)
    with caplog.at_level(logging.INFO):
        async with asyncio.timeout(TIMEOUT), running(config) as (app, api):
            for n in range(flood):
                assert await refused_status(app, f"JUNK{n}") == 404
            assert refused_full(app) == flood
            assert await listed(api) == []

            async def events() -> list[dict[str, Any]]:
                found: list[dict[str, Any]] = await api.get("/api/security/events?limit=1000")
                ours = [e for e in found if e["type"] == "PendingChargersFull"]
                return ours if len(ours) >= PENDING_FULL_EVENTS_PER_MINUTE else []

            found = await eventually(events)
            assert len(found) == PENDING_FULL_EVENTS_PER_MINUTE
            assert all(e["chargerId"] is None for e in found)  # junk names no charger
            assert "from 127.0.0.1:" in found[0]["techInfo"]
            text = await (await api.session.get(api.base + "/metrics")).text()
            assert f'edge_connections_refused_total{{reason="pending_full"}} {flood}' in text
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "edge.server" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1, warnings
    assert "max_pending_chargers" in warnings[0] and "JUNK0" in warnings[0]


async def test_the_cap_does_not_apply_to_the_other_policies(tmp_path: Path) -> None:
    """With "accept", max_pending_chargers = 0 refuses nobody."""
    base = make_config(tmp_path / "data", unknown_chargers="accept", max_pending_chargers=0)
    async with asyncio.timeout(TIMEOUT), running(base) as (app, _):
        assert await boot_status(app, "ANY1") == "Accepted"
        assert refused_full(app) == 0


# --- DELETE /api/chargers/{id} ------------------------------------------------------------


async def test_delete_answers_404_409_and_200(tmp_path: Path) -> None:
    """404 for an unknown charger; 409 while connected, and while a transaction is
    active; 200 once it is gone, and the charger is gone from the API."""
    config = make_config(tmp_path / "data")
    async with asyncio.timeout(TIMEOUT), running(config) as (app, api):
        status, body = await api.request("DELETE", "/api/chargers/NOBODY")
        assert status == 404 and isinstance(body, dict) and "error" in body

        status, _ = await api.request("PUT", "/api/id-tags/TAG1", {"status": "Accepted"})
        assert status in (200, 201)
        async with RawCharger.connect(ocpp_url(app, "DEL1")) as cp:
            assert (await cp.boot())["status"] == "Accepted"
            status, body = await api.request("DELETE", "/api/chargers/DEL1")
            assert status == 409 and body["error"] == "connected", body
            started = await cp.call(
                "StartTransaction",
                {"connectorId": 1, "idTag": "TAG1", "meterStart": 0,
                 "timestamp": "2026-01-01T00:00:00Z"},
            )  # fmt: skip
            tx = int(started["transactionId"])
        await disconnected(api, "DEL1")
        status, body = await api.request("DELETE", "/api/chargers/DEL1")
        assert status == 409 and body["error"] == "active_transaction", body
        assert body["transactionIds"] == [tx]

        async with RawCharger.connect(ocpp_url(app, "DEL1")) as cp:
            await cp.call(
                "StopTransaction",
                {"transactionId": tx, "meterStop": 1000, "timestamp": "2026-01-01T01:00:00Z"},
            )
        await disconnected(api, "DEL1")
        status, body = await api.request("DELETE", "/api/chargers/DEL1")
        assert (status, body) == (200, {"deleted": "DEL1"})
        assert "DEL1" not in await listed(api)
        status, _ = await api.request("GET", "/api/chargers/DEL1")
        assert status == 404
        status, _ = await api.request("DELETE", "/api/chargers/DEL1")
        assert status == 404

        # The records stay: its journal, with the deletion, and its transaction.
        events = await eventually_listed(api, "/api/events?chargerId=DEL1&kind=ChargerDeleted")
        assert events[0]["data"]["registration"] == "Accepted"
        assert await api.get("/api/events?chargerId=DEL1&kind=Connected")
        transactions = await api.get("/api/transactions?chargerId=DEL1")
        rows = transactions["transactions"] if isinstance(transactions, dict) else transactions
        assert any(t["transactionId"] == tx for t in rows), transactions


async def test_a_deleted_charger_connects_again_as_new(tmp_path: Path) -> None:
    """Deleted, the identity is new again: Pending under the pending policy, its password
    and profile forgotten, its first sight renewed; and it survives a restart that way."""
    config = pending_config(tmp_path, 5)
    async with asyncio.timeout(TIMEOUT), running(config) as (app, api):
        status, _ = await api.request(
            "PUT", "/api/chargers/OLD1", {"registration": "Accepted", "password": PASSWORD}
        )
        assert status == 201
        detail = await api.get("/api/chargers/OLD1")
        assert detail["security"]["password"] is True and detail["security"]["profile"] == 1
        assert await refused_status(app, "OLD1") == 401  # its password is required
        status, _ = await api.request("DELETE", "/api/chargers/OLD1")
        assert status == 200

        assert await boot_status(app, "OLD1") == "Pending"
        detail = await api.get("/api/chargers/OLD1")
        assert detail["registration"] == "Pending"
        assert detail["security"]["password"] is False and detail["security"]["profile"] == 0
        status, _ = await api.request("DELETE", "/api/chargers/OLD1")
        assert status == 200
    async with asyncio.timeout(TIMEOUT), running(config) as (app, api):
        assert await listed(api) == []  # the removal is on disk


async def test_a_configured_charger_deleted_comes_back(tmp_path: Path) -> None:
    """A charger of `[chargers.*]` may be deleted; it comes back Accepted at its next
    connection, still with its configured password."""
    settings = ChargerSettings(password=PASSWORD, security_profile=1)
    config = pending_config(tmp_path, 5, CONF2=settings)
    async with asyncio.timeout(TIMEOUT), running(config) as (app, api):
        auth = {"headers": basic_auth("CONF2", PASSWORD)}
        assert await boot_status(app, "CONF2", **auth) == "Accepted"
        await disconnected(api, "CONF2")
        status, _ = await api.request("DELETE", "/api/chargers/CONF2")
        assert status == 200
        assert "CONF2" not in await listed(api)
        assert await refused_status(app, "CONF2") == 401  # the configured password holds
        assert await boot_status(app, "CONF2", **auth) == "Accepted"


async def test_a_deleted_charger_leaves_site_control(tmp_path: Path) -> None:
    """Under site control, a deleted charger disappears from `GET /api/site` (and the
    next control cycle does not bring it back)."""
    async with serve_meter(KNOWN_MODELS["sdm630"]) as meter, AsyncExitStack() as stack:
        await meter.set(current_a=(2.0, 2.0, 2.0))
        config = dataclasses.replace(
            make_config(tmp_path / "data"),
            meter=MeterConfig(port=meter.port, poll_interval=0.2, stale_after=1.5),
            site=SiteConfig(max_current=(32.0, 32.0, 32.0), margin=1.0, fallback_current=6.0),
        )
        app, api = await stack.enter_async_context(running(config))
        async with asyncio.timeout(TIMEOUT):
            answers = {"SetChargingProfile": {"status": "Accepted"}}
            async with booted(app, "SITE1", available=(1,), answers=answers):

                async def site_ids() -> list[str]:
                    site = await api.get("/api/site")
                    return [c["chargerId"] for c in site["chargers"]]

                async def controlled() -> bool:
                    return "SITE1" in await site_ids()

                await eventually(controlled)
            await disconnected(api, "SITE1")
            status, _ = await api.request("DELETE", "/api/chargers/SITE1")
            assert status == 200

            async def gone() -> bool:
                return "SITE1" not in await site_ids()

            await eventually(gone)
            await asyncio.sleep(0.5)  # a couple of control cycles
            assert "SITE1" not in await site_ids()


async def test_the_live_page_hears_of_a_deletion(tmp_path: Path) -> None:
    """`GET /api/live` sends `chargerRemoved` for a deleted charger, and its next snapshot
    no longer lists it."""
    config = make_config(tmp_path / "data")
    async with asyncio.timeout(TIMEOUT), running(config) as (app, api):
        assert await boot_status(app, "LIVE1") == "Accepted"
        await disconnected(api, "LIVE1")
        url = f"{api.base}/api/live"
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        async with api.session.ws_connect(url, headers=headers) as ws:
            snapshot = orjson.loads((await ws.receive()).data)
            assert [c["id"] for c in snapshot["chargers"]] == ["LIVE1"]
            status, _ = await api.request("DELETE", "/api/chargers/LIVE1")
            assert status == 200
            while True:
                message = orjson.loads((await ws.receive()).data)
                if message["type"] == "chargerRemoved":
                    break
            assert message["chargerId"] == "LIVE1" and message["seq"] > snapshot["seq"]
        async with api.session.ws_connect(url, headers=headers) as ws:
            snapshot = orjson.loads((await ws.receive()).data)
            assert snapshot["chargers"] == []


async def test_a_deleted_charger_leaves_the_upstream_list(tmp_path: Path) -> None:
    """With a cloud link, a deleted charger whose messages the cloud has all got is no
    longer listed in `GET /api/upstream`."""
    async with Cloud() as cloud, edge(tmp_path, cloud) as (app, api):
        async with asyncio.timeout(30 * TIME_SCALE):
            assert await boot_status(app, "UP1") == "Accepted"
            await disconnected(api, "UP1")

            async def upstream_ids(idle: bool = False) -> list[str]:
                body = await api.get("/api/upstream")
                return [
                    c["id"]
                    for c in body["chargers"]
                    if not idle or (c["pending"] == 0 and not c["connected"])
                ]

            async def delivered() -> bool:
                return "UP1" in await upstream_ids(idle=True)

            await eventually(delivered, timeout=15 * TIME_SCALE)
            assert "BootNotification" in cloud.actions("UP1")
            status, _ = await api.request("DELETE", "/api/chargers/UP1")
            assert status == 200

            async def gone() -> bool:
                return "UP1" not in await upstream_ids()

            await eventually(gone)
