"""The technician's page in a real headless Chromium, against a running App with a real
Modbus meter and real WebSocket chargers (`RawCharger`).

Screenshots of the main views are taken on every run; with ``EDGE_SCREENSHOTS=1`` they go
to docs/screenshots/ (kept in the repository for the README, looked at by people, never
compared pixel by pixel), otherwise to a temporary directory, so a test run leaves the
checkout as it was.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from drivers import MeterServer
from edge.app import App
from edge.config import ChargerSettings
from edge.sim.charger import RawCharger
from tests.conftest import API_TOKEN, Api, running
from tests.helpers import booted, eventually, now_iso
from tests.integration.test_site_control import meter, site_config, start
from tests.web.conftest import LAPTOP, PHONE, open_page

pytestmark = pytest.mark.browser
expect: Any = pytest.importorskip("playwright.async_api").expect

__all__ = ["meter"]  # the fixture, used by name

SHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("EDGE_SCREENSHOTS")
    else Path(tempfile.gettempdir()) / "edge-csms-screenshots"
)


async def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.evaluate("window.scrollTo(0, 0)")  # the sticky header at the top
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def report_current(cp: RawCharger, transaction_id: int, amps: float) -> None:
    """A MeterValues with Current.Import on L1, as a charger reports its EV's draw."""
    sample = {"value": f"{amps}", "measurand": "Current.Import", "phase": "L1", "unit": "A"}
    await cp.call(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": transaction_id,
            "meterValue": [{"timestamp": now_iso(), "sampledValue": [sample]}],
        },
    )


@asynccontextmanager
async def site(
    tmp_path: Path, meter: MeterServer, *, unknown_chargers: str = "accept"
) -> AsyncIterator[tuple[App, Api, dict[str, RawCharger]]]:
    """A site with a meter (32 A fuse) and two chargers online: CP1 charging a 1-phase EV
    on L1 at 10 A, CP2 available (it answers Reset, GetConfiguration and ChangeAvailability);
    other identities handled per `unknown_chargers`."""
    config = site_config(tmp_path, meter.port)
    config = replace(
        config,
        chargers={"CP1": ChargerSettings(phases="L1"), "CP2": ChargerSettings()},
        ocpp=replace(config.ocpp, unknown_chargers=unknown_chargers),
    )
    await meter.set(current_a=(12.0, 4.0, 3.0))
    answers: Any = {
        "SetChargingProfile": {"status": "Accepted"},
        "Reset": {"status": "Accepted"},
        "ChangeAvailability": {"status": "Accepted"},
        "GetConfiguration": {
            "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "60"}]
        },
    }
    async with running(config) as (app, api), AsyncExitStack() as stack:
        cps = {}
        for cid in ("CP1", "CP2"):
            cps[cid] = await stack.enter_async_context(
                booted(app, cid, available=(0, 1), answers=answers)
            )
        # The controller drops draws of a charger it has not taken under control yet.
        await eventually(lambda: app.site is not None and "CP1" in app.site.controls)
        tx = await start(cps["CP1"], api, "TAG1")
        await report_current(cps["CP1"], tx, 10.0)
        yield app, api, cps


async def test_login_wrong_password_then_logout(app: App, browser: Any) -> None:
    """Not logged in, the page asks for the password; a wrong one is refused and said
    so; the right one opens the page; About's logout closes it again."""
    async with open_page(browser, app, login=False) as (page, watch):
        await page.goto("/")
        form = page.get_by_test_id("login")
        await expect(form).to_be_visible()
        await page.fill("input[name=password]", "not-the-password")
        await page.click("button[type=submit]")
        await expect(page.get_by_test_id("login-error")).to_have_text("wrong password")
        # Chromium logs the 401 of the failed login itself; that one is expected.
        watch.errors[:] = [e for e in watch.errors if "401" not in e]
        await page.fill("input[name=password]", API_TOKEN)
        await page.click("button[type=submit]")
        await expect(page.get_by_test_id("link")).to_have_text("live")
        await page.get_by_test_id("nav-about").click()
        await expect(page.get_by_test_id("version")).to_contain_text("edge-csms")
        await shot(page, "about")
        await page.get_by_test_id("logout").click()
        await expect(form).to_be_visible()
        cookies = await page.context.cookies()
        assert not [c for c in cookies if c["name"] == "edge_session"]


