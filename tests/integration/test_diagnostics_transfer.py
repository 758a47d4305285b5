"""Diagnostics uploads: the charger uploads over real HTTP (PUT, multipart) and FTP to the
location the CSMS put in GetDiagnostics; the operator lists and downloads the files."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aioftp
import aiohttp
import pytest

from edge.app import App
from edge.config import Config, FilesConfig, FtpConfig
from edge.sim.charger import RawCharger
from tests import helpers
from tests.conftest import API_TOKEN, Api, make_config, running
from tests.helpers import eventually_listed

CP = "DIAG-CP"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
FILES = f"/api/diagnostics?chargerId={CP}"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    base = make_config(tmp_path / "data")
    return dataclasses.replace(
        base,
        files=FilesConfig(max_diagnostics_bytes=200_000),
        ftp=FtpConfig(host="127.0.0.1", port=0),
    )


def booted(app: App) -> AbstractAsyncContextManager[RawCharger]:
    """The charger of these cases: it reports no connector status and answers GetDiagnostics."""
    return helpers.booted(
        app, CP, available=(), answers={"GetDiagnostics": {"fileName": "diag.tar.gz"}}
    )


async def request_upload(api: Api, cp: RawCharger, **body: Any) -> str:
    """Ask for diagnostics; return the location the charger received."""
    code, answer = await api.request("POST", f"/api/chargers/{CP}/diagnostics", body)
    assert code == 200, answer
    assert answer["response"] == {"fileName": "diag.tar.gz"}
    request = await cp.wait_for_call("GetDiagnostics")
    assert request["location"] == answer["location"]
    cp.received_calls.clear()
    location: str = answer["location"]
    return location


async def http_put(api: Api, url: str, data: bytes) -> int:
    async with api.session.put(url, data=data) as resp:
        return resp.status


async def http_form(api: Api, url: str, data: bytes, filename: str) -> int:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=filename, content_type="application/gzip")
    async with api.session.post(url, data=form) as resp:
        return resp.status


async def download(api: Api, name: str) -> bytes:
    async with api.session.get(f"{api.base}/api/diagnostics/{CP}/{name}", headers=AUTH) as r:
        assert r.status == 200
        return await r.read()


def ftp_login(location: str) -> tuple[str, int, str, str]:
    parts = urlsplit(location)
    assert parts.scheme == "ftp" and parts.hostname and parts.port
    return parts.hostname, parts.port, parts.username or "", parts.password or ""


async def ftp_upload(location: str, name: str, data: bytes) -> None:
    host, port, user, password = ftp_login(location)
    async with (
        aioftp.Client.context(host, port, user, password) as client,
        client.upload_stream(name) as stream,
    ):
        await stream.write(data)


async def test_http_put_and_multipart_uploads(app: App, api: Api) -> None:
    """The charger uploads by PUT and by multipart POST to the GetDiagnostics location; both
    arrive intact, are listed with their origin and downloadable by the operator."""
    first, second = os.urandom(150_000), os.urandom(70_000)
    async with booted(app) as cp:
        location = await request_upload(api, cp, startTime="2026-01-01T00:00:00Z", retries=2)
        assert location.startswith(f"http://127.0.0.1:{app.web_port}/files/diagnostics/")
        assert location.endswith("/")
        assert await http_put(api, location + "diag.tar.gz", first) == 201
        assert await http_form(api, location, second, "diag2.tar.gz") == 201
    files = await eventually_listed(api, FILES, 2)
    by_name = {f["name"].split("-", 1)[1]: f for f in files}
    assert by_name["diag.tar.gz"]["size"] == len(first)
    assert {f["via"] for f in files} == {"http"} and {f["chargerId"] for f in files} == {CP}
    assert await download(api, by_name["diag.tar.gz"]["name"]) == first
    assert await download(api, by_name["diag2.tar.gz"]["name"]) == second
    code, _ = await api.request("GET", "/api/diagnostics", token=None)
    assert code == 401
    events = await api.get(f"/api/chargers/{CP}/events?kind=DiagnosticsReceived")
    assert len(events) == 2


async def test_http_wrong_or_expired_grant_is_forbidden(app: App, api: Api) -> None:
    """An unknown token or an expired grant answers 403; an oversize upload 413, nothing kept."""
    async with booted(app) as cp:
        location = await request_upload(api, cp)
    base = f"{api.base}/files/diagnostics/"
    assert await http_put(api, base + "not-a-token/x.log", b"x") == 403
    assert await http_form(api, base + "not-a-token/", b"x", "x.log") == 403
    assert await http_put(api, location + "big.log", os.urandom(300_000)) == 413
    token = location.rstrip("/").rsplit("/", 1)[1]
    app.files.grants[token].expires = 0
    assert await http_put(api, location + "late.log", b"late") == 403
    assert await api.get("/api/diagnostics") == []


async def test_ftp_upload(app: App, api: Api) -> None:
    """The charger uploads over FTP with the location's credentials; the file arrives intact."""
    data = os.urandom(180_000)
    async with booted(app) as cp:
        location = await request_upload(api, cp, protocol="ftp")
    host, port, user, password = ftp_login(location)
    assert (host, port) == ("127.0.0.1", app.ftp_address[1])  # type: ignore[index]
    assert user and password
    await ftp_upload(location, "diag.tar.gz", data)
    [received] = await eventually_listed(api, FILES, 1)
    assert received["via"] == "ftp" and received["size"] == len(data)
    assert await download(api, received["name"]) == data


