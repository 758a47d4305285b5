"""WebSocket handshake and connection rules of the OCPP-J endpoint (OCPP-J 1.6 §3, §5).

Covers subprotocol selection, identity from the path, HTTP method, the
unknown-charger policies, registration across reconnects, the duplicate
connection rule, Basic auth, compression, the message size limit and text-only frames.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Data

from edge.app import App
from edge.config import ChargerSettings, Config
from edge.sim.charger import RawCharger
from tests.chargepoint import basic_auth, ocpp_connect
from tests.conftest import TIME_SCALE, Api, make_config, ocpp_url, running
from tests.helpers import eventually, eventually_listed

TIMEOUT = 10 * TIME_SCALE
PASSWORD = "0123456789abcdef"


async def ws_connect(
    url: str,
    subprotocols: list[str] | None = None,
    headers: dict[str, str] | None = None,
    compression: str | None = None,
) -> ClientConnection:
    """A handshake offering exactly `subprotocols` (none when None)."""
    return await ocpp_connect(
        url, subprotocols=subprotocols, headers=headers, compression=compression
    )


async def refused_status(url: str, **kwargs: Any) -> int:
    """The HTTP status of a handshake the server must refuse."""
    with pytest.raises(InvalidStatus) as info:
        ws = await ws_connect(url, **kwargs)
        await ws.close()
    return info.value.response.status_code


async def raw_http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one raw HTTP/1.1 request; return status, headers (lower-case names) and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(65536), 5)
        while b"\r\n\r\n" not in data:
            more = await asyncio.wait_for(reader.read(65536), 5)
            if not more:
                break
            data += more
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def upgrade_request(path: str, *, method: str = "GET", extra: str = "") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"{extra}"
        "\r\n"
    ).encode()


async def charger_json(api: Api, charger_id: str) -> dict[str, Any]:
    chargers = {c["id"]: c for c in await api.get("/api/chargers")}
    return chargers[charger_id]


# --- subprotocol ----------------------------------------------------------------------------


async def test_only_unknown_subprotocol_is_refused(app: App) -> None:
    """A handshake offering only `ocpp0.1` is refused with HTTP 400 and never upgraded (TC_088)."""
    async with asyncio.timeout(TIMEOUT):
        assert await refused_status(ocpp_url(app, "SP1"), subprotocols=["ocpp0.1"]) == 400
        status, headers, _ = await raw_http(
            app.ocpp_port,
            upgrade_request("/ocpp/SP1", extra="Sec-WebSocket-Protocol: ocpp0.1\r\n"),
        )
        assert status == 400
        assert "sec-websocket-accept" not in headers
        assert "sec-websocket-protocol" not in headers


async def test_no_subprotocol_is_refused(app: App) -> None:
    """A handshake offering no subprotocol at all is refused with HTTP 400."""
    async with asyncio.timeout(TIMEOUT):
        assert await refused_status(ocpp_url(app, "SP2")) == 400
        status, headers, _ = await raw_http(app.ocpp_port, upgrade_request("/ocpp/SP2"))
        assert status == 400
        assert "sec-websocket-accept" not in headers


@pytest.mark.parametrize(
    "offered",
    [["ocpp0.1", "ocpp1.6"], ["ocpp1.6", "ocpp1.5"], ["ocpp2.0.1", "ocpp1.6", "ocpp1.5"]],
    ids=",".join,
)
async def test_ocpp16_is_selected_among_others(app: App, offered: list[str]) -> None:
    """When `ocpp1.6` is among the offered subprotocols the response echoes exactly `ocpp1.6`."""
    async with asyncio.timeout(TIMEOUT):
        ws = await ws_connect(ocpp_url(app, "SP3"), subprotocols=offered)
        try:
            assert ws.subprotocol == "ocpp1.6"
            assert ws.response.headers.get_all("Sec-WebSocket-Protocol") == ["ocpp1.6"]
        finally:
            await ws.close()
        status, headers, _ = await raw_http(
            app.ocpp_port,
            upgrade_request("/ocpp/SP3", extra=f"Sec-WebSocket-Protocol: {', '.join(offered)}\r\n"),
        )
        assert status == 101
        assert headers["sec-websocket-protocol"] == "ocpp1.6"


async def test_compression_is_not_negotiated(app: App) -> None:
    """A client offering permessage-deflate gets no Sec-WebSocket-Extensions back (OCPP-J §5.1)."""
    async with asyncio.timeout(TIMEOUT):
        ws = await ws_connect(ocpp_url(app, "ZIP1"), ["ocpp1.6"], compression="deflate")
        try:
            assert "Sec-WebSocket-Extensions" in ws.request.headers
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
        finally:
            await ws.close()


# --- path and method ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "identity"),
    [
        ("/any/prefix/RDAM%20123", "RDAM 123"),
        ("/ocpp/CP%2F1", "CP/1"),
        ("/CPQ1?token=abc&x=1", "CPQ1"),
        ("/a/b/c/d/Deep-1", "Deep-1"),
        ("/ocpp/Caf%C3%A9", "Café"),
    ],
)
async def test_identity_is_the_decoded_last_segment(
    app: App, api: Api, path: str, identity: str
) -> None:
    """The charge point identity is the last path segment, percent-decoded (OCPP-J §3.1.1)."""
    url = f"ws://127.0.0.1:{app.ocpp_port}{path}"
    async with asyncio.timeout(TIMEOUT), RawCharger.connect(url) as cp:
        assert (await cp.boot())["status"] == "Accepted"
        charger = await charger_json(api, identity)
        assert charger["connected"] is True
        assert charger["vendor"] == "VendorX"
        status, _ = await api.request(
            "GET", "/api/chargers/" + path.rsplit("/", 1)[-1].split("?")[0]
        )
        assert status == 200


async def test_path_without_identity_is_refused(app: App) -> None:
    """A request path without an identity segment is refused with HTTP 404."""
    async with asyncio.timeout(TIMEOUT):
        url = f"ws://127.0.0.1:{app.ocpp_port}/"
        assert await refused_status(url, subprotocols=["ocpp1.6"]) == 404


@pytest.mark.parametrize("segment", ["%FF", "%E2%82", "CP%C3", "%C0%AF", "%00", "CP%0A1"])
async def test_undecodable_identity_is_refused(app: App, api: Api, segment: str) -> None:
    """An identity that does not decode to printable UTF-8 is refused with a 4xx, never a 500."""
    async with asyncio.timeout(TIMEOUT):
        status, headers, _ = await raw_http(
            app.ocpp_port,
            upgrade_request(f"/ocpp/{segment}", extra="Sec-WebSocket-Protocol: ocpp1.6\r\n"),
        )
        assert 400 <= status < 500, status
        assert "sec-websocket-accept" not in headers
        # The endpoint still works for everyone else.
        async with RawCharger.connect(ocpp_url(app, "AFTER1")) as cp:
            assert (await cp.boot())["status"] == "Accepted"
        assert [c["id"] for c in await api.get("/api/chargers")] == ["AFTER1"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD", "OPTIONS"])
async def test_non_get_is_refused_with_405(app: App, method: str) -> None:
    """Only a GET upgrade is served; any other method gets HTTP 405."""
    async with asyncio.timeout(TIMEOUT):
        status, _, _ = await raw_http(
            app.ocpp_port,
            upgrade_request("/ocpp/M1", method=method, extra="Sec-WebSocket-Protocol: ocpp1.6\r\n"),
        )
        assert status == 405


async def test_plain_get_without_upgrade(app: App) -> None:
    """A GET without the Upgrade headers is not upgraded."""
    async with asyncio.timeout(TIMEOUT):
        status, headers, _ = await raw_http(
            app.ocpp_port, b"GET /ocpp/PLAIN HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        )
        assert status == 426
        assert "sec-websocket-accept" not in headers


# --- unknown charger policies -------------------------------------------------------------


async def test_reject_policy_refuses_unknown_with_404(tmp_path: Path) -> None:
    """With unknown_chargers="reject" an unknown identity gets HTTP 404; known ones connect."""
    base = make_config(tmp_path / "data", unknown_chargers="reject")
    config = dataclasses.replace(base, chargers={"KNOWN1": ChargerSettings()})
    async with asyncio.timeout(TIMEOUT), running(config) as (app, api):
        assert await refused_status(ocpp_url(app, "STRANGER"), subprotocols=["ocpp1.6"]) == 404
        listed = [c["id"] for c in await api.get("/api/chargers")]
        assert "STRANGER" not in listed

        async with RawCharger.connect(ocpp_url(app, "KNOWN1")) as cp:
            assert (await cp.boot())["status"] == "Accepted"

        # An operator registering a charger lets it in.
        status, _ = await api.request("PUT", "/api/chargers/NEW1", {"registration": "Accepted"})
        assert status == 201
        async with RawCharger.connect(ocpp_url(app, "NEW1")) as cp:
            assert (await cp.boot())["status"] == "Accepted"
            await cp.call("Heartbeat", {})


async def test_pending_policy_then_operator_accepts(tmp_path: Path) -> None:
    """Policy "pending": boot Pending, listed Pending; after PUT Accepted a new boot is Accepted."""
    config = make_config(tmp_path / "data", unknown_chargers="pending")
    async with (
        asyncio.timeout(TIMEOUT),
        running(config) as (app, api),
        RawCharger.connect(ocpp_url(app, "PEND2")) as cp,
    ):
        boot = await cp.boot()
        assert boot["status"] == "Pending"
        assert isinstance(boot["interval"], int) and boot["interval"] > 0
        assert boot["currentTime"].endswith("Z")
        charger = await charger_json(api, "PEND2")
        assert charger["registration"] == "Pending"
        assert charger["connected"] is True

        status, body = await api.request("PUT", "/api/chargers/PEND2", {"registration": "Accepted"})
        assert status == 200
        assert body["registration"] == "Accepted"
        boot = await cp.boot()
        assert boot["status"] == "Accepted"
        assert boot["interval"] == config.ocpp.heartbeat_interval
        await cp.status(1, "Available")
        assert (await charger_json(api, "PEND2"))["registration"] == "Accepted"


async def test_rejected_registration_boots_rejected(tmp_path: Path) -> None:
    """A charger the operator rejected gets BootNotification Rejected and no service."""
    config = make_config(tmp_path / "data", unknown_chargers="pending")
    async with asyncio.timeout(TIMEOUT), running(config) as (app, api):
        status, _ = await api.request("PUT", "/api/chargers/BAD1", {"registration": "Rejected"})
        assert status == 201
        async with RawCharger.connect(ocpp_url(app, "BAD1")) as cp:
            boot = await cp.boot()
            assert boot["status"] == "Rejected"
            assert boot["interval"] > 0
            frame = await cp.call_raw("Heartbeat", {})
            assert frame[0] == 4 and frame[2] == "SecurityError"


async def test_registration_remembered_across_reconnects(app: App, api: Api) -> None:
    """A charger accepted once is served after a reconnect without a new boot (J §5.4)."""
    async with asyncio.timeout(TIMEOUT):
        async with RawCharger.connect(ocpp_url(app, "REM1")) as cp:
            assert (await cp.boot())["status"] == "Accepted"
        await eventually(lambda: _connected_is(api, "REM1", False))
        async with RawCharger.connect(ocpp_url(app, "REM1")) as cp:
            frame = await cp.call_raw(
                "StatusNotification",
                {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
            )
            assert frame[0] == 3, frame
            await cp.call("Heartbeat", {})
            assert (await charger_json(api, "REM1"))["connected"] is True


async def test_registration_remembered_across_restarts(tmp_path: Path) -> None:
    """A charger accepted before a restart is served afterwards without a new boot."""
    config = make_config(tmp_path / "data")
    async with asyncio.timeout(TIMEOUT):
        async with running(config) as (app, _), RawCharger.connect(ocpp_url(app, "REM2")) as cp:
            assert (await cp.boot())["status"] == "Accepted"
        async with running(config) as (app, api), RawCharger.connect(ocpp_url(app, "REM2")) as cp:
            await cp.status(1, "Available")
            charger = await charger_json(api, "REM2")
            assert charger["registration"] == "Accepted"
            assert charger["vendor"] == "VendorX"


async def _connected_is(api: Api, charger_id: str, value: bool) -> bool:
    return bool((await charger_json(api, charger_id))["connected"] is value)


# --- duplicate connections ---------------------------------------------------------------


async def test_second_connection_replaces_the_first(app: App, api: Api) -> None:
    """A second connection with the same identity closes the first and takes over its state."""
    url = ocpp_url(app, "DUP1")
    async with asyncio.timeout(TIMEOUT), RawCharger.connect(url) as old:
        assert (await old.boot())["status"] == "Accepted"
        await old.status(1, "Available")
        async with RawCharger.connect(url) as new:
            # The old socket is closed by the server.
            await asyncio.wait_for(old.ws.wait_closed(), 5 * TIME_SCALE)
            assert old.ws.close_code is not None
            # Let the old session's close handling run completely.
            await asyncio.sleep(0.3 * TIME_SCALE)

            await new.call("Heartbeat", {})
            charger = await charger_json(api, "DUP1")
            assert charger["connected"] is True
            connectors = {c["connectorId"]: c for c in charger["connectors"]}
            assert connectors[1]["status"] == "Available"

            new.answers["GetConfiguration"] = {"configurationKey": [], "unknownKey": ["X"]}
            status, body = await api.operation("DUP1", "GetConfiguration", {"key": ["X"]})
            assert status == 200, body
            assert body["response"] == {"configurationKey": [], "unknownKey": ["X"]}
            assert [a for a, _ in new.received_calls] == ["GetConfiguration"]
            assert old.received_calls == []

            await new.status(1, "Preparing")
            assert (await charger_json(api, "DUP1"))["connected"] is True

        await eventually(lambda: _connected_is(api, "DUP1", False))


async def test_replaced_connection_closing_later_does_not_disconnect(app: App, api: Api) -> None:
    """Many quick reconnects leave exactly the last connection active and the charger connected."""
    url = ocpp_url(app, "DUP2")
    async with asyncio.timeout(TIMEOUT):
        async with RawCharger.connect(url) as first:
            assert (await first.boot())["status"] == "Accepted"
        async with contextlib.AsyncExitStack() as stack:
            chargers = [await stack.enter_async_context(RawCharger.connect(url)) for _ in range(5)]
            last = chargers[-1]
            for older in chargers[:-1]:
                await asyncio.wait_for(older.ws.wait_closed(), 5 * TIME_SCALE)
            await asyncio.sleep(0.3 * TIME_SCALE)
            assert (await charger_json(api, "DUP2"))["connected"] is True
            await last.call("Heartbeat", {})
            last.answers["ClearCache"] = {"status": "Accepted"}
            status, body = await api.operation("DUP2", "ClearCache", {})
            assert status == 200, body
            assert all(c.received_calls == [] for c in chargers[:-1])
        await eventually(lambda: _connected_is(api, "DUP2", False))


async def test_half_open_old_connection_dying_later(app: App, api: Api) -> None:
    """A silent old socket that dies after being replaced does not disconnect the new session."""
    url = ocpp_url(app, "DUP4")
    async with asyncio.timeout(TIMEOUT):
        async with RawCharger.connect(url) as cp:
            assert (await cp.boot())["status"] == "Accepted"
        # The "old" connection: upgraded by hand, then it never reads or answers again,
        # like a charger whose network went away without a FIN.
        reader, writer = await asyncio.open_connection("127.0.0.1", app.ocpp_port)
        writer.write(upgrade_request("/ocpp/DUP4", extra="Sec-WebSocket-Protocol: ocpp1.6\r\n"))
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        await eventually(lambda: _connected_is(api, "DUP4", True))
        try:
            async with RawCharger.connect(url) as new:
                # Served at once, without waiting for the old close handshake.
                await asyncio.wait_for(new.call("Heartbeat", {}), 1.0 * TIME_SCALE)
                # The old socket now dies for good.
                writer.transport.abort()
                await asyncio.sleep(0.3 * TIME_SCALE)
                assert (await charger_json(api, "DUP4"))["connected"] is True
                new.answers["ClearCache"] = {"status": "Accepted"}
                status, body = await api.operation("DUP4", "ClearCache", {})
                assert status == 200, body
                await new.status(1, "Available")
        finally:
            writer.transport.abort()
        await eventually(lambda: _connected_is(api, "DUP4", False))


async def test_operation_pending_on_a_replaced_connection(app: App, api: Api) -> None:
    """An operation pending on a replaced connection fails with 409; the next reaches the new."""
    url = ocpp_url(app, "DUP3")
    async with asyncio.timeout(TIMEOUT), RawCharger.connect(url) as old:
        assert (await old.boot())["status"] == "Accepted"
        old.answers["ClearCache"] = "silent"
        pending = asyncio.create_task(api.operation("DUP3", "ClearCache", {}))
        await old.wait_for_call("ClearCache")
        async with RawCharger.connect(url) as new:
            status, body = await pending
            assert status == 409, body
            assert body["error"] == "not_connected"
            new.answers["ClearCache"] = {"status": "Rejected"}
            status, body = await api.operation("DUP3", "ClearCache", {})
            assert status == 200, body
            assert body["response"] == {"status": "Rejected"}


async def test_charger_calls_cross_a_pending_csms_call(app: App, api: Api) -> None:
    """While the CSMS waits for the charger's answer, the charger's own CALLs are still served."""
    async with asyncio.timeout(TIMEOUT), RawCharger.connect(ocpp_url(app, "CROSS1")) as cp:
        assert (await cp.boot())["status"] == "Accepted"
        cp.answers["GetConfiguration"] = "silent"
        pending = asyncio.create_task(api.operation("CROSS1", "GetConfiguration", {}))
        await cp.wait_for_call("GetConfiguration")
        await asyncio.wait_for(cp.call("Heartbeat", {}), 1.0 * TIME_SCALE)
        await asyncio.wait_for(cp.status(1, "Available"), 1.0 * TIME_SCALE)
        status, body = await pending
        assert status == 504, body
        assert body["error"] == "timeout"
        # The unanswered CALL does not block the next one.
        cp.answers["GetConfiguration"] = {"configurationKey": []}
        status, body = await api.operation("CROSS1", "GetConfiguration", {})
        assert status == 200, body


# --- Basic auth -----------------------------------------------------------------------------


@pytest.fixture
def auth_config(tmp_path: Path) -> Config:
    base = make_config(tmp_path / "data", unknown_chargers="reject")
    return dataclasses.replace(
        base, chargers={"CP9": ChargerSettings(password=PASSWORD, security_profile=1)}
    )


@pytest.mark.parametrize(
    "headers",
    [
        None,
        basic_auth("CP9", "wrong-password-00"),
        basic_auth("CP9", PASSWORD[:-1]),
        basic_auth("CP8", PASSWORD),
        basic_auth("cp9", PASSWORD),
        {"Authorization": "Bearer " + PASSWORD},
        {"Authorization": "Basic not-base64!!"},
        {"Authorization": "Basic " + base64.b64encode(PASSWORD.encode()).decode()},
    ],
    ids=[
        "missing",
        "wrong",
        "prefix",
        "other-user",
        "user-case",
        "bearer",
        "garbage",
        "no-colon",
    ],
)
async def test_basic_auth_refused(auth_config: Config, headers: dict[str, str] | None) -> None:
    """Missing or wrong Basic credentials get HTTP 401 and no upgrade."""
    async with asyncio.timeout(TIMEOUT), running(auth_config) as (app, _):
        with pytest.raises(InvalidStatus) as info:
            ws = await ws_connect(ocpp_url(app, "CP9"), ["ocpp1.6"], headers)
            await ws.close()
        response = info.value.response
        assert response.status_code == 401
        assert response.headers.get("WWW-Authenticate", "").startswith("Basic")


async def test_basic_auth_accepted(auth_config: Config) -> None:
    """The right Basic credentials (username = identity) upgrade, and the charger is served."""
    async with asyncio.timeout(TIMEOUT), running(auth_config) as (app, api):
        async with RawCharger.connect(
            ocpp_url(app, "CP9"), headers=basic_auth("CP9", PASSWORD)
        ) as cp:
            assert cp.ws.subprotocol == "ocpp1.6"
            assert (await cp.boot())["status"] == "Accepted"
            assert (await charger_json(api, "CP9"))["connected"] is True
        url = f"ws://CP9:{PASSWORD}@127.0.0.1:{app.ocpp_port}/ocpp/CP9"
        async with RawCharger.connect(url) as cp:
            await cp.call("Heartbeat", {})


async def test_bad_credentials_do_not_replace_a_live_connection(auth_config: Config) -> None:
    """A refused handshake for an identity leaves that charger's authenticated connection alone."""
    async with (
        asyncio.timeout(TIMEOUT),
        running(auth_config) as (app, api),
        RawCharger.connect(ocpp_url(app, "CP9"), headers=basic_auth("CP9", PASSWORD)) as cp,
    ):
        assert (await cp.boot())["status"] == "Accepted"
        with pytest.raises(InvalidStatus):
            ws = await ws_connect(ocpp_url(app, "CP9"), ["ocpp1.6"], basic_auth("CP9", "nope"))
            await ws.close()
        await cp.call("Heartbeat", {})
        assert cp.ws.close_code is None
        assert (await charger_json(api, "CP9"))["connected"] is True


