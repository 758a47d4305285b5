"""`limitedBy` in `GET /api/site` against the real App, a real Modbus meter and raw chargers."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path

from drivers import MeterServer
from edge.config import ChargerSettings
from tests.conftest import make_config, running
from tests.helpers import Json
from tests.integration.test_site_control import controlled, meter, site_config, start, until

__all__ = ["meter"]  # the fixture, used by name


def entry(site: Json, charger_id: str) -> Json:
    found: Json = next(c for c in site["chargers"] if c["chargerId"] == charger_id)
    return found


async def test_each_charger_says_what_holds_it(tmp_path: Path, meter: MeterServer) -> None:
    """Two 1-phase EVs on L1 (32 A fuse, 1 A margin, 2 A base): the one under a 10 A
    operator cap says cap:operator, the other gets the rest of L1 and says fuse:L1; a
    connected charger without a session says idle, one never connected says offline."""
    config = site_config(tmp_path, meter.port)
    config = replace(
        config,
        chargers={
            "CP1": ChargerSettings(phases="L1"),
            "CP2": ChargerSettings(phases="L1"),
            "CP3": ChargerSettings(),
            "CP4": ChargerSettings(),
        },
    )
    async with running(config) as (app, api), AsyncExitStack() as stack:
        cp1, _ = await controlled(stack, app, "CP1")
        cp2, _ = await controlled(stack, app, "CP2")
        await controlled(stack, app, "CP3")
        code, body = await api.request(
            "POST", "/api/chargers/CP1/limits", {"connectorId": 0, "limit": 10}
        )
        assert code == 200, body
        await start(cp1, api, "TAG1")
        await start(cp2, api, "TAG2")

        async def settled() -> Json | None:
            site: Json = await api.get("/api/site")
            if entry(site, "CP2")["allocationA"] == 19.0:
                return site
            return None

        site = await until(settled)
        assert entry(site, "CP1")["limitedBy"] == ["cap:operator"]
        assert entry(site, "CP2")["limitedBy"] == ["fuse:L1"]
        assert entry(site, "CP3")["limitedBy"] == ["idle"]
        assert entry(site, "CP4")["limitedBy"] == ["offline"]
        assert entry(site, "CP2")["usedPhases"] == ["L1"]
        one = await api.get("/api/chargers/CP1/site")
        assert one["limitedBy"] == ["cap:operator"]


async def test_site_history_is_served_from_memory(tmp_path: Path, meter: MeterServer) -> None:
    """GET /api/site/history has a point a second with the meter's currents; bad
    queries are 400, and without a meter it is 404."""
    async with running(site_config(tmp_path, meter.port)) as (_app, api):

        async def points() -> Json | None:
            history: Json = await api.get("/api/site/history?seconds=60")
            return history if len(history["t"]) >= 2 else None

        history = await until(points)
        assert history["resolution"] == 1 and history["seconds"] == 60
        assert history["gridA"][0][-1] == 2.0
        assert history["maxCurrentA"] == [32.0, 32.0, 32.0]
        assert history["t"][-1] - history["t"][-2] >= 0.9
        for query in ("seconds=0", "seconds=86401", "seconds=x"):
            code, body = await api.request("GET", f"/api/site/history?{query}")
            assert code == 400 and body["error"] == "invalid_query", body
        day = await api.get("/api/site/history?seconds=86400")
        assert day["resolution"] == 60
    async with running(make_config(tmp_path / "plain")) as (_app, api):
        code, body = await api.request("GET", "/api/site/history")
        assert code == 404 and body["error"] == "no_site_control"