async def test_ftp_login_refused_without_a_live_grant(app: App, api: Api) -> None:
    """A wrong password, an unknown user or an expired grant cannot log in."""
    async with booted(app) as cp:
        location = await request_upload(api, cp, protocol="ftp")
    host, port, user, password = ftp_login(location)
    for login, secret in ((user, password + "x"), ("nobody", password)):
        with pytest.raises(aioftp.StatusCodeError):
            async with aioftp.Client.context(host, port, login, secret):
                pass
    for grant in app.files.grants.values():
        grant.expires = 0
    with pytest.raises(aioftp.StatusCodeError):
        async with aioftp.Client.context(host, port, user, password):
            pass


async def test_ftp_user_is_confined(app: App, api: Api) -> None:
    """An FTP user cannot list, read, delete, make directories, overwrite or write elsewhere."""
    async with booted(app) as cp:
        location = await request_upload(api, cp, protocol="ftp")
    await ftp_upload(location, "a.log", b"first")
    host, port, user, password = ftp_login(location)
    async with aioftp.Client.context(host, port, user, password) as client:
        with pytest.raises(aioftp.StatusCodeError):
            await client.list()
        with pytest.raises(aioftp.StatusCodeError):
            async with client.download_stream("a.log"):
                pass
        with pytest.raises(aioftp.StatusCodeError):
            await client.remove_file("a.log")
        with pytest.raises(aioftp.StatusCodeError):
            await client.make_directory("sub")
        for name in ("a.log", "sub/b.log"):
            with pytest.raises(aioftp.StatusCodeError):
                async with client.upload_stream(name) as stream:
                    await stream.write(b"second")
        async with client.upload_stream("../../../escape.log") as stream:
            await stream.write(b"clamped")
    files = await eventually_listed(api, FILES, 2)
    assert sorted(f["name"].split("-", 1)[1] for f in files) == ["a.log", "escape.log"]
    assert not (app.config.storage.data_dir.parent / "escape.log").exists()
    [first] = [f for f in files if f["name"].endswith("a.log")]
    assert await download(api, first["name"]) == b"first"


async def test_ftp_oversize_upload_is_discarded(app: App, api: Api) -> None:
    """An FTP upload over max_diagnostics_bytes fails and leaves nothing behind."""
    async with booted(app) as cp:
        location = await request_upload(api, cp, protocol="ftp")
    with pytest.raises((aioftp.StatusCodeError, ConnectionError, OSError)):
        await ftp_upload(location, "big.log", os.urandom(1_000_000))
    await asyncio.sleep(0.1)
    assert await api.get("/api/diagnostics") == []


async def test_grants_survive_a_restart(config: Config) -> None:
    """A grant issued before a restart still accepts the upload afterwards."""
    async with running(config) as (first, api), booted(first) as cp:
        location = await request_upload(api, cp)
    path = urlsplit(location).path
    async with running(config) as (again, api):
        url = f"http://127.0.0.1:{again.web_port}{path}late.log"
        async with api.session.put(url, data=b"after restart") as resp:
            assert resp.status == 201
        assert [f["size"] for f in again.files.list_diagnostics(CP)] == [13]


async def test_ftp_password_is_not_journalled(app: App, api: Api) -> None:
    """The FTP password in a GetDiagnostics location never reaches the charger's event log."""
    async with booted(app) as cp:
        location = await request_upload(api, cp, protocol="ftp")
        password = urlsplit(location).password
        assert password
        events = await eventually_listed(api, f"/api/chargers/{CP}/events?kind=Operation")
        text = json.dumps(events)
        assert "GetDiagnostics" in text and ":***@" in text
        assert password not in text