# --- message size ---------------------------------------------------------------------------


async def test_oversize_message_closes_with_1009(tmp_path: Path) -> None:
    """A message above max_message_size closes with 1009; other chargers are unaffected."""
    limit = 16 * 1024
    config = make_config(tmp_path / "data", max_message_size=limit)
    async with asyncio.timeout(TIMEOUT), running(config) as (app, api):
        async with (
            RawCharger.connect(ocpp_url(app, "BIG1")) as big,
            RawCharger.connect(ocpp_url(app, "SMALL1")) as small,
        ):
            await big.boot()
            await small.boot()
            # Just under the limit is fine.
            filler = "x" * (limit - 200)
            frame = await big.call_raw("DataTransfer", {"vendorId": "acme", "data": filler})
            assert frame[0] == 3, frame[:3]

            await big.send_frame(
                [2, "huge-1", "DataTransfer", {"vendorId": "acme", "data": "y" * (limit + 1)}]
            )
            await asyncio.wait_for(big.ws.wait_closed(), 5 * TIME_SCALE)
            assert big.ws.close_code == 1009
            with pytest.raises(ConnectionClosed):
                await big.ws.send('[2, "after", "Heartbeat", {}]')

            await small.call("Heartbeat", {})
            await small.status(1, "Available")
            assert (await charger_json(api, "SMALL1"))["connected"] is True
            await eventually(lambda: _connected_is(api, "BIG1", False))

        # The charger that overflowed can come back.
        async with RawCharger.connect(ocpp_url(app, "BIG1")) as big:
            await big.call("Heartbeat", {})


