"""The site CA in the operator API, against the real server: the CA (never its key), the
register, renewal, revocation (CRL), expiry warnings in the API and the metrics; and the
CA and register surviving a kill -9 of the service."""

from __future__ import annotations

import asyncio
import signal
import ssl
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from edge.app import App
from edge.cli import main
from tests.conftest import Api, api_client
from tests.helpers import eventually
from tests.integration.service import config_toml, serve
from tests.security import certs
from tests.security.charger import TIMEOUT, SecurityCP, security_cp, site_with_charger
from tests.security.test_ca_sign import security_config


async def renew(api: Api, charger_id: str) -> None:
    status, body = await api.request("POST", f"/api/chargers/{charger_id}/certificate/renew")
    assert status == 200 and body["response"]["status"] == "Accepted", (status, body)


async def installed(api: Api, charger_id: str, count: int = 1) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        entries = await api.get(f"/api/certificates?chargerId={charger_id}")
        # Newest first: the newest installed, every older one no longer live.
        settled = len(entries) == count and entries[0]["status"] == "installed"
        return entries if settled and all(e["status"] != "issued" for e in entries) else None

    return await eventually(probe, timeout=TIMEOUT)


async def sign_once(api: Api, cp: SecurityCP) -> x509.Certificate:
    await renew(api, cp.id)
    assert await cp.sign_answers.get() == "Accepted"
    return x509.load_pem_x509_certificates((await cp.chains.get()).encode())[0]


async def test_ca_endpoints_never_show_the_key(tmp_path: Path) -> None:
    async with App(security_config(tmp_path)) as app, api_client(app.web_port) as api:
        assert await api.get("/api/ca") == {"exists": False}
        status, body = await api.request("GET", "/api/ca/certificate")
        assert status == 404 and body["error"] == "no_ca"
        status, created = await api.request("POST", "/api/ca")
        assert status == 201 and created["exists"] and "site CA" in created["subject"]
        status, again = await api.request("POST", "/api/ca")
        assert status == 200 and again == created
        pem = await api.get("/api/ca/certificate")
        assert pem == (tmp_path / "data" / "ca" / "ca.pem").read_text()
        for text in (pem, orjson.dumps(created).decode()):
            assert "PRIVATE" not in text
        status, _ = await api.request("GET", "/api/certificates", token=None)
        assert status == 401


async def test_register_renew_revoke_and_metrics(tmp_path: Path) -> None:
    async with site_with_charger(security_config(tmp_path), "CP-API") as (app, api, cp):
        leaf = await sign_once(api, cp)
        serial = format(leaf.serial_number, "x")
        [entry] = await installed(api, "CP-API")
        assert entry["serial"] == serial and entry["expiringSoon"] is False
        assert 700 <= entry["expiresInDays"] <= 730
        assert await api.get(f"/api/certificates/{serial.upper()}") == entry
        # Renewal supersedes it.
        second = await sign_once(api, cp)
        entries = await installed(api, "CP-API", count=2)
        assert [e["status"] for e in entries] == ["installed", "superseded"]
        # Revocation: the CRL lists the serial, the register says so.
        new_serial = format(second.serial_number, "x")
        status, revoked = await api.request(
            "POST", f"/api/certificates/{new_serial}/revoke", {"reason": "key compromised"}
        )
        assert status == 200 and revoked["status"] == "revoked"
        assert revoked["reason"] == "key compromised"
        crl = x509.load_pem_x509_crl((tmp_path / "data" / "ca" / "crl.pem").read_bytes())
        assert crl.get_revoked_certificate_by_serial_number(second.serial_number) is not None
        assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is None
        # Revocation is final: nothing sets it back.
        assert app.services.certificates is not None
        app.services.certificates.chain_answered("CP-API", cp.wire[-1][3]["certificateChain"],
                                                 "Accepted")  # fmt: skip
        assert (await api.get(f"/api/certificates/{new_serial}"))["status"] == "revoked"
        metrics = (await api.request("GET", "/metrics"))[1]
        assert 'edge_ca_certificates{status="revoked"} 1' in metrics
        assert 'edge_ca_certificates{status="superseded"} 1' in metrics
        assert 'edge_ca_sign_requests_total{outcome="accepted"} 2' in metrics
        for path, code in [
            ("/api/certificates/abc/revoke", 404),
            ("/api/certificates/xyz/revoke", 400),
        ]:
            status, body = await api.request("POST", path)
            assert status == code, body
        status, body = await api.request("GET", "/api/certificates?status=bogus")
        assert status == 400


async def test_expiring_certificates_are_flagged(tmp_path: Path) -> None:
    config = security_config(tmp_path, certificate_days=20)
    async with site_with_charger(config, "CP-EXP") as (_app, api, cp):
        await sign_once(api, cp)
        [entry] = await installed(api, "CP-EXP")
        assert entry["expiringSoon"] is True and entry["expiresInDays"] in (19, 20)
        assert await api.get("/api/certificates?expiring=true") == [entry]
        metrics = (await api.request("GET", "/metrics"))[1]
        assert "edge_ca_certificates_expiring 1" in metrics


