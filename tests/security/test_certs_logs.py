"""GetLog (TC_079) with an upload location on the edge, LogStatusNotification tracked per
requestId, and the uploaded logs listed and downloadable."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aioftp
import orjson
import pytest

from edge.app import App
from edge.config import Config, FtpConfig
from edge.operations.pipeline import redacted_request
from tests.conftest import API_TOKEN, Api, make_config
from tests.helpers import eventually, eventually_listed
from tests.security.certs_charger import TIMEOUT, sec_charger

CP = "SEC-LOG"
LOGS = f"/api/chargers/{CP}/logs"


async def requests_of(api: Api) -> dict[int, dict[str, Any]]:
    return {r["requestId"]: r for r in await api.get(LOGS)}


async def test_tc_079_get_security_log_to_the_configured_location(app: App, api: Api) -> None:
    """TC_079: GetLog with logType SecurityLog, the configured remoteLocation and requestId,
    exactly as given; Accepted; Uploading then Uploaded are answered and tracked."""
    location = "ftp://logs.example.com/upload/"
    async with sec_charger(app, CP) as cp:
        code, body = await api.request(
            "POST", LOGS,
            {"logType": "SecurityLog", "requestId": 7, "log": {"remoteLocation": location}},
        )  # fmt: skip
        assert code == 200, body
        assert body["response"] == {"status": "Accepted", "filename": "security.log"}
        assert body["requestId"] == 7 and "expiresAt" not in body
        assert cp.requests["GetLog"] == [
            {"log": {"remote_location": location}, "logType": "SecurityLog", "requestId": 7}
        ]
        async with asyncio.timeout(TIMEOUT):
            assert await cp.done.get() == "GetLog 7"
    request = (await requests_of(api))[7]
    assert request["response"] == "Accepted" and request["status"] == "Uploaded"
    assert [h["status"] for h in request["history"]] == ["Uploading", "Uploaded"]
    assert request["remoteLocation"] == location and request["files"] == []
    detail = await api.get(f"/api/chargers/{CP}")
    assert detail["logStatus"]["status"] == "Uploaded"
    assert detail["logRequests"]["7"]["logType"] == "SecurityLog"


async def test_log_uploaded_to_the_edge(app: App, api: Api) -> None:
    """Without log.remoteLocation the edge fills in its own upload location and a
    requestId; the charger uploads over HTTP; the file is listed with its logType and
    requestId, downloadable, and joined to its request."""
    async with sec_charger(app, CP) as cp:
        cp.upload = b"2026-01-01 tamper switch\n" * 100
        code, body = await api.request("POST", LOGS, {"logType": "DiagnosticsLog"})
        assert code == 200, body
        assert body["response"]["status"] == "Accepted" and "expiresAt" in body
        request_id = body["requestId"]
        assert isinstance(request_id, int)
        location = body["location"]
        assert location.startswith(f"http://127.0.0.1:{app.web_port}/files/diagnostics/")
        assert cp.requests["GetLog"][0]["log"] == {"remote_location": location}
        async with asyncio.timeout(TIMEOUT):
            assert await cp.done.get() == f"GetLog {request_id}"
        [listed] = await eventually_listed(api, f"/api/logs?chargerId={CP}")
        assert listed["logType"] == "DiagnosticsLog" and listed["requestId"] == request_id
        assert listed["name"].endswith("-security.log") and listed["size"] == len(cp.upload)
        async with api.session.get(
            f"{api.base}/api/logs/{CP}/{listed['name']}",
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        ) as resp:
            assert resp.status == 200 and await resp.read() == cp.upload
        request = (await requests_of(api))[request_id]
        assert request["status"] == "Uploaded"
        assert [f["name"] for f in request["files"]] == [listed["name"]]
        # The next unnumbered request takes the next id.
        code, body = await api.request("POST", LOGS, {"logType": "SecurityLog"})
        assert body["requestId"] == request_id + 1
        async with asyncio.timeout(TIMEOUT):
            await cp.done.get()
    assert await api.get(f"/api/logs?requestId={request_id + 1}") != []
    code, _ = await api.request("GET", f"/api/logs/{CP}/no-such.log")
    assert code == 404
    code, _ = await api.request("GET", "/api/logs", token=None)
    assert code == 401


async def test_rejected_get_log_revokes_the_grant(app: App, api: Api) -> None:
    """A GetLog the charger rejects leaves no upload grant behind; the rejection is kept."""
    async with sec_charger(app, CP) as cp:
        cp.answers["GetLog"] = "Rejected"
        code, body = await api.request("POST", LOGS, {"logType": "SecurityLog", "requestId": 3})
        assert (code, body["response"]["status"]) == (200, "Rejected")
    assert app.files.grants == {}
    request = (await requests_of(api))[3]
    assert request["response"] == "Rejected" and request["status"] is None


async def test_raw_get_log_and_statuses_without_request_id(app: App, api: Api) -> None:
    """A raw GetLog is tracked like the friendly one; a LogStatusNotification without
    requestId applies to the running request, an Idle one to none; unknown ids are kept."""
    async with sec_charger(app, CP) as cp:
        cp.answers["GetLog"] = "AcceptedCanceled"  # the charger does not upload: we drive it
        payload = {"logType": "SecurityLog", "requestId": 11,
                   "log": {"remoteLocation": "https://logs.example.com/"}}  # fmt: skip
        code, body = await api.operation(CP, "GetLog", payload)
        assert (code, body) == (200, {"response": {"status": "AcceptedCanceled",
                                                   "filename": "security.log"}})  # fmt: skip
        cp.answers["GetLog"] = "Rejected"  # a newer request, refused: not the running one
        assert (await api.operation(CP, "GetLog", {**payload, "requestId": 12}))[0] == 200
        await cp.call_log_status("Uploading")
        await cp.call_log_status("Idle")
        await cp.log_status("BadMessage", 99)
    requests = await requests_of(api)
    assert requests[11]["status"] == "Uploading"
    assert [h["status"] for h in requests[11]["history"]] == ["Uploading"]
    assert requests[99]["status"] == "BadMessage"


async def test_upload_passwords_are_masked_in_the_journal(app: App, api: Api) -> None:
    """GetLog's log.remoteLocation with a password is journalled and kept masked."""
    payload = {"logType": "SecurityLog", "requestId": 1,
               "log": {"remoteLocation": "ftp://user:s3cret@logs.example.com/"}}  # fmt: skip
    assert redacted_request("GetLog", payload)["log"]["remoteLocation"] == (
        "ftp://user:***@logs.example.com/"
    )
    async with sec_charger(app, CP):
        assert (await api.operation(CP, "GetLog", payload))[0] == 200
    events = await eventually(lambda: api.get(f"/api/chargers/{CP}/events?kind=Operation"))
    assert b"s3cret" not in orjson.dumps(events)
    assert b"s3cret" not in orjson.dumps(await api.get(LOGS))


