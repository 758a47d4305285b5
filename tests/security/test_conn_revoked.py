"""A revoked client certificate ends the charger's open connection, against the real
server on 127.0.0.1 with real TLS: revoked through the API (the register says so at
once), and revoked by `edge-csms ca revoke` from another process, which the service
learns from the CRL on its reload (SIGHUP). The connection is closed with 1008, the
closing is a security event logged as a warning with the charger and the serial, and
the charger cannot connect again with that certificate; other chargers stay connected.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from websockets.asyncio.client import ClientConnection

from edge.app import App
from edge.cli import main
from edge.config import ChargerSettings
from tests.conftest import Api
from tests.helpers import eventually
from tests.security import certs
from tests.security.conn_support import (
    TIMEOUT,
    Pki,
    make_pki,
    open_ws,
    refused,
    serving,
    tls_config,
    wss_url,
)

CHARGERS = {
    "CP3": ChargerSettings(security_profile=3),
    "CP4": ChargerSettings(security_profile=3),
}


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


async def with_site_ca(api: Api) -> None:
    """Make the site CA and have the wss listener take it (and its CRL) as client CA."""
    status, _ = await api.request("POST", "/api/ca")
    assert status == 201
    status, body = await api.request("POST", "/api/security/tls/reload")
    assert status == 200 and body["clientCa"].endswith("ca/ca.pem"), body


async def site_certificate(
    app: App, pki: Pki, data_dir: Path, charger_id: str
) -> tuple[ssl.SSLContext, str]:
    """A certificate of the site CA for `charger_id`, installed in the register (as after
    SignCertificate): the charger's TLS context with it, and its serial as the register
    spells it."""
    site = certs.Issued(
        x509.load_pem_x509_certificate((data_dir / "ca" / "ca.pem").read_bytes()),
        certs.load_key((data_dir / "ca" / "ca.key").read_bytes()),
    )
    issued = certs.make_client_cert(site, charger_id)
    serial = format(issued.serial, "x")
    authority = app.services.certificates
    assert authority is not None
    authority.register.add(
        {"serial": serial, "chargerId": charger_id, "subject": f"CN={charger_id}",
         "status": "installed", "notAfter": "2027-12-04T00:00:00.000Z",
         "issuedAt": "2026-12-04T00:00:00.000Z"}
    )  # fmt: skip
    # On disk too: `edge-csms ca revoke` in another process reads the register's file.
    await authority.register.store.flush_async()
    paths = certs.write(data_dir.parent / "chargers", f"{charger_id}-{serial}", issued)
    return pki.context(paths), serial


async def booted(ws: ClientConnection, unique_id: str = "boot") -> None:
    """A BootNotification answered: the charger's session is running."""
    payload = {"chargePointVendor": "VendorS", "chargePointModel": "Model-S"}
    await ws.send(json.dumps([2, unique_id, "BootNotification", payload]))
    answer = json.loads(await ws.recv())
    assert answer[:2] == [3, unique_id], answer


async def heartbeat(ws: ClientConnection) -> None:
    await ws.send(json.dumps([2, "hb", "Heartbeat", {}]))
    answer = json.loads(await ws.recv())
    assert answer[:2] == [3, "hb"], answer


async def closed_with(ws: ClientConnection) -> int | None:
    """The close code of a connection the server closes (TimeoutError if it does not)."""
    async with asyncio.timeout(5):
        await ws.wait_closed()
    return ws.close_code


async def disconnected_events(api: Api, charger_id: str) -> list[dict[str, Any]]:
    found = await api.get(f"/api/security/events?chargerId={charger_id}")
    return [e for e in found if e["type"] == "RevokedCertificateDisconnected"]


async def test_revoking_through_the_api_closes_the_open_connection(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "d"
    config = tls_config(data_dir, pki, CHARGERS, client_ca=False)
    with caplog.at_level(logging.INFO, logger="edge.security"):
        async with serving(config) as (app, api):
            await with_site_ca(api)
            revoked_ctx, serial = await site_certificate(app, pki, data_dir, "CP3")
            kept_ctx, _ = await site_certificate(app, pki, data_dir, "CP4")
            async with (
                open_ws(wss_url(app, "CP3"), ssl_context=revoked_ctx) as ws,
                open_ws(wss_url(app, "CP4"), ssl_context=kept_ctx) as other,
            ):
                await booted(ws)
                await booted(other)
                status, body = await api.request("POST", f"/api/certificates/{serial}/revoke")
                assert status == 200 and body["status"] == "revoked", body
                assert await closed_with(ws) == 1008
                await heartbeat(other)  # the other charger's certificate still holds
                assert (await api.get("/api/chargers/CP4"))["connected"] is True
            found = await eventually(lambda: disconnected_events(api, "CP3"))
            assert len(found) == 1 and found[0]["critical"] is True, found
            assert serial in found[0]["techInfo"]
            assert not await disconnected_events(api, "CP4")
            # Reconnecting with the revoked certificate is refused (at TLS or at 403).
            await refused(wss_url(app, "CP3"), ssl_context=revoked_ctx)
            assert (await api.get("/api/chargers/CP3"))["connected"] is False
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "edge.security"
        and r.levelno == logging.WARNING
        and "RevokedCertificateDisconnected" in r.getMessage()
    ]
    assert len(lines) == 1, lines
    assert "CP3" in lines[0] and serial in lines[0]


async def test_a_command_line_revocation_closes_it_on_the_reload(tmp_path: Path, pki: Pki) -> None:
    """`edge-csms ca revoke` writes the CRL beside the running service; SIGHUP's reload
    reads it and ends the open connection presenting that certificate."""
    data_dir = tmp_path / "d"
    config_file = tmp_path / "edge.toml"
    config_file.write_text(f'[storage]\ndata_dir = "{data_dir}"\n')
    config = tls_config(data_dir, pki, CHARGERS, client_ca=False)
    async with serving(config) as (app, api):
        await with_site_ca(api)
        ctx, serial = await site_certificate(app, pki, data_dir, "CP3")
        async with open_ws(wss_url(app, "CP3"), ssl_context=ctx) as ws:
            await booted(ws)
            code = await asyncio.to_thread(
                main, ["ca", "revoke", "--config", str(config_file), serial]
            )
            assert code == 0
            await heartbeat(ws)  # the service has not looked at the CRL yet
            app.request_tls_reload()  # what SIGHUP runs
            assert await closed_with(ws) == 1008
        found = await eventually(lambda: disconnected_events(api, "CP3"), timeout=TIMEOUT)
        assert serial in found[0]["techInfo"]
        await refused(wss_url(app, "CP3"), ssl_context=ctx)
