"""The site controller's bookkeeping against the real App, a real Modbus meter and raw chargers.

The balancing behaviour (load steps, rotation, fallback) is in test_site_balancing.py;
here: what is stored where, what a reboot, a refusal, a timeout or an ignored limit
does, and what the API and metrics show.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from drivers import KNOWN_MODELS, MeterServer, serve_meter
from edge.app import App
from edge.config import ChargerSettings, Config, MeterConfig, SiteConfig
from edge.sim.charger import Answer, Payload, RawCharger
from profiles.lease import LEASE_PROFILE_ID, SAFE_PROFILE_ID
from tests.conftest import Api, make_config, running
from tests.helpers import Json, booted, eventually, iso


def site_config(data_dir: Path, meter_port: int, **site: Any) -> Config:
    settings = {
        "max_current": (32.0, 32.0, 32.0),
        "margin": 1.0,
        "fallback_current": 6.0,
        "lease_time": 4.0,
        "min_update_interval": 0.2,
        **site,
    }
    return replace(
        make_config(data_dir),
        meter=MeterConfig(port=meter_port, poll_interval=0.2, stale_after=1.5),
        site=SiteConfig(**settings),
        chargers={"CP1": ChargerSettings(), "CP2": ChargerSettings()},
    )


@pytest.fixture
async def meter() -> AsyncIterator[MeterServer]:
    async with serve_meter(KNOWN_MODELS["sdm630"]) as server:
        await server.set(current_a=(2.0, 2.0, 2.0))
        yield server


def accepting(received: list[Payload]) -> dict[str, Answer]:
    """Answers SetChargingProfile Accepted, keeping what it gets in `received`."""

    def answer(payload: Payload) -> Payload:
        received.append(payload["csChargingProfiles"])
        return {"status": "Accepted"}

    return {"SetChargingProfile": answer}


async def connect(
    stack: AsyncExitStack, app: App, charger_id: str, answers: dict[str, Answer]
) -> RawCharger:
    """A booted charger with one connector, answering with `answers`, open until `stack` closes."""
    return await stack.enter_async_context(booted(app, charger_id, available=(1,), answers=answers))


async def controlled(
    stack: AsyncExitStack, app: App, charger_id: str
) -> tuple[RawCharger, list[Payload]]:
    """A charger accepting every profile, once under site control (it holds a lease);
    also the list of the profiles it received."""
    received: list[Payload] = []
    cp = await connect(stack, app, charger_id, accepting(received))
    await until(lambda: LEASE_PROFILE_ID in ids(received))
    return cp, received


def lease_limits(received: list[Payload]) -> list[float]:
    return [
        p["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]
        for p in received
        if p["chargingProfileId"] == LEASE_PROFILE_ID
    ]


async def start(cp: RawCharger, api: Api, tag: str) -> int:
    code, _ = await api.request("PUT", f"/api/id-tags/{tag}", {"status": "Accepted"})
    assert code in (200, 201)
    conf = await cp.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": tag, "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"},
    )
    await cp.status(1, "Charging")
    return int(conf["transactionId"])


# `eventually` at the site controller's pace: leases and meter polls take seconds.
until = partial(eventually, timeout=8.0, interval=0.05)


async def site_entry(api: Api, charger_id: str) -> Json:
    entry: Json = await api.get(f"/api/chargers/{charger_id}/site")
    return entry


def ids(received: list[Payload]) -> list[int]:
    return [p["chargingProfileId"] for p in received]


async def test_the_lease_lives_in_memory_and_the_safe_profile_on_disk(
    tmp_path: Path, meter: MeterServer
) -> None:
    """A lease changes every few seconds: writing it to the SD card each time would wear it."""
    config = site_config(tmp_path, meter.port)
    async with running(config) as (app, api), AsyncExitStack() as stack:
        _, received = await controlled(stack, app, "CP1")
        assert ids(received)[0] == SAFE_PROFILE_ID  # the safe profile goes first
        detail = await api.get("/api/chargers/CP1")
        shown = {p["chargingProfile"]["chargingProfileId"] for p in detail["chargingProfiles"]}
        assert shown == {SAFE_PROFILE_ID, LEASE_PROFILE_ID}
        await app.services.chargers.persist()
        stored = orjson.loads((tmp_path / "chargers.json").read_bytes())
        docs = [d for d in stored["chargers"].values() if d["id"] == "CP1"]
        kept = [p["chargingProfile"]["chargingProfileId"] for p in docs[0]["chargingProfiles"]]
        assert kept == [SAFE_PROFILE_ID]
        # The predicted schedule knows the lease: an idle charger is held at 0 A.
        schedule = await api.get("/api/chargers/CP1/schedule?connectorId=1&duration=2")
        assert schedule["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 0.0


async def test_a_reboot_gets_the_safe_profile_again(tmp_path: Path, meter: MeterServer) -> None:
    config = site_config(tmp_path, meter.port)
    async with running(config) as (app, _), AsyncExitStack() as stack:
        cp, received = await controlled(stack, app, "CP1")
        received.clear()
        await cp.boot()
        await until(lambda: ids(received)[:2] == [SAFE_PROFILE_ID, LEASE_PROFILE_ID])


async def test_a_charger_without_smart_charging_is_budgeted_at_its_maximum(
    tmp_path: Path, meter: MeterServer
) -> None:
    """NotSupported ends the strategies: the others get what is left beside its maximum."""
    config = site_config(tmp_path, meter.port, max_current=(63.0, 63.0, 63.0))
    config = replace(
        config,
        chargers={"CP1": ChargerSettings(max_current=20.0), "CP2": ChargerSettings()},
    )
    async with running(config) as (app, api), AsyncExitStack() as stack:
        unsupported: dict[str, Answer] = {
            "SetChargingProfile": ("NotSupported", "no smart charging")
        }
        cp1 = await connect(stack, app, "CP1", unsupported)
        cp2 = await connect(stack, app, "CP2", accepting([]))
        await start(cp1, api, "TAG1")
        await start(cp2, api, "TAG2")
        await until(lambda: cp1.received_calls and True)

        async def settled() -> Json:
            entry = await site_entry(api, "CP2")
            return entry if entry["leaseA"] in (32.0, 40.0) else {}

        # 63 - 1 margin - 2 meter (nothing drawn is known) - 20 reserved for CP1 = 40,
        # capped at CP2's 32 A maximum.
        entry = await until(settled)
        assert entry["leaseA"] == 32.0
        one = await site_entry(api, "CP1")
        assert one["controllable"] is False and one["strategy"] is None
        assert any("NotSupported" in q for q in one["quirks"])
        sets = [a for a, _ in cp1.received_calls if a == "SetChargingProfile"]
        assert len(sets) == 1  # learned at once, not retried blindly
        await app.services.chargers.persist()
    # The lesson survives a restart.
    async with running(config) as (app, api), AsyncExitStack() as stack:
        cp1 = await connect(stack, app, "CP1", unsupported)
        await asyncio.sleep(0.8)
        assert [a for a, _ in cp1.received_calls if a == "SetChargingProfile"] == []
        assert (await site_entry(api, "CP1"))["controllable"] is False


async def test_a_silent_charger_gets_one_call_at_a_time_and_backs_off(
    tmp_path: Path, meter: MeterServer
) -> None:
    config = replace(site_config(tmp_path, meter.port), ocpp=replace(make_config(tmp_path).ocpp,
                                                                     call_timeout=0.5))  # fmt: skip
    async with running(config) as (app, api), AsyncExitStack() as stack:
        cp = await connect(stack, app, "CP1", {"SetChargingProfile": "silent"})
        await asyncio.sleep(3.0)
        sets = [a for a, _ in cp.received_calls if a == "SetChargingProfile"]
        # 0.5 s timeout, then 2, 4 s back-off: a handful, never a call per cycle.
        assert 1 <= len(sets) <= 3
        entry = await site_entry(api, "CP1")
        assert "no answer" in (entry["lastError"] or "")
        assert entry["controllable"] is True  # a timeout is not a refusal


async def test_a_charger_drawing_above_its_limit_is_learned(
    tmp_path: Path, meter: MeterServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A charger that ignores small limits: its floor becomes the minimum it is given."""
    monkeypatch.setattr("edge.site.controller.REACTION_GRACE", 0.0)
    config = site_config(tmp_path, meter.port)
    config = replace(config, chargers={"CP1": ChargerSettings(max_current=10.0)})
    async with running(config) as (app, api), AsyncExitStack() as stack:
        received: list[Payload] = []
        cp = await connect(stack, app, "CP1", accepting(received))
        transaction_id = await start(cp, api, "TAG1")

        await until(lambda: any(limit > 0 for limit in lease_limits(received)))
        await meter.set(current_a=(19.0, 19.0, 19.0))  # 2 A base + 17 A: above its 10 A

        for _ in range(4):
            await cp.call(
                "MeterValues",
                {
                    "connectorId": 1,
                    "transactionId": transaction_id,
                    "meterValue": [
                        {
                            "timestamp": "2026-01-01T00:00:10Z",
                            "sampledValue": [
                                {"value": "17.0", "measurand": "Current.Import", "phase": ph,
                                 "unit": "A"}
                                for ph in ("L1", "L2", "L3")
                            ],
                        }
                    ],
                },
            )  # fmt: skip
            await asyncio.sleep(0.05)
        entry = await site_entry(api, "CP1")
        assert any("draws 17.0 A" in q for q in entry["quirks"]), entry
        doc = app.services.chargers.get("CP1")
        assert doc is not None and doc.doc["siteControl"]["minObeyedA"] == 17.0


