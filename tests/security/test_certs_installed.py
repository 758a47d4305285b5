"""What the CSMS keeps of the certificates chargers hold: TC_075, TC_076, TC_078, the raw
operations recording the same, and the bookkeeping across a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from edge.app import App
from edge.config import Config
from edge.security import installed
from tests.conftest import Api, running
from tests.helpers import eventually_listed
from tests.security.certs_charger import TIMEOUT, hash_data, make_certificate, make_key, sec_charger

CP = "SEC-CERT"
CERTS = f"/api/chargers/{CP}/certificates"

# --- pure bookkeeping ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rsa", "ec"])
@pytest.mark.parametrize("algorithm", ["SHA256", "SHA384", "SHA512"])
def test_hash_data_of_a_root_match_the_chargers(kind: str, algorithm: str) -> None:
    """The CSMS's hash data of a self-signed root equal the independent computation."""
    pem, cert, _ = make_certificate("Root", key=make_key(kind))
    info = installed.describe_certificate(pem)
    assert info is not None
    assert info.hashes[algorithm] == hash_data(cert, algorithm)


def test_hash_data_of_an_issued_certificate() -> None:
    """Followed by its issuer in the PEM, a certificate's issuerKeyHash is the issuer's key;
    alone, it is unknown (""), and the name and serial still match a report."""
    _, root, root_key = make_certificate("Root")
    pem, leaf, _ = make_certificate("Sub", issuer=(root, root_key), serial=0x00ABC)
    unrelated = make_certificate("x")[0]
    chained = installed.describe_certificate(pem + root.public_bytes(Encoding.PEM).decode())
    assert chained is not None
    assert chained.hashes["SHA256"] == hash_data(leaf, "SHA256", issuer=root)
    assert chained.hashes["SHA256"]["serialNumber"] == "abc"
    alone = installed.describe_certificate(pem + unrelated)
    assert alone is not None and alone.hashes["SHA384"]["issuerKeyHash"] == ""
    state = installed.after_install(None, "ManufacturerRootCertificate", pem, "Accepted", "t0")
    reported = {**hash_data(leaf, "SHA384", issuer=root), "serialNumber": "0ABC"}
    state = installed.after_report(
        state, "ManufacturerRootCertificate", "Accepted", [reported], "t1"
    )
    [entry] = state["ManufacturerRootCertificate"]
    assert entry["reported"] and entry["certificateHashData"] == reported
    assert entry["subject"] == "CN=Sub"  # recognised despite case and leading zero


def test_bookkeeping_effects() -> None:
    """Only Accepted installs add; a report replaces its type only; Accepted or NotFound
    deletes remove; find_entry takes an id, a fingerprint or a unique serial."""
    pem_a, _, _ = make_certificate("A")
    pem_b, cert_b, _ = make_certificate("B")
    t = "CentralSystemRootCertificate"
    state = installed.after_install(None, t, pem_a, "Rejected", "t0")
    assert state == {}
    state = installed.after_install(state, t, pem_a, "Accepted", "t0")
    state = installed.after_install(state, t, pem_a, "Accepted", "t0")  # the same again
    state = installed.after_install(state, "ManufacturerRootCertificate", pem_b, "Accepted", "t0")
    assert [len(v) for v in state.values()] == [1, 1]
    state = installed.after_report(state, t, "NotFound", None, "t1")
    assert state[t] == [] and len(state["ManufacturerRootCertificate"]) == 1
    entry = state["ManufacturerRootCertificate"][0]
    assert installed.find_entry(state, entry["id"]) is entry
    assert installed.find_entry(state, cert_b.fingerprint(hashes.SHA256()).hex()) is entry
    assert installed.find_entry(state, format(cert_b.serial_number, "X")) is entry
    assert installed.find_entry(state, "nope") is None
    assert installed.delete_hash_data(entry, "SHA512") == hash_data(cert_b, "SHA512")
    kept = installed.after_delete(state, entry["certificateHashData"], "Failed")
    assert kept == state
    gone = installed.after_delete(state, hash_data(cert_b, "SHA384"), "NotFound")
    assert gone["ManufacturerRootCertificate"] == []


def test_pem_line_ends() -> None:
    """PEM sent to a charger has `\\n` line ends only (OCTT quirk 4)."""
    pem, _, _ = make_certificate("Root")
    assert installed.normalize_pem(pem.replace("\n", "\r\n")) == pem
    bare = pem.rstrip("\n")  # otherwise as given: no newline added
    assert installed.normalize_pem(bare.replace("\n", "\r\n")) == bare