class TestFtp:
    """With the FTP listener on."""

    @pytest.fixture
    def config(self, tmp_path: Path) -> Config:
        return dataclasses.replace(
            make_config(tmp_path / "data"), ftp=FtpConfig(host="127.0.0.1", port=0)
        )

    async def test_log_uploaded_over_ftp(self, app: App, api: Api) -> None:
        """`"protocol": "ftp"`: the location is a one-off FTP login on the edge; the file
        uploaded there is listed as the request's log, its password never journalled."""
        data = b"ftp security log\n" * 50
        async with sec_charger(app, CP) as cp:
            code, body = await api.request(
                "POST", LOGS, {"logType": "SecurityLog", "protocol": "ftp", "requestId": 4}
            )
            assert code == 200 and body["response"]["status"] == "Accepted"
            location = urlsplit(body["location"])
            assert location.scheme == "ftp" and location.password
            async with asyncio.timeout(TIMEOUT):
                await cp.done.get()
        async with (
            aioftp.Client.context(
                location.hostname, location.port, location.username, location.password
            ) as client,
            client.upload_stream("security.log") as stream,
        ):
            await stream.write(data)
        [listed] = await eventually_listed(api, "/api/logs?requestId=4")
        assert listed["via"] == "ftp" and listed["logType"] == "SecurityLog"
        assert listed["size"] == len(data)
        journal = await api.get(f"/api/chargers/{CP}/events?kind=Operation")
        assert location.password.encode() not in orjson.dumps(journal)
        assert location.password.encode() not in orjson.dumps(await api.get(LOGS))


async def test_upload_grant_outlives_the_retries(app: App, api: Api) -> None:
    """The edge's upload location stays valid through the charger's retries."""
    async with sec_charger(app, CP) as cp:
        cp.answers["GetLog"] = "AcceptedCanceled"  # nothing uploads now
        before = datetime.now(UTC)
        code, body = await api.request(
            "POST", LOGS, {"logType": "SecurityLog", "retries": 3, "retryInterval": 600}
        )
        assert code == 200, body
    validity = app.config.files.link_validity
    expires = datetime.fromisoformat(body["expiresAt"].replace("Z", "+00:00"))
    assert expires >= before + timedelta(seconds=validity + 1800 - 1)
    [grant] = app.files.grants.values()
    assert grant.log_type == "SecurityLog" and grant.request_id == body["requestId"]