async def test_metrics_and_the_journal_tell_the_site_state(
    tmp_path: Path, meter: MeterServer
) -> None:
    config = site_config(tmp_path, meter.port)
    async with running(config) as (app, api), AsyncExitStack() as stack:
        await controlled(stack, app, "CP1")
        metrics = app.services.metrics
        await until(lambda: metrics.value("edge_site_leases_sent_total", reason="refresh") > 0)
        url = f"http://127.0.0.1:{app.web_port}/metrics"
        headers = {"Authorization": "Bearer " + app.api_token}
        async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as r:
            text = await r.text()
        assert "edge_site_fallback 0" in text
        assert 'edge_site_grid_current_amperes{phase="L1"} 2' in text
        assert 'edge_site_allocated_amperes{charger="CP1"} 0' in text
        assert 'edge_site_leases_sent_total{reason="refresh"}' in text
        await meter.stop()
        await until(lambda: app.site is not None and app.site.grid.fallback)
        site = await api.get("/api/site")
        assert site["state"] == "fallback" and site["fallback"]["active"] is True
        assert site["meter"]["lastError"]
        await meter.start()
        await until(lambda: app.site is not None and not app.site.grid.fallback)

        def fallback_events() -> list[object]:
            journal = app.services.journal
            return [e["data"].get("active") for e in journal.events(kind="SiteFallback")]

        await until(lambda: fallback_events() == [False, True])  # newest first


