"""The technician's page, its commissioning and administration views (meter, id tags,
reservations, firmware and diagnostics, log, a charger's profiles and history) in a
real headless Chromium, against a running App with a real Modbus meter and real
WebSocket chargers (`RawCharger`). Each action goes through the operator API and
reaches a charger, whose answer the page shows.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from drivers import MeterServer
from edge.sim.charger import RawCharger
from tests.conftest import make_config, running
from tests.helpers import now_iso, ocpp_url
from tests.integration.test_site_control import meter
from tests.web.conftest import LAPTOP, PHONE, open_page
from tests.web.test_page import shot, site

pytestmark = pytest.mark.browser
expect: Any = pytest.importorskip("playwright.async_api").expect

__all__ = ["meter"]  # the fixture, used by name

ANSWERS: dict[str, Any] = {
    "ReserveNow": {"status": "Accepted"},
    "CancelReservation": {"status": "Accepted"},
    "SendLocalList": {"status": "Accepted"},
    "UpdateFirmware": {},
    "GetDiagnostics": {"fileName": "diag.zip"},
}


async def fits_phone(page: Any) -> None:
    await page.set_viewport_size(PHONE)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width


async def test_meter_commissioning(tmp_path: Path, meter: MeterServer, browser: Any) -> None:
    """Per phase current, voltage and power with their signs (a negative phase is named
    as export or a reversed CT), the meter's reads and age against stale_after, each
    charger's wiring and range, and whether the fallback values fit the fuse."""
    async with site(tmp_path, meter) as (app, _api, _cps), open_page(browser, app) as (page, _):
        await meter.set(current_a=(12.0, -3.0, 3.0))
        await page.goto("/#/meter")
        l2 = page.get_by_test_id("meter-L2")
        await expect(l2).to_contain_text("-3.00 A")
        await expect(l2).to_contain_text("export on this phase, or its CT is reversed")
        await expect(page.get_by_test_id("meter-L1")).to_contain_text("import")
        await expect(page.get_by_test_id("meter-L1")).to_contain_text("12.00 A")
        await expect(page.get_by_test_id("meter-reads")).to_contain_text("ok, 0 failed")
        await expect(page.get_by_test_id("meter-age-vs-stale")).to_contain_text(
            "of 1.5 s allowed: fresh"
        )
        await expect(page.get_by_test_id("meter-error")).to_have_text("none")
        await expect(page.get_by_test_id("wiring-CP1")).to_contain_text("L1")
        await expect(page.get_by_test_id("wiring-CP1")).to_contain_text("6\u201332 A")
        await expect(page.get_by_test_id("wiring-CP2")).to_contain_text("L1L2L3")
        await expect(page.get_by_test_id("fallback-fits")).to_contain_text(
            "The fallback values fit the fuse: every charger gets 6 A"
        )
        await expect(page.get_by_test_id("fallback-fit").locator("li").first).to_be_visible()
        await fits_phone(page)
        await shot(page, "meter-phone")


async def test_id_tags_and_local_list(tmp_path: Path, meter: MeterServer, browser: Any) -> None:
    """A tag added with expiry and parent shows in the list and the search; Block
    and Unblock change it; Sync sends the list (the block included) to a charger and
    its answer shows; Delete asks first."""
    async with site(tmp_path, meter) as (app, api, cps), open_page(browser, app) as (page, _):
        cps["CP2"].answers.update(ANSWERS)
        await page.goto("/#/id-tags")
        await expect(page.get_by_test_id("tag-TAG1")).to_contain_text("Accepted")
        form = page.get_by_test_id("action-Save tag")
        await form.locator("input[name=idTag]").fill("FLEET-7")
        await form.locator("input[name=expiryDate]").fill("2027-01-31")
        await form.locator("input[name=parentIdTag]").fill("FLEET")
        await form.get_by_role("button", name="Save tag").click()
        await expect(form.get_by_test_id("answer")).to_contain_text("201")
        row = page.get_by_test_id("tag-FLEET-7")
        await expect(row).to_contain_text("2027-01-31 00:00:00Z")
        await expect(row).to_contain_text("FLEET")
        await page.get_by_test_id("tag-search").fill("fleet")
        await expect(page.get_by_test_id("tag-TAG1")).to_have_count(0)
        await row.get_by_role("button", name="Block").click()
        await expect(row).to_contain_text("Blocked")
        assert (await api.get("/api/id-tags/FLEET-7"))["status"] == "Blocked"
        await shot(page, "id-tags-phone")
        local = page.get_by_test_id("local-list-CP2")
        await local.get_by_role("button", name="Sync CP2").click()
        await expect(local.get_by_test_id("answer")).to_contain_text("Accepted")
        sent = await cps["CP2"].wait_for_call("SendLocalList")
        entries = {e["idTag"]: e["idTagInfo"]["status"] for e in sent["localAuthorizationList"]}
        assert entries["FLEET-7"] == "Blocked" and entries["TAG1"] == "Accepted"
        await expect(local).to_contain_text("version 1")
        await row.get_by_role("button", name="Unblock").click()
        await expect(row).to_contain_text("Accepted")
        await row.get_by_role("button", name="Delete FLEET-7").click()
        await row.get_by_role("button", name="Really delete FLEET-7?").click()
        await expect(page.get_by_test_id("tag-FLEET-7")).to_have_count(0)
        await fits_phone(page)


