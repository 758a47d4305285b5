"""The wss listener against real TLS on 127.0.0.1 (TC_086, TC_087, TC_088 over wss).

TLS 1.2 or newer only, each of the Whitepaper's four suites negotiable, client
certificates requested but optional, verified against the client CA; expired, revoked and
foreign ones refused at the handshake; reload of the material without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import warnings
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from edge.app import App
from edge.config import ChargerSettings
from edge.security.tls import TlsError
from tests.helpers import eventually
from tests.security import certs
from tests.security.certs import crl_pem, make_ca, make_crl, write_pem
from tests.security.conn_support import (
    PASSWORD,
    Pki,
    charger,
    http_status,
    make_pki,
    open_ws,
    refused,
    security_events,
    serving,
    tls11_client,
    tls_config,
    wss_url,
)

WHITEPAPER_SUITES = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",  # TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    "ECDHE-ECDSA-AES256-GCM-SHA384",  # TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
    "AES128-GCM-SHA256",  # TLS_RSA_WITH_AES_128_GCM_SHA256
    "AES256-GCM-SHA384",  # TLS_RSA_WITH_AES_256_GCM_SHA384
]


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


async def events(app: App, event_type: str) -> list[dict[str, Any]]:
    return await security_events(app.web_port, event_type)


async def test_profile2_charger_over_wss_with_basic_auth(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """TC_086: TLS handshake (no client certificate), Basic auth, Boot; TLS 1.2 or newer."""
    caplog.set_level(logging.INFO)
    chargers = {"CP2": ChargerSettings(password=PASSWORD, security_profile=2)}
    async with serving(tls_config(tmp_path / "d", pki, chargers)) as (app, api):
        assert f"listening for OCPP 1.6J on wss://127.0.0.1:{app.ocpp_tls_port}/" in caplog.text
        async with charger(wss_url(app, "CP2"), ssl_context=pki.context(), password=PASSWORD):
            detail = await api.get("/api/chargers/CP2")
            security = detail["security"]
            assert security["profile"] == 2
            assert security["connectedAt"]["profile"] == 2
            assert security["connectedAt"]["tls"] in ("TLSv1.2", "TLSv1.3")
        # Without the password, or with a wrong one: 401 before the upgrade.
        err = await refused(wss_url(app, "CP2"), ssl_context=pki.context())
        assert http_status(err) == 401
        err = await refused(wss_url(app, "CP2"), ssl_context=pki.context(), password="x" * 16)
        assert http_status(err) == 401


async def test_tls12_and_tls13_accepted(tmp_path: Path, pki: Pki) -> None:
    """A client limited to TLS 1.2, and one limited to TLS 1.3, both connect."""
    async with serving(tls_config(tmp_path / "d", pki)) as (app, _):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = pki.context()
            ctx.minimum_version = ctx.maximum_version = version
            ws = await open_ws(wss_url(app, "CPV"), ssl_context=ctx)
            try:
                negotiated = ws.transport.get_extra_info("ssl_object").version()
                assert negotiated == version.name.replace("_", ".")  # TLSv1_2 → TLSv1.2
            finally:
                await ws.close()


async def test_client_offering_only_tls11_is_refused(tmp_path: Path, pki: Pki) -> None:
    """TC_086: a client offering only TLS 1.1 gets no connection, and the refusal is a
    security event. The same client does speak TLS 1.1 to a server that allows it."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(writer.get_extra_info("ssl_object").version().encode() + b"\n")
        await writer.drain()
        writer.close()

    permissive = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        permissive.minimum_version = ssl.TLSVersion.TLSv1_1
    permissive.set_ciphers("DEFAULT:@SECLEVEL=0")
    permissive.load_cert_chain(pki.server.cert, pki.server.key)
    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=permissive)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls11_client(pki))
        assert (await reader.readline()).strip() == b"TLSv1.1"
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    async with serving(tls_config(tmp_path / "d", pki)) as (app, _):
        err = await refused(wss_url(app, "CP11"), ssl_context=tls11_client(pki))
        assert http_status(err) is None  # ended in the TLS handshake, not by HTTP
        found = await eventually(lambda: events(app, "TlsHandshakeRefused"))
        assert any("UNSUPPORTED_PROTOCOL" in str(e["data"]) for e in found), found