async def test_refreshes_never_hold_up_a_raise(tmp_path: Path, meter: MeterServer) -> None:
    """Refreshes (every lease_time / 2 = 1 s) come faster than the raise spacing (3 s): the
    spacing counts from the last change of value, so the raise still goes out."""
    config = site_config(tmp_path, meter.port, lease_time=2.0, min_update_interval=3.0)
    async with running(config) as (app, api), AsyncExitStack() as stack:
        cp, received = await controlled(stack, app, "CP1")
        await start(cp, api, "TAG1")

        await until(lambda: max(lease_limits(received)) > 0, timeout=8.0)
        assert max(lease_limits(received)) == 29.0  # 32 - 1 margin - 2 on the meter


async def test_a_charger_clock_ahead_of_ours_is_reported(
    tmp_path: Path, meter: MeterServer
) -> None:
    """Leases end by validTo on the charger's clock: one running a minute ahead would drop
    to its safe value before every refresh. The technician is told."""
    config = site_config(tmp_path, meter.port)
    async with running(config) as (app, api), AsyncExitStack() as stack:
        cp, _ = await controlled(stack, app, "CP1")
        transaction_id = await start(cp, api, "TAG1")
        ahead = datetime.now(UTC) + timedelta(seconds=60)
        for _ in range(5):
            await cp.call(
                "MeterValues",
                {
                    "connectorId": 1,
                    "transactionId": transaction_id,
                    "meterValue": [
                        {
                            "timestamp": iso(ahead),
                            "sampledValue": [
                                {"value": "6.0", "measurand": "Current.Import", "phase": "L1",
                                 "unit": "A"}
                            ],
                        }
                    ],
                },
            )  # fmt: skip
        entry = await site_entry(api, "CP1")
        assert entry["clockBehindS"] == pytest.approx(-60.0, abs=2.0)
        assert any("ahead of the controller" in q for q in entry["quirks"]), entry["quirks"]


async def test_an_unexpected_meter_failure_is_reported_and_polling_goes_on(
    tmp_path: Path, meter: MeterServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A meter read that fails with an error the driver did not map is a failed read: the
    site says so (API, log) and keeps polling, so it recovers when the meter does."""
    config = site_config(tmp_path, meter.port)
    async with running(config) as (app, api):
        site = app.site
        assert site is not None
        await until(lambda: site.grid.reads_ok > 0)
        real_read = site.grid.meter.read
        failures = 0

        async def broken_read() -> Any:
            nonlocal failures
            failures += 1
            raise RuntimeError("driver bug")

        monkeypatch.setattr(site.grid.meter, "read", broken_read)
        await until(lambda: failures >= 3)
        body = await api.get("/api/site")
        assert "RuntimeError('driver bug')" in body["meter"]["lastError"]
        assert body["meter"]["readsFailed"] >= 3
        monkeypatch.setattr(site.grid.meter, "read", real_read)
        ok = site.grid.reads_ok
        await until(lambda: site.grid.reads_ok > ok and site.grid.error is None)