# --- frame types ----------------------------------------------------------------------------

BINARY_BOOT = (
    b'[2,"bin-1","BootNotification",{"chargePointVendor":"BinVendor","chargePointModel":"M"}]'
)


async def until_closed(ws: ClientConnection, timeout: float = 5 * TIME_SCALE) -> list[Data]:
    """Every message the server sends until it closes the connection (or `timeout` passes)."""
    received: list[Data] = []
    with contextlib.suppress(ConnectionClosed, TimeoutError):
        async with asyncio.timeout(timeout):
            async for message in ws:
                received.append(message)
    return received


async def test_binary_frame_is_refused_with_1003(app: App, api: Api) -> None:
    """A BootNotification CALL in a binary frame gets no answer, changes nothing and closes 1003."""
    async with asyncio.timeout(TIMEOUT):
        ws = await ws_connect(ocpp_url(app, "BIN1"), ["ocpp1.6"])
        try:
            await ws.send(BINARY_BOOT)  # bytes: a binary frame
            assert await until_closed(ws) == []
            assert ws.close_code == 1003
            assert ws.close_reason == "OCPP-J accepts text frames only"
        finally:
            await ws.close()
        await eventually(lambda: _connected_is(api, "BIN1", False))
        charger = await charger_json(api, "BIN1")
        assert charger["vendor"] is None, charger
        # The journal writes in order and asynchronously: once the disconnect is there,
        # whatever the binary frame could have caused is there too.
        await eventually_listed(api, "/api/chargers/BIN1/events?kind=Disconnected")
        events = await api.get("/api/chargers/BIN1/events")
        kinds = [event["kind"] for event in reversed(events)]
        assert kinds == ["Connected", "BinaryFrameRefused", "Disconnected"], events
        assert events[1]["data"] == {"size": len(BINARY_BOOT)}
        assert events[0]["data"]["code"] == 1003
        metrics = app.services.metrics
        assert metrics.value("edge_ocpp_frames_rejected_total", code="BinaryFrame") == 1


