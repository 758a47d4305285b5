"""SignCertificate → CertificateSigned against the real server (TC_074, TC_077), with the
`ocpp` package's ChargePoint as the charger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge.app import App
from edge.config import Config, SecurityConfig
from tests.conftest import Api, api_client, make_config, ocpp_url
from tests.helpers import eventually
from tests.security import certs
from tests.security.charger import TIMEOUT, SecurityCP, security_cp, site_with_charger


def security_config(tmp_path: Path, **security: Any) -> Config:
    return replace(make_config(tmp_path / "data"), security=SecurityConfig(**security))


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[App, Api]]:
    async with App(security_config(tmp_path)) as app, api_client(app.web_port) as api:
        yield app, api


async def trigger_renewal(api: Api, charger_id: str) -> None:
    status, body = await api.operation(
        charger_id, "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}
    )
    assert status == 200 and body["response"]["status"] == "Accepted", (status, body)


def register(app: App) -> list[dict[str, Any]]:
    assert app.services.certificates is not None
    return app.services.certificates.register.entries()


def cn_of(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def assert_chain(chain: str, cp: SecurityCP, data_dir: Path, cn: str) -> x509.Certificate:
    """What TC_074 (2025-11) checks of the chain, and what profile 3 will need of it."""
    assert "\r" not in chain and len(chain) <= 10_000
    certificates = x509.load_pem_x509_certificates(chain.encode())
    leaf, site_ca = certificates[0], certificates[1]
    assert site_ca == x509.load_pem_x509_certificate((data_dir / "ca" / "ca.pem").read_bytes())
    csr_key = cp.keys[-1].public_key()
    assert leaf.public_key().public_numbers() == csr_key.public_numbers()
    leaf.verify_directly_issued_by(site_ca)
    # SHA256withRSA, PKCS#1 v1.5 (OCTT quirk 3: not PSS).
    assert leaf.signature_algorithm_oid == x509.SignatureAlgorithmOID.RSA_WITH_SHA256
    ca_key = site_ca.public_key()
    assert isinstance(ca_key, rsa.RSAPublicKey)
    ca_key.verify(leaf.signature, leaf.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256())
    assert cn_of(leaf) == cn
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    return leaf


async def test_tc_074_certificate_by_request_of_the_csms(
    site: tuple[App, Api], tmp_path: Path
) -> None:
    """ExtendedTriggerMessage → SignCertificate Accepted → CertificateSigned with a chain
    from the site CA (created on this first use) → installed in the register."""
    app, api = site
    assert not (tmp_path / "data" / "ca" / "ca.pem").exists()
    async with asyncio.timeout(TIMEOUT), security_cp(ocpp_url(app, "CP-SEC"), "CP-SEC") as cp:
        await trigger_renewal(api, "CP-SEC")
        assert await cp.sign_answers.get() == "Accepted"
        chain = await cp.chains.get()
        # On the wire: BootNotification.conf, ExtendedTriggerMessage, SignCertificate.conf,
        # then CertificateSigned (the answer first, WP A02).
        assert cp.wire_kinds()[-2:] == ["CALLRESULT", "CALL CertificateSigned"]
        assert cp.wire[-2][2] == {"status": "Accepted"}
        leaf = assert_chain(chain, cp, tmp_path / "data", "CP-SEC")
        serial = format(leaf.serial_number, "x")
        entries = await eventually(
            lambda: [e for e in register(app) if e["status"] == "installed"] or None
        )
    assert entries[0]["serial"] == serial
    assert entries[0]["chargerId"] == "CP-SEC"
    assert entries[0]["subject"] == "CN=CP-SEC"
    assert entries[0]["fingerprint"] == leaf.fingerprint(hashes.SHA256()).hex()

    # The call went through the operation pipeline, journalled like an operator's (an
    # audit record, written behind the answer).
    def certificate_signed() -> list[dict[str, Any]]:
        operations = app.services.journal.events(charger_id="CP-SEC", kind="Operation")
        return [o["data"] for o in operations if o["data"]["action"] == "CertificateSigned"]

    sent = await eventually(certificate_signed)
    assert sent[0]["origin"] == "system" and sent[0]["response"]["status"] == "Accepted"


async def test_cn_may_be_the_serial_number_and_renewal_supersedes(
    site: tuple[App, Api], tmp_path: Path
) -> None:
    app, api = site
    async with asyncio.timeout(TIMEOUT), security_cp(ocpp_url(app, "CP-SN"), "CP-SN") as cp:
        cp.csr_cn = "SN-CP-SN"  # the chargePointSerialNumber it booted with
        await trigger_renewal(api, "CP-SN")
        assert await cp.sign_answers.get() == "Accepted"
        assert_chain(await cp.chains.get(), cp, tmp_path / "data", "SN-CP-SN")
        await eventually(lambda: [e for e in register(app) if e["status"] == "installed"] or None)
        # Renewal: a new CSR, a new certificate; the first one is superseded.
        cp.csr_options = {"key_type": "ec"}
        await trigger_renewal(api, "CP-SN")
        assert await cp.sign_answers.get() == "Accepted"
        second = assert_chain(await cp.chains.get(), cp, tmp_path / "data", "SN-CP-SN")

        def settled() -> list[str] | None:
            statuses = [e["status"] for e in register(app)]  # newest first
            return statuses if statuses == ["installed", "superseded"] else None

        await eventually(settled)
    newest, oldest = register(app)
    assert newest["serial"] == format(second.serial_number, "x")
    assert newest["key"] == "EC 256"
    assert oldest["supersededBy"] == newest["serial"]


async def test_tc_077_charger_rejects_the_certificate(site: tuple[App, Api]) -> None:
    """The charger answers CertificateSigned Rejected and raises
    InvalidChargePointCertificate: the event is recorded, the register says rejected."""
    app, api = site
    async with asyncio.timeout(TIMEOUT), security_cp(ocpp_url(app, "CP-REJ"), "CP-REJ") as cp:
        cp.answer = "Rejected"
        await trigger_renewal(api, "CP-REJ")
        assert await cp.sign_answers.get() == "Accepted"
        await cp.chains.get()
        await eventually(lambda: [e for e in register(app) if e["status"] == "rejected"] or None)
        events = await eventually(
            lambda: (
                app.services.journal.events(charger_id="CP-REJ", kind="SecurityEventNotification")
                or None
            )
        )
    assert events[0]["data"]["type"] == "InvalidChargePointCertificate"


@pytest.mark.parametrize(
    ("cn", "options", "why"),
    [
        ("CP-BAD", {"bad_signature": True}, "signature does not verify"),
        ("CP-BAD", {"key_size": 1024}, "1024 bits"),
        ("someone-else", {}, "neither the charger's identity nor its serial number"),
    ],
)
async def test_bad_csrs_are_rejected(
    site: tuple[App, Api], cn: str, options: dict[str, Any], why: str
) -> None:
    app, api = site
    async with asyncio.timeout(TIMEOUT), security_cp(ocpp_url(app, "CP-BAD"), "CP-BAD") as cp:
        cp.csr_cn, cp.csr_options = cn, options
        await trigger_renewal(api, "CP-BAD")
        assert await cp.sign_answers.get() == "Rejected"
        await asyncio.sleep(0.2)
        assert cp.chains.empty()
    refusals = app.services.journal.events(charger_id="CP-BAD", kind="SignCertificate")
    assert why in refusals[0]["data"]["reasons"][0]
    assert register(app) == []
    assert app.services.metrics.value("edge_ca_sign_requests_total", outcome="rejected") == 1


async def test_relaxed_subject_checks_accept_a_wrong_cn_but_issue_the_right_one(
    tmp_path: Path,
) -> None:
    """OCTT quirk 2: subject rules relaxable. The certificate still names the charger
    (its serial number) and the CPO; key and signature rules stay."""
    config = security_config(tmp_path, relaxed_subject_checks=True, cpo_name="ACME CPO")
    async with site_with_charger(config, "CP-R") as (_app, api, cp):
        cp.csr_cn = "OCTT"
        await trigger_renewal(api, "CP-R")
        assert await cp.sign_answers.get() == "Accepted"
        leaf = assert_chain(await cp.chains.get(), cp, tmp_path / "data", "SN-CP-R")
        assert leaf.subject.rfc4514_string() == "O=ACME CPO,CN=SN-CP-R"
        cp.csr_options = {"key_size": 1024}
        await trigger_renewal(api, "CP-R")
        assert await cp.sign_answers.get() == "Rejected"


async def test_strict_cpo_name_refuses_a_csr_without_it(tmp_path: Path) -> None:
    config = security_config(tmp_path, cpo_name="ACME CPO")
    async with site_with_charger(config, "CP-O") as (_app, api, cp):
        await trigger_renewal(api, "CP-O")
        assert await cp.sign_answers.get() == "Rejected"
        cp.csr_options = {"org": "ACME CPO"}
        await trigger_renewal(api, "CP-O")
        assert await cp.sign_answers.get() == "Accepted"
        leaf = assert_chain(await cp.chains.get(), cp, tmp_path / "data", "CP-O")
    assert leaf.subject.rfc4514_string() == "O=ACME CPO,CN=CP-O"


async def test_an_operators_intermediate_signs(tmp_path: Path) -> None:
    """`[security] ca_certificate` / `ca_private_key`: the operator's intermediate signs,
    the chain carries leaf, intermediate and root, and ca.pem holds the operator's chain."""
    root = certs.make_ca("Operator Root")
    inter = certs.make_intermediate(root, "Operator Site Issuing")
    paths = certs.write(tmp_path / "operator", "issuing", inter, chain=[root])
    config = security_config(tmp_path, ca_certificate=paths.cert, ca_private_key=paths.key)
    async with site_with_charger(config, "CP-I") as (_app, api, cp):
        assert (tmp_path / "data" / "ca" / "ca.pem").read_text() == paths.cert.read_text()
        assert not (tmp_path / "data" / "ca" / "ca.key").exists()
        await trigger_renewal(api, "CP-I")
        assert await cp.sign_answers.get() == "Accepted"
        chain = await cp.chains.get()
        leaf, issuing, top = x509.load_pem_x509_certificates(chain.encode())
        assert (issuing, top) == (inter.cert, root.cert)
        leaf.verify_directly_issued_by(inter.cert)
        assert leaf.public_key().public_numbers() == cp.keys[-1].public_key().public_numbers()
        assert cn_of(leaf) == "CP-I" and "\r" not in chain
        ca = await api.get("/api/ca")
        assert ca["operatorCa"] is True and ca["chainLength"] == 2
        assert "Operator Site Issuing" in ca["subject"]