async def test_command_line_revocation_reaches_the_running_service(tmp_path: Path) -> None:
    config_file = tmp_path / "edge.toml"
    config_file.write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n')
    async with site_with_charger(security_config(tmp_path), "CP-CLI") as (_app, api, cp):
        leaf = await sign_once(api, cp)
        await installed(api, "CP-CLI")
        serial = format(leaf.serial_number, "x")
        code = await asyncio.to_thread(main, ["ca", "revoke", "--config", str(config_file), serial])
        assert code == 0
        entry = await api.get(f"/api/certificates/{serial}")
        assert entry["status"] == "revoked"


async def test_kill_9_keeps_the_ca_and_the_register(tmp_path: Path) -> None:
    """The CA and every certificate issued survive a kill -9; after the restart the same
    CA signs, and the renewal supersedes the certificate issued before."""
    data = tmp_path / "data"
    config = tmp_path / "edge.toml"
    config.write_text(config_toml(data, call_timeout=5.0))
    async with serve(config, tmp_path / "first.log") as svc, api_client(svc.web_port) as api:
        async with asyncio.timeout(TIMEOUT), security_cp(svc.url("CP-K"), "CP-K") as cp:
            first = await sign_once(api, cp)
            await installed(api, "CP-K")
        ca_before = await api.get("/api/ca")

        def flushed() -> bool:
            # The register's file, as the restarted service will read it.
            raw = (data / "certificates.json").read_bytes()
            return b'"installed"' in raw

        await eventually(flushed, timeout=TIMEOUT)
        assert await svc.signal(signal.SIGKILL) == -signal.SIGKILL
    async with serve(config, tmp_path / "second.log") as svc, api_client(svc.web_port) as api:
        assert await api.get("/api/ca") == ca_before
        [entry] = await api.get("/api/certificates")
        assert entry["serial"] == format(first.serial_number, "x")
        assert entry["status"] == "installed"
        async with asyncio.timeout(TIMEOUT), security_cp(svc.url("CP-K"), "CP-K") as cp:
            second = await sign_once(api, cp)
            entries = await installed(api, "CP-K", count=2)
        assert [e["status"] for e in entries] == ["installed", "superseded"]
        site_ca = x509.load_pem_x509_certificate((data / "ca" / "ca.pem").read_bytes())
        second.verify_directly_issued_by(site_ca)
        assert ca_before["fingerprint"] == site_ca.fingerprint(hashes.SHA256()).hex()


def profile3_context(data: Path, server: certs.Paths) -> ssl.SSLContext:
    """A server context as the wss listener checks chargers: client certificates from
    `ca.pem`, the leaf checked against `crl.pem` (loaded afresh: the listener's reload)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=data / "ca" / "ca.pem")
    ctx.load_verify_locations(data / "ca" / "crl.pem")
    ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(server.cert, server.key)
    return ctx


@pytest.mark.parametrize("operator_ca", [False, True], ids=["site-root", "operator-intermediate"])
async def test_an_issued_certificate_passes_mutual_tls_until_revoked(
    tmp_path: Path, operator_ca: bool
) -> None:
    """What a charger installs from CertificateSigned authenticates at a real TLS handshake
    against ca.pem and crl.pem; once revoked through the API, it no longer does."""
    security: dict[str, Any] = {}
    if operator_ca:
        root = certs.make_ca("Operator Root")
        inter = certs.make_intermediate(root, "Operator Issuing")
        paths = certs.write(tmp_path / "operator", "issuing", inter, chain=[root])
        security = {"ca_certificate": paths.cert, "ca_private_key": paths.key}
    tls_root = certs.make_ca("Listener Root")
    server = certs.write(tmp_path / "srv", "server", certs.make_server_cert(tls_root))
    tls_root_file = certs.write_pem(tmp_path / "srv" / "root.pem", tls_root)
    data = tmp_path / "data"
    async with site_with_charger(security_config(tmp_path, **security), "CP-TLS") as (
        _app,
        api,
        cp,
    ):
        await renew(api, "CP-TLS")
        assert await cp.sign_answers.get() == "Accepted"
        chain = await cp.chains.get()
        await installed(api, "CP-TLS")
        client_dir = tmp_path / "charger"
        client_dir.mkdir()
        (client_dir / "client.pem").write_text(chain)
        (client_dir / "client.key").write_text(certs.key_pem(cp.keys[-1]))
        client = certs.client_context(
            tls_root_file, certs.Paths(client_dir / "client.pem", client_dir / "client.key")
        )
        assert await certs.handshake(profile3_context(data, server), client, "127.0.0.1") is None
        serial = format(x509.load_pem_x509_certificates(chain.encode())[0].serial_number, "x")
        status, _ = await api.request("POST", f"/api/certificates/{serial}/revoke")
        assert status == 200
        refused = await certs.handshake(profile3_context(data, server), client, "127.0.0.1")
        assert refused is not None and "revoked" in refused, refused
