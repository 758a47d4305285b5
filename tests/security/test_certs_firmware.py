"""SignedUpdateFirmware of a firmware file the edge hosts (TC_080, TC_081), each
SignedFirmwareStatusNotification tracked per requestId; the charger downloads the image
over the signed link and checks the manufacturer's signature itself."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from edge.app import App
from edge.features.security_flows import firmware_signature_check
from tests.conftest import API_TOKEN, Api
from tests.helpers import eventually_listed, iso
from tests.security.certs_charger import (
    TIMEOUT,
    SecCP,
    make_certificate,
    make_key,
    sec_charger,
    sign_firmware,
)

CP = "SEC-FW"
UPDATE = f"/api/chargers/{CP}/signed-firmware-update"
IMAGE = os.urandom(64_000)


async def host(api: Api, name: str, data: bytes) -> None:
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    async with api.session.put(f"{api.base}/api/firmware/{name}", data=data, headers=headers) as r:
        assert r.status == 201


async def statuses(api: Api, request_id: int) -> list[str]:
    [request] = [r for r in await api.get(f"/api/chargers/{CP}/signed-firmware")
                 if r["requestId"] == request_id]  # fmt: skip
    return [h["status"] for h in request["history"]]


async def wait_done(cp: SecCP) -> str:
    async with asyncio.timeout(TIMEOUT):
        return await cp.done.get()


@pytest.mark.parametrize("kind", ["rsa", "ec"])
async def test_tc_080_secure_firmware_update(
    app: App, api: Api, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """TC_080: SignedUpdateFirmware carries the hosted file's link, the configured signing
    certificate and signature, retrieveDateTime and requestId; the charger downloads,
    verifies, installs, reboots (a new connection and boot), reports FirmwareUpdated,
    Available and Installed; every message is answered and the request ends Installed."""
    caplog.set_level(logging.INFO, logger="edge.security")
    certificate, _, key = make_certificate("Maker firmware signing", key=make_key(kind), ca=False)
    signature = sign_firmware(IMAGE, key)
    await host(api, "fw-3.0.bin", IMAGE)
    async with sec_charger(app, CP) as cp:
        code, body = await api.request(
            "POST", UPDATE,
            {"file": "fw-3.0.bin", "signingCertificate": certificate, "signature": signature,
             "retries": 2, "requestId": 42},
        )  # fmt: skip
        assert code == 200, body
        assert body["response"] == {"status": "Accepted"} and "warnings" not in body
        assert body["signatureCheck"] == "valid" and body["requestId"] == 42
        [sent] = cp.requests["SignedUpdateFirmware"]
        firmware = sent["firmware"]
        assert sent["requestId"] == 42 and sent["retries"] == 2
        assert firmware["location"] == body["location"]
        assert firmware["location"].startswith(
            f"http://127.0.0.1:{app.web_port}/files/firmware/fw-3.0.bin?"
        )
        assert firmware["signing_certificate"] == certificate
        assert firmware["signature"] == signature and firmware["retrieve_date_time"]
        assert await wait_done(cp) == "SignedUpdateFirmware 42 rebooting"
    async with sec_charger(app, CP, boot=False) as cp:  # after the reboot
        async with asyncio.timeout(TIMEOUT):
            assert await cp.boot() == "Accepted"
            await cp.security_event("FirmwareUpdated", "3.0")
            await cp.status(0, "Available")
            await cp.firmware_status("Installed", 42)
    assert await statuses(api, 42) == [
        "Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallRebooting",
        "Installed",
    ]  # fmt: skip
    detail = await api.get(f"/api/chargers/{CP}")
    request = detail["signedFirmwareRequests"]["42"]
    assert request["file"] == "fw-3.0.bin" and request["response"] == "Accepted"
    assert request["signingCertificate"]["subject"] == "CN=Maker firmware signing"
    assert detail["firmwareStatus"]["status"] == "Installed" and detail["firmwareStatus"]["signed"]
    [event] = await eventually_listed(api, f"/api/security/events?chargerId={CP}")
    assert (event["type"], event["critical"]) == ("FirmwareUpdated", True)
    assert any(r.levelno == logging.WARNING and "FirmwareUpdated" in r.getMessage()
               for r in caplog.records)  # fmt: skip
    assert (
        app.services.metrics.value(
            "edge_security_events_total", type="FirmwareUpdated", critical="true"
        )
        == 1
    )
    downloads = await api.get(f"/api/chargers/{CP}/events?kind=FirmwareDownload")
    assert len(downloads) == 1


async def test_tc_081_invalid_signature(app: App, api: Api) -> None:
    """TC_081: an invalid signature is sent as configured (with the edge's warning); the
    charger reports Downloading, Downloaded, InvalidSignature and the security event."""
    certificate, _, key = make_certificate("Maker", ca=False)
    bad = sign_firmware(b"another image", key)
    await host(api, "fw-bad.bin", IMAGE)
    async with sec_charger(app, CP) as cp:
        code, body = await api.request(
            "POST", UPDATE,
            {"file": "fw-bad.bin", "signingCertificate": certificate, "signature": bad},
        )  # fmt: skip
        assert code == 200 and body["response"] == {"status": "Accepted"}
        assert body["signatureCheck"] == "invalid"
        assert body["warnings"][0]["field"] == "firmware.signature"
        assert cp.requests["SignedUpdateFirmware"][0]["firmware"]["signature"] == bad
        request_id = body["requestId"]
        assert await wait_done(cp) == f"SignedUpdateFirmware {request_id}"
    assert await statuses(api, request_id) == ["Downloading", "Downloaded", "InvalidSignature"]
    [event] = await eventually_listed(api, f"/api/security/events?chargerId={CP}")
    assert event["type"] == "InvalidFirmwareSignature"


async def test_raw_and_refused_requests(app: App, api: Api) -> None:
    """A raw SignedUpdateFirmware to a foreign location is tracked too (no hosted file);
    an unknown file is 404 and sends nothing; a refused certificate is kept as answered;
    what the schema forbids (a signature over 800 characters) is refused."""
    certificate, _, _ = make_certificate("Maker", ca=False)
    async with sec_charger(app, CP) as cp:
        cp.answers["SignedUpdateFirmware"] = "InvalidCertificate"
        payload = {"requestId": 5, "firmware": {
            "location": "https://fw.example.com/fw.bin", "retrieveDateTime": "2026-01-01T00:00:00Z",
            "signingCertificate": certificate, "signature": "c2ln"}}  # fmt: skip
        code, body = await api.operation(CP, "SignedUpdateFirmware", payload)
        assert (code, body) == (200, {"response": {"status": "InvalidCertificate"}})
        code, body = await api.request(
            "POST",
            UPDATE,
            {
                "file": "nope.bin",
                "signingCertificate": certificate,
                "signature": "c2ln",
            },
        )
        assert code == 404 and body["error"] == "unknown_file"
        await host(api, "fw.bin", IMAGE)
        code, body = await api.request(
            "POST",
            UPDATE,
            {
                "file": "fw.bin",
                "signingCertificate": certificate,
                "signature": "A" * 801,
            },
        )
        assert code == 400 and body["error"] == "invalid_payload"
    assert len(cp.requests["SignedUpdateFirmware"]) == 1
    [request] = await api.get(f"/api/chargers/{CP}/signed-firmware")
    assert request["requestId"] == 5 and request["file"] is None
    assert request["response"] == "InvalidCertificate" and request["status"] is None


def test_signature_check(tmp_path: Path) -> None:
    """The edge's check of a firmware signature, hashed in chunks: valid for RSA and EC
    keys, invalid for another image's, unchecked for what it cannot read or check."""
    image = tmp_path / "fw.bin"
    image.write_bytes(os.urandom(3 * 64 * 1024 + 17))
    for kind in ("rsa", "ec"):
        certificate, _, key = make_certificate("Maker", key=make_key(kind), ca=False)
        signature = sign_firmware(image.read_bytes(), key)
        assert firmware_signature_check(image, signature, certificate) == "valid"
        other = sign_firmware(b"x", key)
        assert firmware_signature_check(image, other, certificate) == "invalid"
    assert firmware_signature_check(image, "not base64!", certificate) == "unchecked"
    assert firmware_signature_check(image, other, "not a certificate") == "unchecked"


async def test_link_outlives_a_later_download(app: App, api: Api) -> None:
    """A download scheduled days ahead, with retries, gets a link still valid by then."""
    certificate, _, key = make_certificate("Maker", ca=False)
    await host(api, "fw.bin", IMAGE)
    later = datetime.now(UTC) + timedelta(days=3)
    async with sec_charger(app, CP) as cp:
        cp.answers["SignedUpdateFirmware"] = "Rejected"  # nothing downloads now
        code, body = await api.request(
            "POST", UPDATE,
            {"file": "fw.bin", "signingCertificate": certificate,
             "signature": sign_firmware(IMAGE, key), "retrieveDateTime": iso(later),
             "retries": 2, "retryInterval": 3600},
        )  # fmt: skip
        assert code == 200 and body["response"] == {"status": "Rejected"}
    expires = int(parse_qs(urlsplit(body["location"]).query)["expires"][0])
    validity = app.config.files.link_validity
    assert expires >= later.timestamp() + 2 * 3600 + validity - 1