async def test_an_unusable_operator_ca_answers_rejected(tmp_path: Path) -> None:
    """Accepted only when a chain will really be sent: a broken operator CA (its key does
    not match) makes SignCertificate Rejected, and the service keeps serving."""
    root = certs.make_ca("Operator Root")
    other = certs.make_ca("Other")
    cert = certs.write_pem(tmp_path / "operator" / "ca.pem", root)
    key = tmp_path / "operator" / "other.key"
    key.write_text(other.key_pem)
    config = security_config(tmp_path, ca_certificate=cert, ca_private_key=key)
    async with site_with_charger(config, "CP-X") as (app, api, cp):
        await trigger_renewal(api, "CP-X")
        assert await cp.sign_answers.get() == "Rejected"
        assert register(app) == []
        # Journalled behind the answer (an audit record the charger does not wait for).
        refusals = await eventually(
            lambda: app.services.journal.events(charger_id="CP-X", kind="SignCertificate")
        )
        assert "does not belong" in refusals[0]["data"]["reasons"][0]


async def test_a_pending_charger_may_send_the_triggered_sign_certificate(
    tmp_path: Path,
) -> None:
    """While Pending a charger may send only what the CSMS triggered (OCPP-J errata 3.10):
    ExtendedTriggerMessage(SignChargePointCertificate) brings a SignCertificate."""
    config = make_config(tmp_path / "data", unknown_chargers="pending")
    async with site_with_charger(config, "CP-P", registration="Pending") as (_app, api, cp):
        await trigger_renewal(api, "CP-P")
        assert await cp.sign_answers.get() == "Accepted"
        assert_chain(await cp.chains.get(), cp, tmp_path / "data", "CP-P")
