"""Security profiles per charger, never downgraded (TC_083, TC_085, downgrade attempts).

Real server, real TLS on 127.0.0.1; the charger is the `ocpp` package's ChargePoint.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from edge.config import ChargerSettings
from tests.conftest import Api
from tests.security.conn_support import (
    PASSWORD,
    Pki,
    charger,
    has_security_event,
    http_status,
    make_pki,
    refused,
    serving,
    tls_config,
    ws_url,
    wss_url,
)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


async def security_of(api: Api, charger_id: str) -> dict[str, Any]:
    return dict((await api.get(f"/api/chargers/{charger_id}"))["security"])


async def test_basic_auth_required_then_accepted(tmp_path: Path, pki: Pki) -> None:
    """TC_085: an upgrade without an Authorization header is refused (401); with the right
    Basic credentials it upgrades, and the charger boots."""
    chargers = {"CP1": ChargerSettings(password=PASSWORD, security_profile=1)}
    async with serving(tls_config(tmp_path / "d", pki, chargers)) as (app, api):
        assert http_status(await refused(ws_url(app, "CP1"))) == 401
        assert http_status(await refused(ws_url(app, "CP1"), password="wrong-password-1")) == 401
        async with charger(ws_url(app, "CP1"), password=PASSWORD):
            assert (await security_of(api, "CP1"))["connectedAt"]["profile"] == 1
        assert await has_security_event(app.web_port, "InvalidChargePointCredentials", "CP1")


async def test_upgrade_from_1_to_2_then_profile_1_is_refused(tmp_path: Path, pki: Pki) -> None:
    """TC_083 from profile 1: ChangeConfiguration(SecurityProfile=2) Accepted, Reset, the
    charger reconnects over TLS (accepted, boots); its reconnect at profile 1 is refused;
    profile 2 works again; and a restart with the unchanged configuration
    (security_profile = 1) does not lower it."""
    chargers = {"CPU": ChargerSettings(password=PASSWORD, security_profile=1)}
    config = tls_config(tmp_path / "d", pki, chargers)
    async with serving(config) as (app, api):
        async with charger(ws_url(app, "CPU"), password=PASSWORD) as cp:
            status, body = await api.operation(
                "CPU", "ChangeConfiguration", {"key": "SecurityProfile", "value": "2"}
            )
            assert status == 200 and body["response"]["status"] == "Accepted", body
            assert cp.changes == [("SecurityProfile", "2")]
            security = await security_of(api, "CPU")
            assert (security["profile"], security["pendingProfile"]) == (1, 2)
            status, body = await api.operation("CPU", "Reset", {"type": "Hard"})
            assert status == 200 and body["response"]["status"] == "Accepted"
        async with charger(wss_url(app, "CPU"), ssl_context=pki.context(), password=PASSWORD):
            security = await security_of(api, "CPU")
            assert (security["profile"], security["pendingProfile"]) == (2, None)
            assert security["profileChangedAt"] is not None
        err = await refused(ws_url(app, "CPU"), password=PASSWORD)
        assert http_status(err) == 403
        async with charger(wss_url(app, "CPU"), ssl_context=pki.context(), password=PASSWORD):
            pass
        assert await has_security_event(app.web_port, "SecurityProfileUpgraded", "CPU")
        assert await has_security_event(app.web_port, "SecurityProfileDowngradeRefused", "CPU")
    async with serving(config) as (app, api):
        assert (await security_of(api, "CPU"))["profile"] == 2
        assert http_status(await refused(ws_url(app, "CPU"), password=PASSWORD)) == 403


async def test_a_handshake_refused_after_the_check_completes_no_upgrade(
    tmp_path: Path, pki: Pki
) -> None:
    """A connection at the pending profile whose upgrade fails later (no `ocpp1.6`
    offered) leaves the upgrade pending: profile 1 still serves."""
    chargers = {"CPX": ChargerSettings(password=PASSWORD, security_profile=1)}
    async with serving(tls_config(tmp_path / "d", pki, chargers)) as (app, api):
        async with charger(ws_url(app, "CPX"), password=PASSWORD):
            status, body = await api.operation(
                "CPX", "ChangeConfiguration", {"key": "SecurityProfile", "value": "2"}
            )
            assert status == 200, body
        err = await refused(
            wss_url(app, "CPX"),
            ssl_context=pki.context(),
            password=PASSWORD,
            subprotocols=["ocpp0.1"],
        )
        assert http_status(err) == 400
        security = await security_of(api, "CPX")
        assert (security["profile"], security["pendingProfile"]) == (1, 2)
        async with charger(ws_url(app, "CPX"), password=PASSWORD):
            pass


async def test_upgrade_from_2_to_3_then_profile_2_is_refused(tmp_path: Path, pki: Pki) -> None:
    """TC_083 from profile 2: while the upgrade is pending profile 2 still serves (the
    charger falls back when the new one fails); the first connection with a client
    certificate (CN = the serial number it booted with, no password) makes it profile 3;
    TLS with only Basic auth is refused from then on."""
    chargers = {"CPV": ChargerSettings(password=PASSWORD, security_profile=2)}
    config = tls_config(tmp_path / "d", pki, chargers)
    async with serving(config) as (app, api):
        async with charger(wss_url(app, "CPV"), ssl_context=pki.context(), password=PASSWORD):
            status, body = await api.operation(
                "CPV", "ChangeConfiguration", {"key": "SecurityProfile", "value": "3"}
            )
            assert status == 200 and body["response"]["status"] == "Accepted", body
        async with charger(wss_url(app, "CPV"), ssl_context=pki.context(), password=PASSWORD):
            assert (await security_of(api, "CPV"))["pendingProfile"] == 3
        certificate = pki.client("SN-CPV")  # the serial number SimCharger boots with
        async with charger(wss_url(app, "CPV"), ssl_context=pki.context(certificate)):
            security = await security_of(api, "CPV")
            assert (security["profile"], security["pendingProfile"]) == (3, None)
        for kwargs in ({"password": PASSWORD}, {}):
            err = await refused(wss_url(app, "CPV"), ssl_context=pki.context(), **kwargs)
            assert http_status(err) == 403
        assert http_status(await refused(ws_url(app, "CPV"), password=PASSWORD)) == 403
        async with charger(wss_url(app, "CPV"), ssl_context=pki.context(certificate)):
            pass


async def test_downgrade_attempts_are_refused_and_counted(tmp_path: Path, pki: Pki) -> None:
    """A profile 2 charger on ws (right password); a profile 3 charger over TLS without a
    certificate, with and without Basic credentials: all 403, security events, counted."""
    chargers = {
        "CP2": ChargerSettings(password=PASSWORD, security_profile=2),
        "CP3": ChargerSettings(security_profile=3),
    }
    async with serving(tls_config(tmp_path / "d", pki, chargers)) as (app, _):
        assert http_status(await refused(ws_url(app, "CP2"), password=PASSWORD)) == 403
        assert http_status(await refused(ws_url(app, "CP3"), password=PASSWORD)) == 403
        for kwargs in ({"password": PASSWORD}, {}):
            err = await refused(wss_url(app, "CP3"), ssl_context=pki.context(), **kwargs)
            assert http_status(err) == 403
        metrics = app.services.metrics
        assert (
            metrics.value(
                "edge_security_events_total",
                type="SecurityProfileDowngradeRefused",
                critical="false",
            )
            == 4
        )
        assert metrics.value("edge_connections_refused_total", reason="downgrade") == 4
        assert await has_security_event(app.web_port, "SecurityProfileDowngradeRefused", "CP3")


async def test_operator_cannot_lower_a_profile(tmp_path: Path, pki: Pki) -> None:
    """ChangeConfiguration(SecurityProfile) at or below the current profile is refused by
    the checks (400); forced through and Accepted by a faulty charger, the CSMS still keeps
    the higher profile."""
    chargers = {"CP2": ChargerSettings(password=PASSWORD, security_profile=2)}
    async with serving(tls_config(tmp_path / "d", pki, chargers)) as (app, api):
        async with charger(wss_url(app, "CP2"), ssl_context=pki.context(), password=PASSWORD):
            for value in ("1", "2", "0", "x"):
                status, body = await api.operation(
                    "CP2", "ChangeConfiguration", {"key": "SecurityProfile", "value": value}
                )
                assert status == 400 and body["error"] == "invalid_request", body
            status, body = await api.request(
                "POST",
                "/api/chargers/CP2/ocpp/ChangeConfiguration?force=true",
                {"key": "SecurityProfile", "value": "1"},
            )
            assert status == 200 and body["response"]["status"] == "Accepted"
            security = await security_of(api, "CP2")
            assert (security["profile"], security["pendingProfile"]) == (2, None)
        assert await has_security_event(app.web_port, "SecurityProfileNotLowered", "CP2")


async def test_upgrade_needs_what_the_new_profile_uses(tmp_path: Path, pki: Pki) -> None:
    """No upgrade to profile 2 without a wss listener, nor to 3 without a client CA."""
    chargers = {"CP1": ChargerSettings(password=PASSWORD, security_profile=1)}
    config = tls_config(tmp_path / "d", pki, chargers, client_ca=False)
    no_tls = dataclasses.replace(config, ocpp=dataclasses.replace(config.ocpp, tls=None))
    for site, value, missing in [(config, "3", "client CA"), (no_tls, "2", "[ocpp.tls]")]:
        async with (
            serving(site) as (app, api),
            charger(ws_url(app, "CP1"), password=PASSWORD),
        ):
            status, body = await api.operation(
                "CP1", "ChangeConfiguration", {"key": "SecurityProfile", "value": value}
            )
            assert status == 400 and missing in str(body["detail"]), body


async def test_unconfigured_charger_keeps_working_at_profile_0(tmp_path: Path, pki: Pki) -> None:
    """A charger without password or profile (unknown_chargers = accept) connects over ws
    and over wss as before; nothing is stored for refused strangers."""
    async with serving(tls_config(tmp_path / "d", pki)) as (app, api):
        async with charger(ws_url(app, "CP0")):
            assert (await security_of(api, "CP0"))["profile"] == 0
        async with charger(wss_url(app, "CP0"), ssl_context=pki.context()):
            pass
        assert app.services.security is not None
        assert not app.services.security.store.known("CP0")
