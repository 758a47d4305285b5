"""`GET /api/about` and the site-wide `GET /api/events`."""

from __future__ import annotations

from edge.app import App
from tests.conftest import Api
from tests.helpers import booted, eventually


async def test_about_says_version_uptime_clock_and_disk(app: App, api: Api) -> None:
    """Version, start time and uptime, clock state, the data dir and its disk use."""
    about = await api.get("/api/about")
    assert isinstance(about["version"], str) and about["version"]
    assert about["startedAt"].endswith("Z")
    assert 0 <= about["uptimeSeconds"] < 60
    assert about["clockSynchronised"] in (True, False, None)
    assert about["dataDir"] == str(app.config.storage.data_dir.resolve())
    disk = about["disk"]
    assert disk["dataDirBytes"] > 0  # the journal and the token at least
    assert 0 < disk["freeBytes"] <= disk["totalBytes"]
    assert about["siteControl"] is False and about["cloudLink"] is False
    assert about["wss"] is False  # no [ocpp.tls]


async def test_site_events_filter_by_kind_and_charger(app: App, api: Api) -> None:
    """Events of every charger, newest first; kind, chargerId and limit filter them."""
    async with booted(app, "CP1"), booted(app, "CP2"):
        pass

    async def boots() -> list[dict[str, object]]:
        found: list[dict[str, object]] = await api.get("/api/events?kind=BootNotification")
        return found if len(found) >= 2 else []

    events = await eventually(boots)
    assert {e["charger_id"] for e in events} == {"CP1", "CP2"}
    assert {e["kind"] for e in events} == {"BootNotification"}
    only = await api.get("/api/events?chargerId=CP2&limit=1000")
    assert only and {e["charger_id"] for e in only} == {"CP2"}
    assert len(await api.get("/api/events?limit=1")) == 1
    status, body = await api.request("GET", "/api/events?limit=0")
    assert status == 400 and body["error"] == "invalid_query"