async def test_charger_reconnects_after_a_binary_frame(app: App, api: Api) -> None:
    """After its binary frame closed the connection, a charger reconnects and boots in text."""
    url = ocpp_url(app, "BIN2")
    async with asyncio.timeout(TIMEOUT):
        ws = await ws_connect(url, ["ocpp1.6"])
        try:
            await ws.send(BINARY_BOOT)
            assert await until_closed(ws) == []
            assert ws.close_code == 1003
        finally:
            await ws.close()
        await eventually(lambda: _connected_is(api, "BIN2", False))
        async with RawCharger.connect(url) as cp:
            assert (await cp.boot())["status"] == "Accepted"
            await cp.call("Heartbeat", {})
            charger = await charger_json(api, "BIN2")
            assert charger["connected"] is True
            assert charger["vendor"] == "VendorX"


async def test_text_frame_that_is_not_utf8_closes_with_1007(app: App, api: Api) -> None:
    """A text frame that is not valid UTF-8 closes the connection with 1007, unanswered."""
    url = ocpp_url(app, "UTF1")
    async with asyncio.timeout(TIMEOUT):
        ws = await ws_connect(url, ["ocpp1.6"])
        try:
            await ws.send(b'[2,"u1","Heartbeat",{"a":"\xff"}]', text=True)
            assert await until_closed(ws) == []
            assert ws.close_code == 1007
        finally:
            await ws.close()
        await eventually(lambda: _connected_is(api, "UTF1", False))
        async with RawCharger.connect(url) as cp:
            assert (await cp.boot())["status"] == "Accepted"