@pytest.mark.parametrize("suite", WHITEPAPER_SUITES)
async def test_whitepaper_suite_is_negotiable(tmp_path: Path, pki: Pki, suite: str) -> None:
    """TC_086: each of the four suites, offered alone over TLS 1.2, is the one chosen
    (the ECDSA ones from the EC certificate beside the RSA one)."""
    config = tls_config(tmp_path / "d", pki, both_key_types=True)
    async with serving(config) as (app, _):
        ctx = pki.context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(suite)
        ws = await open_ws(wss_url(app, "CPS"), ssl_context=ctx)
        try:
            assert ws.transport.get_extra_info("cipher")[0] == suite
        finally:
            await ws.close()


async def test_weak_or_unknown_suites_are_not_offered(tmp_path: Path, pki: Pki) -> None:
    """CBC and non-AEAD suites are not negotiable over TLS 1.2."""
    async with serving(tls_config(tmp_path / "d", pki)) as (app, _):
        ctx = pki.context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("AES128-SHA256:ECDHE-RSA-AES128-SHA256")
        err = await refused(wss_url(app, "CPW"), ssl_context=ctx)
        assert http_status(err) is None


async def test_profile3_charger_with_client_certificate(tmp_path: Path, pki: Pki) -> None:
    """TC_087: a client certificate from the client CA, CN = identity, no password."""
    chargers = {"CP3": ChargerSettings(security_profile=3)}
    async with serving(tls_config(tmp_path / "d", pki, chargers)) as (app, api):
        ctx = pki.context(pki.client("CP3"))
        async with charger(wss_url(app, "CP3"), ssl_context=ctx):
            security = (await api.get("/api/chargers/CP3"))["security"]
            assert security["profile"] == 3
            assert security["connectedAt"]["profile"] == 3
        # A certificate naming another charger does not make this one profile 3.
        err = await refused(wss_url(app, "CP3"), ssl_context=pki.context(pki.client("CP4")))
        assert http_status(err) == 403
        found = await eventually(lambda: events(app, "InvalidChargePointCertificate"))
        assert found[0]["charger_id"] == "CP3"


async def test_the_connection_and_its_client_certificate_in_the_api(
    tmp_path: Path, pki: Pki
) -> None:
    """`connectedAt` names the transport and the client certificate in use (serial,
    expiry, whether it ends within 30 days), in /api/chargers too; a CRL that lists it,
    read while the charger is connected, makes it `revoked`; the server certificates
    say how long they have left."""
    crl_file = tmp_path / "crl.pem"
    crl_file.write_text(crl_pem(make_crl(pki.ca)))
    chargers = {"CP3": ChargerSettings(security_profile=3)}
    issued = certs.make_client_cert(pki.ca, "CP3", days=20)
    client = certs.write(pki.root, "client-soon", issued)
    async with serving(tls_config(tmp_path / "d", pki, chargers, crl=crl_file)) as (app, api):
        async with charger(wss_url(app, "CP3"), ssl_context=pki.context(client)):
            connected = (await api.get("/api/chargers/CP3"))["security"]["connectedAt"]
            assert connected["transport"] == "wss" and connected["profile"] == 3
            certificate = connected["certificate"]
            assert certificate["serial"] == format(issued.serial, "x")
            assert certificate["subject"] == "CN=CP3"
            assert certificate["expiresInDays"] in (19, 20) and certificate["expiringSoon"]
            assert certificate["revoked"] is False
            [listed] = await api.get("/api/chargers")
            assert listed["security"]["connectedAt"] == connected
            assert listed["security"]["profile"] == 3
            crl_file.write_text(crl_pem(make_crl(pki.ca, [issued.serial])))
            status, _ = await api.request("POST", "/api/security/tls/reload")
            assert status == 200
            listed = (await api.get("/api/chargers"))[0]["security"]["connectedAt"]
            assert listed["certificate"]["revoked"] is True
        assert (await api.get("/api/about"))["wss"] is True
        tls = await api.get("/api/security/tls")
        assert {c["expiringSoon"] for c in tls["certificates"]} == {False}
        assert all(c["expiresInDays"] >= 360 for c in tls["certificates"])


async def test_relaxed_subject_checks_accept_any_cn(tmp_path: Path, pki: Pki) -> None:
    """`[security] relaxed_subject_checks`: a test tool's certificate with another CN."""
    chargers = {"CP3": ChargerSettings(security_profile=3)}
    config = tls_config(tmp_path / "d", pki, chargers, relaxed=True)
    async with (
        serving(config) as (app, _),
        charger(wss_url(app, "CP3"), ssl_context=pki.context(pki.client("OCTT"))),
    ):
        pass


