"""The technician's page, its Security view, in a real headless Chromium against a
running App with a wss listener and real chargers over ws and TLS (the `ocpp` package's
ChargePoint, `tests.security.conn_support`): each charger's profile and transport, the
client certificate a profile 3 charger connected with and its expiry, the server
certificate's expiry, a revocation, and security events arriving over the live link.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from edge.app import App
from edge.config import ChargerSettings
from tests.helpers import booted, now_iso
from tests.security.certs import (
    crl_pem,
    ec_key,
    make_ca,
    make_client_cert,
    make_crl,
    make_server_cert,
    write,
    write_pem,
)
from tests.security.conn_support import (
    PASSWORD,
    Pki,
    charger,
    refused,
    serving,
    tls_config,
    ws_url,
    wss_url,
)
from tests.web.conftest import LAPTOP, PHONE, open_page
from tests.web.test_page import shot

pytestmark = pytest.mark.browser
expect: Any = pytest.importorskip("playwright.async_api").expect

SOON = 10  # days: a certificate the page must flag (it warns within 30)
# Past the view's throttle of hints (2 s): what it fetches after this came from a hint of
# the live link, as its own refresh waits 30 s.
SETTLED_MS = 2500


def short_lived_pki(root: Path) -> Pki:
    """A site whose wss server certificate ends in SOON days."""
    root.mkdir(parents=True, exist_ok=True)
    ca = make_ca("Site CA")
    return Pki(
        root=root,
        ca=ca,
        ca_file=write_pem(root / "ca.pem", ca),
        server=write(root, "server", make_server_cert(ca, days=SOON), chain=[ca]),
        server_ec=write(root, "server-ec", make_server_cert(ca, key=ec_key()), chain=[ca]),
    )


async def fits_phone(page: Any) -> None:
    await page.set_viewport_size(PHONE)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width


async def test_profiles_transport_certificates_and_a_revocation(
    tmp_path: Path, browser: Any
) -> None:
    """With the Security view open, a profile 1 charger shows over ws and a profile 3 one
    over wss with the serial of its client certificate, flagged as expiring within 30
    days, as is the server certificate; a refused password shows as a security event
    without a reload; the chargers list and a charger's detail show profile and
    transport; a revocation of the certificate in use shows as revoked."""
    pki = short_lived_pki(tmp_path / "pki")
    crl = tmp_path / "pki" / "crl.pem"
    crl.write_text(crl_pem(make_crl(pki.ca)))
    chargers = {
        "CP1": ChargerSettings(password=PASSWORD, security_profile=1),
        "CP3": ChargerSettings(security_profile=3),
    }
    issued = make_client_cert(pki.ca, "CP3", days=SOON)
    client = write(pki.root, "client-CP3", issued)
    serial = format(issued.serial, "x")
    config = tls_config(tmp_path / "data", pki, chargers, crl=crl)
    async with (
        serving(config) as (app, api),
        open_page(browser, app, viewport=LAPTOP) as (page, _),
    ):
        await page.goto("/#/security")
        await expect(page.get_by_test_id("server-expiry-0")).to_contain_text(
            "the server certificate expires within 30 days"
        )
        await expect(page.get_by_test_id("site-ca")).to_contain_text("No site CA yet")
        await expect(page.get_by_test_id("security-events")).to_contain_text("None recorded")
        async with (
            charger(ws_url(app, "CP1"), password=PASSWORD),
            charger(wss_url(app, "CP3"), ssl_context=pki.context(client)),
        ):
            await expect(page.get_by_test_id("profile-CP1")).to_contain_text("1 password (ws)")
            await expect(page.get_by_test_id("transport-CP1")).to_have_text("ws")
            await expect(page.get_by_test_id("profile-CP3")).to_contain_text("3 client certificate")
            await expect(page.get_by_test_id("transport-CP3")).to_have_text("wss")
            certificate = page.get_by_test_id("client-cert-CP3")
            await expect(certificate).to_contain_text(serial)
            await expect(page.get_by_test_id("cert-expiry-CP3")).to_contain_text(
                "its certificate expires within 30 days"
            )
            await expect(page.get_by_test_id("client-cert-CP1")).to_have_count(0)
            await expect(page.get_by_test_id("cert-revoked-CP3")).to_have_count(0)

            # An edge-raised event: the live link's hint makes the view fetch it.
            await page.wait_for_timeout(SETTLED_MS)
            await refused(ws_url(app, "CP1"), password="wrong-password-1")
            row = page.get_by_test_id("security-event").filter(
                has_text="InvalidChargePointCredentials"
            )
            await expect(row).to_contain_text("CP1")
            await expect(row).not_to_have_class(re.compile("critical"))
            await shot(page, "security-laptop")

            await page.get_by_test_id("nav-chargers").click()
            await expect(page.get_by_test_id("sec-CP3")).to_have_text("profile 3 · wss")
            await expect(page.get_by_test_id("sec-CP1")).to_have_text("profile 1 · ws")
            await page.get_by_test_id("charger-CP3").click()
            detail = page.get_by_test_id("charger-detail")
            await expect(detail.get_by_test_id("sec-CP3")).to_have_text("profile 3 · wss")

            # Revoked while connected (a new CRL read by the listener): the view says so.
            crl.write_text(crl_pem(make_crl(pki.ca, [issued.serial])))
            status, body = await api.request("POST", "/api/security/tls/reload")
            assert status == 200 and body["revokedCertificates"] == 1, body
            await page.get_by_test_id("nav-security").click()
            await expect(page.get_by_test_id("cert-revoked-CP3")).to_contain_text("revoked")
            await fits_phone(page)
            await shot(page, "security-phone")


async def test_without_tls_a_charger_on_ws_and_a_critical_event(app: App, browser: Any) -> None:
    """Without a wss listener the view says so; a charger shows at profile 0 over ws; a
    critical security event it reports appears at once, marked critical."""
    async with open_page(browser, app) as (page, _):
        await page.goto("/#/security")
        await expect(page.get_by_test_id("no-tls")).to_contain_text("No wss listener")
        async with booted(app, "CP0") as cp:
            await expect(page.get_by_test_id("profile-CP0")).to_contain_text("0 no authentication")
            await expect(page.get_by_test_id("transport-CP0")).to_have_text("ws")
            await expect(page.get_by_test_id("security-events")).to_contain_text("None recorded")
            await page.wait_for_timeout(SETTLED_MS)
            tamper = {"type": "TamperDetectionActivated", "timestamp": now_iso(), "techInfo": "lid"}
            assert await cp.call("SecurityEventNotification", tamper) == {}
            row = page.get_by_test_id("security-event").filter(has_text="TamperDetectionActivated")
            await expect(row).to_have_class(re.compile("critical"))
            await expect(row).to_contain_text("critical")
            await expect(row).to_contain_text("lid")
        await expect(page.get_by_test_id("security-CP0")).to_contain_text("offline, last over ws")
        await fits_phone(page)