async def test_reserve_and_cancel(tmp_path: Path, meter: MeterServer, browser: Any) -> None:
    """Reserve sends ReserveNow to the charger and shows its answer and the active
    reservation; Cancel sends CancelReservation and the reservation ends Cancelled."""
    async with site(tmp_path, meter) as (app, _api, cps), open_page(browser, app) as (page, _):
        cps["CP2"].answers.update(ANSWERS)
        await page.goto("/#/reservations")
        form = page.get_by_test_id("action-Reserve")
        await form.locator("select[name=chargerId]").select_option("CP2")
        await form.locator("input[name=idTag]").fill("TAG1")
        await form.get_by_role("button", name="Reserve").click()
        await expect(form.get_by_test_id("answer")).to_contain_text('"status": "Accepted"')
        sent = await cps["CP2"].wait_for_call("ReserveNow")
        assert sent["connectorId"] == 1 and sent["idTag"] == "TAG1"
        row = page.get_by_test_id(f"reservation-{sent['reservationId']}")
        await expect(row).to_contain_text("Active")
        await expect(row).to_contain_text("CP2 #1")
        await fits_phone(page)
        await shot(page, "reservations-phone")
        await row.get_by_role("button", name="Cancel").click()
        answer = page.get_by_test_id("cancel-answer")
        await expect(answer).to_contain_text('"status": "Accepted"')
        cancelled = await cps["CP2"].wait_for_call("CancelReservation")
        assert cancelled == {"reservationId": sent["reservationId"]}
        await expect(row).to_contain_text("Cancelled")


async def test_firmware_and_diagnostics(tmp_path: Path, meter: MeterServer, browser: Any) -> None:
    """An image uploaded from the page is listed with its sha256 and sent to a charger
    (UpdateFirmware with a link to it); the charger's status reports show; diagnostics
    requested from the page and uploaded by the charger are listed and download."""
    image = bytes(range(256)) * 400
    async with (
        site(tmp_path, meter) as (app, _api, cps),
        open_page(browser, app, viewport=LAPTOP) as (page, _),
    ):
        cp: RawCharger = cps["CP2"]
        cp.answers.update(ANSWERS)
        await page.goto("/#/files")
        await expect(page.get_by_test_id("files")).to_contain_text("No image uploaded yet")
        upload = page.get_by_test_id("firmware-upload")
        await upload.locator("input[name=file]").set_input_files(
            {"name": "fw-1.2.bin", "mimeType": "application/octet-stream", "buffer": image}
        )
        await upload.get_by_role("button", name="Upload").click()
        await expect(upload.get_by_test_id("answer")).to_contain_text("201")
        listed = page.get_by_test_id("firmware-list")
        await expect(listed).to_contain_text(hashlib.sha256(image).hexdigest())
        await expect(listed).to_contain_text("fw-1.2.bin")
        send = page.get_by_test_id("action-Send firmware")
        await send.locator("select[name=chargerId]").select_option("CP2")
        await send.get_by_role("button", name="Send firmware").click()
        await expect(send.get_by_test_id("answer")).to_contain_text("/files/firmware/fw-1.2.bin")
        update = await cp.wait_for_call("UpdateFirmware")
        assert "/files/firmware/fw-1.2.bin?charger=CP2" in update["location"]
        await cp.call("FirmwareStatusNotification", {"status": "Downloading"})
        await page.get_by_role("button", name="Refresh").first.click()
        await expect(page.get_by_test_id("firmware-status")).to_contain_text("Downloading")

        ask = page.get_by_test_id("action-Request diagnostics")
        await ask.locator("select[name=chargerId]").select_option("CP2")
        await ask.get_by_role("button", name="Request diagnostics").click()
        await expect(ask.get_by_test_id("answer")).to_contain_text('"fileName": "diag.zip"')
        location = (await cp.wait_for_call("GetDiagnostics"))["location"]
        async with (
            aiohttp.ClientSession() as session,
            session.put(location + "diag.zip", data=b"diagnostics of CP2") as response,
        ):
            assert response.status == 201, await response.text()
        await page.get_by_role("button", name="Refresh").nth(1).click()
        link = page.get_by_test_id("diagnostics-list").get_by_role("link")
        await expect(link).to_contain_text("diag.zip")
        async with page.expect_download() as info:
            await link.click()
        download = await info.value
        assert Path(await download.path()).read_bytes() == b"diagnostics of CP2"  # noqa: ASYNC240
        await shot(page, "firmware-laptop")
        await fits_phone(page)