# --- against the running service ------------------------------------------------------------


@pytest.mark.parametrize(
    "certificate_type", ["ManufacturerRootCertificate", "CentralSystemRootCertificate"]
)
async def test_tc_075_install_then_get_ids(app: App, api: Api, certificate_type: str) -> None:
    """TC_075_1/2: InstallCertificate with the configured root (its `\\r\\n` made `\\n`),
    Accepted, then GetInstalledCertificateIds of the same type answers its hash data;
    the charger's entry is shown with what the CSMS read of the certificate."""
    pem, cert, _ = make_certificate(f"{certificate_type} root")
    async with sec_charger(app, CP) as cp:
        code, body = await api.request(
            "POST",
            CERTS,
            {
                "certificateType": certificate_type,
                "certificate": pem.replace("\n", "\r\n"),
            },
        )
        assert code == 200, body
        assert body["response"] == {"status": "Accepted"}
        assert body["certificate"]["certificateHashData"] == hash_data(cert, "SHA256")
        assert cp.requests["InstallCertificate"] == [{"type": certificate_type, "pem": pem}]
        [entry] = (await api.get(CERTS))["installedCertificates"][certificate_type]
        assert entry["reported"] is False and entry["subject"] == f"CN={certificate_type} root"
        code, body = await api.request(
            "POST", f"{CERTS}/query", {"certificateType": certificate_type}
        )
        assert code == 200, body
        reported = body["responses"][certificate_type]
        assert reported["status"] == "Accepted"
        assert reported["certificateHashData"] == [hash_data(cert, "SHA256")]
        assert cp.requests["GetInstalledCertificateIds"] == [{"type": certificate_type}]
    detail = await api.get(f"/api/chargers/{CP}")
    [entry] = detail["installedCertificates"][certificate_type]
    assert entry["reported"] is True and "knownHashes" not in entry
    assert entry["certificateHashData"] == hash_data(cert, "SHA256")
    assert [h["action"] for h in detail["certificateHistory"]] == [
        "InstallCertificate",
        "GetInstalledCertificateIds",
    ]


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA384", "SHA512"])
async def test_tc_076_delete_a_specific_certificate(app: App, api: Api, algorithm: str) -> None:
    """TC_076 (2025-11 edition, per algorithm): a second CentralSystemRootCertificate is
    installed (raw operation), the charger reports both in `algorithm`, the operator
    deletes one by its id and DeleteCertificate carries exactly what the charger reported;
    the next report no longer has it, nor does the CSMS."""
    t = "CentralSystemRootCertificate"
    pem_1, cert_1, _ = make_certificate("Root 1")
    pem_2, cert_2, _ = make_certificate("Root 2", key=make_key("ec"))
    async with sec_charger(app, CP) as cp:
        cp.hash_algorithm = algorithm
        for pem in (pem_1, pem_2):
            code, body = await api.operation(
                CP, "InstallCertificate", {"certificateType": t, "certificate": pem}
            )
            assert (code, body) == (200, {"response": {"status": "Accepted"}})
        code, body = await api.operation(CP, "GetInstalledCertificateIds", {"certificateType": t})
        assert code == 200 and len(body["response"]["certificateHashData"]) == 2
        entries = (await api.get(CERTS))["installedCertificates"][t]
        [second] = [e for e in entries if e["subject"] == "CN=Root 2"]
        assert second["certificateHashData"] == hash_data(cert_2, algorithm)
        code, body = await api.request("DELETE", f"{CERTS}/{second['id']}")
        assert code == 200, body
        assert body["response"] == {"status": "Accepted"}
        assert cp.requests["DeleteCertificate"] == [hash_data(cert_2, algorithm)]
        assert [e["subject"] for e in (await api.get(CERTS))["installedCertificates"][t]] == [
            "CN=Root 1"
        ]
        code, body = await api.request("POST", f"{CERTS}/query", {"certificateType": t})
        assert body["responses"][t]["certificateHashData"] == [hash_data(cert_1, algorithm)]
        code, body = await api.request("DELETE", f"{CERTS}/{second['id']}")
        assert code == 404 and body["error"] == "unknown_certificate"