async def test_views_render_real_data(tmp_path: Path, meter: MeterServer, browser: Any) -> None:
    """Overview (phase bars, meter, why), chargers (status, draw, why in words), plot
    (a uPlot canvas from the history), events and transactions all show what the App
    knows; nothing wider than a phone's 375 px."""
    async with site(tmp_path, meter) as (app, _api, _cps), open_page(browser, app) as (page, _):
        await page.goto("/")
        await expect(page.get_by_test_id("site-state")).to_have_text("normal")
        await expect(page.get_by_test_id("phase-L1")).to_contain_text("12.0 A of 32 A")
        await expect(page.get_by_test_id("counts")).to_contain_text("2 of 2 online")
        await shot(page, "overview-phone")
        await page.get_by_test_id("nav-chargers").click()
        await expect(page.get_by_test_id("status-CP1-1")).to_contain_text("Charging")
        await expect(page.get_by_test_id("status-CP2-1")).to_contain_text("Available")
        await expect(page.get_by_test_id("why-CP2")).to_have_text("no session")
        await expect(page.get_by_test_id("charger-CP1")).to_contain_text("draws 10.0 A")
        await expect(page.get_by_test_id("why-CP1")).not_to_be_empty()
        await shot(page, "chargers-phone")
        for view in ("overview", "chargers"):
            await page.get_by_test_id(f"nav-{view}").click()
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], (view, width)
        await page.get_by_test_id("nav-plot").click()
        await expect(page.locator("[data-testid=plot] canvas")).to_have_count(1)
        await expect(page.locator(".u-legend")).to_contain_text("L1")
        await page.get_by_test_id("nav-events").click()
        await expect(page.get_by_test_id("events")).to_contain_text("BootNotification")
        await page.get_by_test_id("nav-transactions").click()
        await expect(page.get_by_test_id("transactions")).to_contain_text("TAG1")
        await page.set_viewport_size(LAPTOP)
        await page.get_by_test_id("nav-plot").click()
        await expect(page.locator("[data-testid=plot] canvas")).to_have_count(1)
        await asyncio.sleep(1.5)  # a few live points
        await shot(page, "plot-laptop")
        await page.get_by_test_id("nav-chargers").click()
        await shot(page, "chargers-laptop")


async def test_a_status_change_shows_without_a_reload(app: App, browser: Any) -> None:
    """The chargers view follows the live link: a charger reporting Faulted shows as
    such, and a charger connecting appears."""
    async with open_page(browser, app) as (page, _):
        await page.goto("/#/chargers")
        await expect(page.get_by_test_id("no-chargers")).to_be_visible()
        async with booted(app, "CP9") as cp:
            await expect(page.get_by_test_id("status-CP9-1")).to_contain_text("Available")
            await cp.status(1, "Faulted", "GroundFailure")
            await expect(page.get_by_test_id("status-CP9-1")).to_contain_text(
                "Faulted (GroundFailure)"
            )
        await expect(page.get_by_test_id("charger-CP9")).to_contain_text("offline")


async def test_an_action_reaches_the_charger_and_its_answer_shows(
    tmp_path: Path, meter: MeterServer, browser: Any
) -> None:
    """Reset asks for confirmation, reaches the charger, and its answer shows; the
    configuration the charger reports shows as a table."""
    async with (
        site(tmp_path, meter) as (app, _api, cps),
        open_page(browser, app, viewport=LAPTOP) as (page, _),
    ):
        await page.goto("/#/chargers/CP2")
        await expect(page.get_by_test_id("detail-connected")).to_have_text("online")
        reset = page.get_by_test_id("action-Reset")
        await reset.locator("select[name=type]").select_option("Hard")
        await reset.locator("button[type=submit]").click()
        assert not [a for a, _ in cps["CP2"].received_calls if a == "Reset"]
        await reset.get_by_role("button", name="Really reset?").click()
        await expect(reset.get_by_test_id("answer")).to_contain_text('"status": "Accepted"')
        assert await cps["CP2"].wait_for_call("Reset") == {"type": "Hard"}
        await page.get_by_role("button", name="Get configuration").click()
        await expect(page.get_by_test_id("configuration")).to_contain_text("HeartbeatInterval")
        await shot(page, "charger-detail-laptop")


async def test_transactions_csv_download(tmp_path: Path, meter: MeterServer, browser: Any) -> None:
    """The CSV link downloads what the filter shows, with the session cookie."""
    async with site(tmp_path, meter) as (app, _api, _cps), open_page(browser, app) as (page, _):
        await page.goto("/#/transactions")
        await expect(page.get_by_test_id("transactions")).to_contain_text("TAG1")
        await page.select_option("select[name=chargerId]", "CP1")
        # Live updates re-render the view about once a second: the choice must survive
        # them (a select controlled by `value` was reset to "all" before the click).
        await page.wait_for_timeout(1500)
        await expect(page.locator("select[name=chargerId]")).to_have_value("CP1")
        await page.get_by_role("button", name="Filter").click()
        link = page.get_by_test_id("csv")
        await expect(link).to_have_attribute("href", "/api/transactions?chargerId=CP1&format=csv")
        async with page.expect_download() as info:
            await link.click()
        download = await info.value
        text = await asyncio.to_thread(Path(await download.path()).read_text)
        lines = text.splitlines()
        assert lines[0].startswith("transactionId,chargerId") and len(lines) == 2, text
        assert ",CP1,1,TAG1," in lines[1]
        await shot(page, "transactions-phone")


async def test_lists_follow_changes_without_a_reload(
    tmp_path: Path, meter: MeterServer, browser: Any
) -> None:
    """With the transactions view open, a transaction CP2 starts shows up within a few
    seconds and without a reload (lists fetched over the API refresh every 2 s while the
    view is open and the tab visible)."""
    async with site(tmp_path, meter) as (app, api, cps), open_page(browser, app) as (page, _):
        await page.goto("/#/transactions")
        await expect(page.get_by_test_id("transactions")).to_contain_text("TAG1")
        tx = await start(cps["CP2"], api, "TAG2")
        await expect(page.get_by_test_id(f"tx-{tx}")).to_contain_text("TAG2")
        await expect(page.get_by_test_id(f"tx-{tx}")).to_contain_text("active")