async def test_log_view_filters_and_downloads(
    tmp_path: Path, browser: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The service's log records show newest first; a level filter hides what is
    below it; the download is the text log."""
    caplog.set_level(logging.INFO)
    async with running(make_config(tmp_path)) as (app, _api), open_page(browser, app) as (page, _):
        logging.getLogger("edge.test.page").warning("meter on the wrong port, at %s", now_iso())
        await page.goto("/#/log")
        view = page.get_by_test_id("log")
        await expect(view).to_contain_text("listening for HTTP")
        await expect(view).to_contain_text("meter on the wrong port")
        await expect(page.get_by_test_id("log-record").first).to_contain_text("WARNING")
        await view.locator("select[name=level]").select_option("WARNING")
        await view.get_by_role("button", name="Show").click()
        await expect(view).not_to_contain_text("listening for HTTP")
        await expect(view).to_contain_text("meter on the wrong port")
        link = page.get_by_test_id("log-download")
        await expect(link).to_have_attribute(
            "href", "/api/log?level=WARNING&limit=2000&format=text"
        )
        async with page.expect_download() as info:
            await link.click()
        download = await info.value
        text = Path(await download.path()).read_text()  # noqa: ASYNC240
        assert "WARNING edge.test.page: meter on the wrong port" in text
        assert "listening for HTTP" not in text
        await fits_phone(page)
        await shot(page, "log-phone")


async def test_charger_profiles_schedule_and_history(
    tmp_path: Path, meter: MeterServer, browser: Any
) -> None:
    """A limit set from the detail reaches the charger; the profile it holds then shows,
    with the predicted schedule plotted and listed (under the site's lease); the status history
    lists what the charger reported; GetCompositeSchedule's answer shows."""
    async with (
        site(tmp_path, meter) as (app, _api, cps),
        open_page(browser, app, viewport=LAPTOP) as (page, _),
    ):
        cps["CP2"].answers["GetCompositeSchedule"] = {"status": "Rejected"}
        await page.goto("/#/chargers/CP2")
        await expect(page.get_by_test_id("status-history")).to_contain_text("Available")
        await expect(page.get_by_test_id("profiles")).not_to_contain_text("TxDefaultProfile")
        limit = page.get_by_test_id("action-Limit")
        await limit.locator("input[name=connectorId]").fill("1")
        await limit.locator("input[name=limit]").fill("10")
        await limit.get_by_role("button", name="Limit").click()
        await expect(limit.get_by_test_id("answer")).to_contain_text("Accepted")
        calls = cps["CP2"].received_calls
        sent = [p for a, p in calls if a == "SetChargingProfile" and p["connectorId"] == 1]
        assert (
            sent and sent[0]["csChargingProfiles"]["chargingProfilePurpose"] == "TxDefaultProfile"
        )
        profiles = page.get_by_test_id("profiles")
        await expect(profiles).to_contain_text("TxDefaultProfile")
        await expect(profiles).to_contain_text("10 A")
        await expect(page.locator("[data-testid=prediction] canvas")).to_have_count(1)
        # The site's lease (0 A: no session) and then its safe value cap the 10 A.
        await expect(page.get_by_test_id("prediction-periods")).to_contain_text("6 A")
        composite = page.get_by_test_id("action-Composite schedule")
        await composite.get_by_role("button", name="Composite schedule").click()
        await expect(composite.get_by_test_id("answer")).to_contain_text('"status": "Rejected"')
        assert (await cps["CP2"].wait_for_call("GetCompositeSchedule"))["connectorId"] == 1
        await shot(page, "charger-schedule-laptop")
        await fits_phone(page)


async def test_a_new_charger_is_approved_then_deleted(
    tmp_path: Path, meter: MeterServer, browser: Any
) -> None:
    """A charger nobody configured connects and waits for approval (its Boot answered
    Pending); its detail says so and Approve accepts it (the next Boot is Accepted). While
    it is online Delete is disabled; once it is gone, Delete asks first, removes it from
    the registry and takes the page back to the list, which no longer shows it."""
    async with (
        site(tmp_path, meter, unknown_chargers="pending") as (app, api, _),
        open_page(browser, app) as (page, _),
    ):
        async with RawCharger.connect(ocpp_url(app, "NEW1")) as cp:
            assert (await cp.boot())["status"] == "Pending"
            await page.goto("/#/chargers/NEW1")
            card = page.get_by_test_id("registration")
            await expect(card).to_contain_text("waits for approval")
            delete = card.get_by_test_id("action-Delete charger").get_by_role("button")
            await expect(delete).to_be_disabled()
            await card.get_by_role("button", name="Approve").click()
            await expect(page.get_by_test_id("charger-detail")).to_contain_text("Accepted")
            await expect(card.get_by_role("button", name="Approve")).to_have_count(0)
            assert (await api.get("/api/chargers/NEW1"))["registration"] == "Accepted"
            assert (await cp.boot())["status"] == "Accepted"
        await expect(page.get_by_test_id("detail-connected")).to_have_text("offline")
        await expect(delete).to_be_enabled()
        await delete.click()
        await card.get_by_role("button", name="Really delete charger?").click()
        await page.wait_for_url("**/#/chargers")
        await expect(page.get_by_text("NEW1")).to_have_count(0)
        code, body = await api.request("GET", "/api/chargers/NEW1")
        assert code == 404, body
