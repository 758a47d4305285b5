"""Firmware Management CSMS test cases (certification reference §2.3) and firmware serving.

The operator sends UpdateFirmware / GetDiagnostics through the API; the scripted charger
answers and reports its progress as the test tool does. The firmware tests then upload
images through the API and let the charger download them over real HTTP through the
signed link the CSMS put in UpdateFirmware.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from edge.app import App
from edge.config import Config, FilesConfig
from edge.sim.charger import RawCharger
from tests.conftest import API_TOKEN, Api, make_config
from tests.helpers import booted, eventually_listed, now_iso

CP = "FW-CP"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
LOCATION = "ftp://fw.example.com/firmware/v2.bin"
EVENTS = f"/api/chargers/{CP}/events"


async def fsn(cp: RawCharger, status: str) -> None:
    assert await cp.call("FirmwareStatusNotification", {"status": status}) == {}


async def dsn(cp: RawCharger, status: str) -> None:
    assert await cp.call("DiagnosticsStatusNotification", {"status": status}) == {}


async def update_firmware(api: Api, cp: RawCharger) -> None:
    payload = {"location": LOCATION, "retrieveDate": now_iso()}
    code, body = await api.operation(CP, "UpdateFirmware", payload)
    assert (code, body) == (200, {"response": {}})
    assert await cp.wait_for_call("UpdateFirmware") == payload


async def install(cp: RawCharger, last: str) -> None:
    await fsn(cp, "Downloading")
    await fsn(cp, "Downloaded")
    await cp.status(0, "Unavailable")
    await cp.status(1, "Unavailable")
    await fsn(cp, "Installing")
    assert (await cp.boot())["status"] == "Accepted"
    await cp.status(0, "Available")
    await cp.status(1, "Available")
    await fsn(cp, last)


async def firmware_status(api: Api) -> str:
    status: str = (await api.get(f"/api/chargers/{CP}"))["firmwareStatus"]["status"]
    return status


async def test_tc_044_1_download_and_install(app: App, api: Api) -> None:
    """TC_044_1: UpdateFirmware carries the configured location; every step is answered."""
    async with booted(app, CP) as cp:
        await update_firmware(api, cp)
        await install(cp, "Installed")
        assert await firmware_status(api) == "Installed"
    assert len(await eventually_listed(api, f"{EVENTS}?kind=FirmwareStatusNotification", 4)) == 4


async def test_tc_044_2_download_failed(app: App, api: Api) -> None:
    """TC_044_2: Downloading then DownloadFailed are answered and recorded."""
    async with booted(app, CP) as cp:
        await update_firmware(api, cp)
        await fsn(cp, "Downloading")
        await fsn(cp, "DownloadFailed")
        assert await firmware_status(api) == "DownloadFailed"


async def test_tc_044_3_installation_failed(app: App, api: Api) -> None:
    """TC_044_3: as TC_044_1 but the installation fails after the reboot."""
    async with booted(app, CP) as cp:
        await update_firmware(api, cp)
        await install(cp, "InstallationFailed")
        assert await firmware_status(api) == "InstallationFailed"


@pytest.mark.parametrize("last", ["Uploaded", "UploadFailed"])
async def test_tc_045_get_diagnostics(app: App, api: Api, last: str) -> None:
    """TC_045_1/2: GetDiagnostics carries the location; Uploading and the outcome are answered."""
    async with booted(app, CP) as cp:
        cp.answers["GetDiagnostics"] = {"fileName": "diag.log"}
        location = "ftp://logs.example.com/upload/"
        code, body = await api.operation(CP, "GetDiagnostics", {"location": location})
        assert (code, body) == (200, {"response": {"fileName": "diag.log"}})
        assert await cp.wait_for_call("GetDiagnostics") == {"location": location}
        await dsn(cp, "Uploading")
        await dsn(cp, last)
        assert (await api.get(f"/api/chargers/{CP}"))["diagnosticsStatus"]["status"] == last


# --- firmware files ------------------------------------------------------------------------


async def put_image(api: Api, name: str, data: bytes) -> tuple[int, dict[str, object]]:
    async with api.session.put(f"{api.base}/api/firmware/{name}", data=data, headers=AUTH) as r:
        return r.status, await r.json()


async def post_image(api: Api, name: str, data: bytes) -> tuple[int, dict[str, object]]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    async with api.session.post(f"{api.base}/api/firmware", data=form, headers=AUTH) as r:
        return r.status, await r.json()


async def fetch(api: Api, url: str, **headers: str) -> tuple[int, bytes]:
    async with api.session.get(url, headers=headers) as resp:
        return resp.status, await resp.read()


@pytest.mark.parametrize("upload", [put_image, post_image], ids=["put", "multipart"])
async def test_charger_downloads_the_uploaded_image(app: App, api: Api, upload: object) -> None:
    """An uploaded image reaches the charger byte for byte via the signed UpdateFirmware link."""
    data = os.urandom(300_000)
    digest = hashlib.sha256(data).hexdigest()
    code, meta = await upload(api, "fw-2.1.bin", data)  # type: ignore[operator]
    assert code == 201 and meta["sha256"] == digest and meta["size"] == len(data)
    [listed] = await api.get("/api/firmware")
    assert listed["name"] == "fw-2.1.bin" and listed["sha256"] == digest
    async with booted(app, CP) as cp:
        code, body = await api.request(
            "POST", f"/api/chargers/{CP}/firmware-update", {"file": "fw-2.1.bin", "retries": 3}
        )
        assert code == 200 and body["response"] == {}
        request = await cp.wait_for_call("UpdateFirmware")
        assert request["location"] == body["location"] and request["retries"] == 3
        assert request["location"].startswith(f"http://127.0.0.1:{app.web_port}/files/firmware/")
        status, got = await fetch(api, request["location"])
        assert status == 200 and hashlib.sha256(got).hexdigest() == digest
        status, part = await fetch(api, request["location"], Range="bytes=100-199")
        assert status == 206 and part == data[100:200]
    assert len(await eventually_listed(api, f"{EVENTS}?kind=FirmwareDownload", 2)) == 2


async def test_bad_or_expired_link_is_forbidden(app: App, api: Api) -> None:
    """A tampered, foreign-charger or expired firmware link answers 403; a missing file 404."""
    assert (await put_image(api, "fw.bin", b"image"))[0] == 201
    url = app.files.firmware_url("fw.bin", CP)
    assert (await fetch(api, url))[0] == 200
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    base = f"{api.base}/files/firmware/fw.bin"
    tampered = query["sig"][:-1] + ("0" if query["sig"][-1] != "0" else "1")
    assert (await fetch(api, url.replace(query["sig"], tampered)))[0] == 403
    assert (await fetch(api, url.replace(f"charger={CP}", "charger=OTHER")))[0] == 403
    past = int(datetime.now(UTC).timestamp()) - 10
    expired = f"{base}?charger={CP}&expires={past}&sig={app.files.sign('fw.bin', CP, past)}"
    assert (await fetch(api, expired))[0] == 403
    assert (await fetch(api, base))[0] == 403
    gone = app.files.firmware_url("missing.bin", CP)
    assert (await fetch(api, gone))[0] == 404
    secret = app.config.storage.data_dir / "file_secret"
    assert secret.stat().st_mode & 0o777 == 0o600


async def test_firmware_routes_need_the_token(app: App, api: Api) -> None:
    """Uploading, listing and deleting images need the Bearer token; delete removes the file."""
    code, _ = await api.request("GET", "/api/firmware", token=None)
    assert code == 401
    async with api.session.put(f"{api.base}/api/firmware/x.bin", data=b"x") as resp:
        assert resp.status == 401
    assert (await put_image(api, "x.bin", b"x"))[0] == 201
    assert (await api.request("DELETE", "/api/firmware/x.bin"))[0] == 204
    assert await api.get("/api/firmware") == []
    assert (await api.request("DELETE", "/api/firmware/x.bin"))[0] == 404
    code, body = await api.request("PUT", "/api/firmware/..hidden")
    assert code == 400 and body["error"] == "invalid_name"
    code, body = await api.request("PUT", "/api/firmware/" + "a" * 129)
    assert code == 400


async def test_update_of_unknown_image_is_404(app: App, api: Api) -> None:
    """firmware-update with a file that was never uploaded sends nothing."""
    async with booted(app, CP) as cp:
        code, body = await api.request(
            "POST", f"/api/chargers/{CP}/firmware-update", {"file": "nope.bin"}
        )
        assert code == 404 and body["error"] == "unknown_file"
        assert not any(name == "UpdateFirmware" for name, _ in cp.received_calls)


class TestLimits:
    """With max_firmware_bytes = 100 kB."""

    @pytest.fixture
    def config(self, tmp_path: Path) -> Config:
        base = make_config(tmp_path / "data")
        return dataclasses.replace(base, files=FilesConfig(max_firmware_bytes=100_000))

    @pytest.mark.parametrize("upload", [put_image, post_image], ids=["put", "multipart"])
    async def test_oversize_image_is_refused(self, app: App, api: Api, upload: object) -> None:
        """An image over max_firmware_bytes answers 413 and leaves no file, partial or temporary."""
        code, body = await upload(api, "big.bin", os.urandom(300_000))  # type: ignore[operator]
        assert code == 413 and body["error"] == "too_large"
        assert list(app.files.firmware_dir.iterdir()) == []
        assert await api.get("/api/firmware") == []