async def test_expired_foreign_and_revoked_certificates_are_refused(
    tmp_path: Path, pki: Pki
) -> None:
    """An expired client certificate, one from another CA, and a revoked one end in the TLS
    handshake; each is a security event with OpenSSL's reason. The site CA and its CRL
    are found in the data dir (`ca/ca.pem`, `ca/crl.pem`) with no client_ca configured."""
    data_dir = tmp_path / "d"
    write_pem(data_dir / "ca" / "ca.pem", pki.ca)
    good = pki.client("CP3")
    revoked = pki.client("CP3")
    (data_dir / "ca" / "crl.pem").write_text(crl_pem(make_crl(pki.ca, [pki.issued(revoked)])))
    chargers = {"CP3": ChargerSettings(security_profile=3)}
    config = tls_config(data_dir, pki, chargers, client_ca=False)
    async with serving(config) as (app, api):
        tls = await api.get("/api/security/tls")
        assert tls["clientCa"].endswith("ca/ca.pem") and tls["crlCheckedInHandshake"] is True
        async with charger(wss_url(app, "CP3"), ssl_context=pki.context(good)):
            pass
        other_ca = make_ca("Other CA")
        cases = {
            "expired": pki.client("CP3", expired=True),
            "foreign": pki.client("CP3", issuer=other_ca),
            "revoked": revoked,
        }
        for name, paths in cases.items():
            err = await refused(wss_url(app, "CP3"), ssl_context=pki.context(paths))
            assert http_status(err) is None, (name, err)
        expected = ("certificate has expired", "unable to get local issuer", "revoked")

        async def all_reasons() -> bool:
            text = " | ".join(str(e["data"]) for e in await events(app, "TlsHandshakeRefused"))
            return all(reason in text for reason in expected)

        assert await eventually(all_reasons)
        assert (await api.get("/api/chargers/CP3"))["connected"] is False


async def test_revoked_certificate_refused_at_upgrade_when_crl_is_expired(
    tmp_path: Path, pki: Pki
) -> None:
    """An expired CRL is not given to OpenSSL (it would refuse every charger); its
    revocations are still refused, at the HTTP upgrade (403)."""
    revoked = pki.client("CP3")
    crl_file = tmp_path / "crl.pem"
    crl_file.write_text(crl_pem(make_crl(pki.ca, [pki.issued(revoked)], expired=True)))
    chargers = {"CP3": ChargerSettings(security_profile=3)}
    config = tls_config(tmp_path / "d", pki, chargers, crl=crl_file)
    async with serving(config) as (app, api):
        tls = await api.get("/api/security/tls")
        assert tls["crlCheckedInHandshake"] is False and tls["revokedCertificates"] == 1
        err = await refused(wss_url(app, "CP3"), ssl_context=pki.context(revoked))
        assert http_status(err) == 403
        async with charger(wss_url(app, "CP3"), ssl_context=pki.context(pki.client("CP3"))):
            pass
        assert await eventually(lambda: events(app, "RevokedCertificateRefused"))


async def test_reload_applies_to_new_connections_and_a_failed_one_keeps_the_old(
    tmp_path: Path, pki: Pki
) -> None:
    """POST /api/security/tls/reload picks up a new client CA and a CRL; a revocation
    reported through `services.security_changed()` too; a reload of broken material
    answers 422 with why and the listener keeps serving with the old context."""
    data_dir = tmp_path / "d"
    ca_file = write_pem(data_dir / "ca" / "ca.pem", pki.ca)
    chargers = {"CP3": ChargerSettings(security_profile=3)}
    config = tls_config(data_dir, pki, chargers, client_ca=False)
    other = make_ca("Next CA")
    from_other = pki.client("CP3", issuer=other)
    async with serving(config) as (app, api):
        assert (
            http_status(await refused(wss_url(app, "CP3"), ssl_context=pki.context(from_other)))
            is None
        )
        write_pem(ca_file, pki.ca, other)
        status, body = await api.request("POST", "/api/security/tls/reload")
        assert status == 200 and body["reloaded"] is True and body["clientCas"] == 2
        async with charger(wss_url(app, "CP3"), ssl_context=pki.context(from_other)):
            pass
        # A revocation: the CA writes crl.pem and calls the hook.
        (data_dir / "ca" / "crl.pem").write_text(crl_pem(make_crl(other, [pki.issued(from_other)])))
        app.services.security_changed()

        async def refused_now() -> bool:
            try:
                ws = await open_ws(wss_url(app, "CP3"), ssl_context=pki.context(from_other))
            except Exception:
                return True
            await ws.close()
            return False

        assert await eventually(refused_now)
        # Broken material: the reload says why and changes nothing.
        good_cert = pki.server.cert.read_bytes()
        pki.server.cert.write_text("not a certificate\n")
        try:
            status, body = await api.request("POST", "/api/security/tls/reload")
            assert status == 422 and body["error"] == "reload_failed"
            assert "not a PEM certificate" in str(body["problems"])
        finally:
            pki.server.cert.write_bytes(good_cert)
        async with charger(wss_url(app, "CP3"), ssl_context=pki.context(pki.client("CP3"))):
            pass