async def test_raw_delete_records_the_same(app: App, api: Api) -> None:
    """A raw DeleteCertificate (the cloud's or an operator's own hash data) removes the
    certificate from the bookkeeping as the friendly route does; a Failed one keeps it."""
    t = "ManufacturerRootCertificate"
    pem, cert, _ = make_certificate("Maker")
    async with sec_charger(app, CP) as cp:
        code, _ = await api.request("POST", CERTS, {"certificateType": t, "certificate": pem})
        assert code == 200
        cp.hash_algorithm = "SHA512"  # never reported: the CSMS knows all three itself
        cp.answers["DeleteCertificate"] = "Failed"
        raw = {"certificateHashData": hash_data(cert, "SHA512")}
        assert (await api.operation(CP, "DeleteCertificate", raw))[0] == 200
        assert len((await api.get(CERTS))["installedCertificates"][t]) == 1
        del cp.answers["DeleteCertificate"]
        code, body = await api.operation(CP, "DeleteCertificate", raw)
        assert (code, body) == (200, {"response": {"status": "Accepted"}})
        assert (await api.get(CERTS))["installedCertificates"][t] == []
        history = (await api.get(CERTS))["history"]
        assert [h["status"] for h in history] == ["Accepted", "Failed", "Accepted"]


async def test_tc_078_rejected_install_and_its_security_event(app: App, api: Api) -> None:
    """TC_078: the charger rejects the CentralSystemRootCertificate and reports
    InvalidCentralSystemCertificate; the CSMS answers it, records the rejection, keeps no
    certificate, and lists the event."""
    pem, _, _ = make_certificate("Bad root")
    t = "CentralSystemRootCertificate"
    async with sec_charger(app, CP) as cp:
        cp.answers["InstallCertificate"] = "Rejected"
        code, body = await api.request("POST", CERTS, {"certificateType": t, "certificate": pem})
        assert (code, body["response"]) == (200, {"status": "Rejected"})
        [event] = await eventually_listed(api, f"/api/security/events?chargerId={CP}")
    assert event["type"] == "InvalidCentralSystemCertificate" and event["source"] == "charger"
    listed = await api.get(CERTS)
    assert listed["installedCertificates"].get(t, []) == []
    assert [(h["action"], h["status"], h["subject"]) for h in listed["history"]] == [
        ("InstallCertificate", "Rejected", "CN=Bad root")
    ]


async def test_unreadable_certificate_is_sent_with_a_warning(app: App, api: Api) -> None:
    """Not over-validated: a certificate the CSMS cannot read is sent all the same (the
    schema allows it), with a warning; only what the schema forbids is refused."""
    t = "CentralSystemRootCertificate"
    odd = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"
    async with sec_charger(app, CP) as cp:
        code, body = await api.request("POST", CERTS, {"certificateType": t, "certificate": odd})
        assert code == 200 and body["certificate"] is None
        assert body["warnings"][0]["field"] == "certificate"
        assert cp.requests["InstallCertificate"][0]["pem"] == odd
        code, body = await api.request(
            "POST", CERTS, {"certificateType": t, "certificate": "x" * 5501}
        )
        assert code == 400 and body["error"] == "invalid_payload"
        code, body = await api.request(
            "POST", CERTS, {"certificateType": "Other", "certificate": odd}
        )
        assert code == 400
    assert len(cp.requests["InstallCertificate"]) == 1


async def test_bookkeeping_survives_a_restart(config: Config, tmp_path: Path) -> None:
    """What the CSMS knows a charger holds is on disk when the API answers."""
    t = "ManufacturerRootCertificate"
    pem, cert, _ = make_certificate("Durable")
    log = {"logType": "SecurityLog", "requestId": 3,
           "log": {"remoteLocation": "https://logs.example.com/"}}  # fmt: skip
    async with running(config) as (app, api), sec_charger(app, CP) as cp:
        code, _ = await api.request("POST", CERTS, {"certificateType": t, "certificate": pem})
        assert code == 200
        assert (await api.request("POST", f"{CERTS}/query", {}))[0] == 200
        assert (await api.request("POST", f"/api/chargers/{CP}/logs", log))[0] == 200
        async with asyncio.timeout(TIMEOUT):
            await cp.done.get()
    async with running(config) as (app, api):
        [entry] = (await api.get(CERTS))["installedCertificates"][t]
        assert entry["reported"] and entry["subject"] == "CN=Durable"
        assert entry["certificateHashData"] == hash_data(cert, "SHA256")
        detail = await api.get(f"/api/chargers/{CP}")
        assert detail["logRequests"]["3"]["status"] == "Uploaded"
        assert len(detail["certificateHistory"]) == 3