async def test_trailing_slash_names_no_charger(app: App) -> None:
    """A URL ending in a slash names no charger and is refused with HTTP 404."""
    with pytest.raises(InvalidStatus) as info:
        async with RawCharger.connect(f"ws://127.0.0.1:{app.ocpp_port}/ocpp/"):
            pass
    assert info.value.response.status_code == 404


async def test_pending_charger_may_send_what_the_csms_triggered(tmp_path: Path) -> None:
    """A Pending charger's triggered messages are served; unrequested ones get SecurityError."""
    config = make_config(tmp_path / "data", unknown_chargers="pending")
    async with (
        asyncio.timeout(TIMEOUT),
        running(config) as (app, api),
        RawCharger.connect(ocpp_url(app, "PEND3")) as cp,
    ):
        assert (await cp.boot())["status"] == "Pending"
        heartbeat = await cp.call_raw("Heartbeat", {})
        assert heartbeat[0] == 4 and heartbeat[2] == "SecurityError"
        cp.answers["TriggerMessage"] = {"status": "Accepted"}
        status, body = await api.operation(
            "PEND3", "TriggerMessage", {"requestedMessage": "Heartbeat"}
        )
        assert (status, body) == (200, {"response": {"status": "Accepted"}})
        answer = await cp.call_raw("Heartbeat", {})
        assert answer[0] == 3 and answer[2]["currentTime"].endswith("Z")
        other = await cp.call_raw("Authorize", {"idTag": "T1"})
        assert other[0] == 4 and other[2] == "SecurityError"  # not what was triggered
        cp.answers["TriggerMessage"] = {"status": "Accepted"}
        await api.operation("PEND3", "TriggerMessage", {"requestedMessage": "StatusNotification"})
        for connector_id in (0, 1, 2):  # one per connector, as a charger answers
            await cp.status(connector_id, "Available")