async def test_fatal_server_certificate_problem_stops_the_start(tmp_path: Path, pki: Pki) -> None:
    """A private key that does not match the certificate: the service does not start."""
    config = tls_config(tmp_path / "d", pki)
    bad = config.ocpp.tls
    assert bad is not None
    import dataclasses

    config = dataclasses.replace(
        config,
        ocpp=dataclasses.replace(
            config.ocpp, tls=dataclasses.replace(bad, private_key=pki.server_ec.key)
        ),
    )
    with pytest.raises(TlsError) as info:
        async with App(config):
            pass
    assert "does not match" in str(info.value)


async def test_subprotocol_rule_holds_over_wss(tmp_path: Path, pki: Pki) -> None:
    """TC_088 on the wss listener: `ocpp0.1` alone is refused with 400, `ocpp0.1,ocpp1.6`
    is upgraded with exactly `ocpp1.6`."""
    async with serving(tls_config(tmp_path / "d", pki)) as (app, _):
        err = await refused(
            wss_url(app, "CP88"), ssl_context=pki.context(), subprotocols=["ocpp0.1"]
        )
        assert http_status(err) == 400
        ws = await open_ws(
            wss_url(app, "CP88"), ssl_context=pki.context(), subprotocols=["ocpp0.1", "ocpp1.6"]
        )
        try:
            assert ws.response is not None
            assert ws.response.headers.get_all("Sec-WebSocket-Protocol") == ["ocpp1.6"]
        finally:
            await ws.close()


async def test_a_revocation_holds_before_the_listener_has_reloaded_the_crl(
    tmp_path: Path, pki: Pki
) -> None:
    """A certificate revoked through the API is refused from the next connection on: at
    the upgrade (403) while the listener has not yet read the new CRL (its reload runs
    after the answer), as the register already says revoked."""
    data_dir = tmp_path / "d"
    chargers = {"CP3": ChargerSettings(security_profile=3)}
    config = tls_config(data_dir, pki, chargers, client_ca=False)
    async with serving(config) as (app, api):
        status, _ = await api.request("POST", "/api/ca")
        assert status == 201
        status, body = await api.request("POST", "/api/security/tls/reload")
        assert status == 200 and body["clientCa"].endswith("ca/ca.pem"), body
        site = certs.Issued(
            x509.load_pem_x509_certificate((data_dir / "ca" / "ca.pem").read_bytes()),
            certs.load_key((data_dir / "ca" / "ca.key").read_bytes()),
        )
        issued = certs.make_client_cert(site, "CP3")
        serial = format(issued.serial, "x")
        assert app.services.certificates is not None
        app.services.certificates.register.add(
            {"serial": serial, "chargerId": "CP3", "subject": "CN=CP3", "status": "installed",
             "notAfter": "2027-12-04T00:00:00.000Z", "issuedAt": "2026-12-04T00:00:00.000Z"}
        )  # fmt: skip
        ctx = pki.context(certs.write(tmp_path / "charger", "client", issued))
        async with charger(wss_url(app, "CP3"), ssl_context=ctx):
            pass
        app.services.tls_reload = lambda: None  # the reload has not run yet
        status, body = await api.request("POST", f"/api/certificates/{serial}/revoke")
        assert status == 200 and body["status"] == "revoked", body
        assert http_status(await refused(wss_url(app, "CP3"), ssl_context=ctx)) == 403
        found = await eventually(lambda: events(app, "RevokedCertificateRefused"))
        assert found[0]["charger_id"] == "CP3"
