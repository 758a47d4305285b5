"""`GET /api/live`: snapshot, changes, heartbeats; auth; slow clients; shutdown."""

from __future__ import annotations

import asyncio
import time
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from drivers import MeterServer
from edge.app import App
from edge.config import Config
from edge.web import live
from edge.web.live import LIVE, QUEUE_LIMIT, _Client
from tests.conftest import API_TOKEN, TIME_SCALE, running
from tests.helpers import booted
from tests.integration.test_site_control import meter, site_config

__all__ = ["meter"]  # the fixture, used by name

BEARER = {"Authorization": f"Bearer {API_TOKEN}"}


async def next_of(ws: aiohttp.ClientWebSocketResponse, kind: str, **match: Any) -> Any:
    """The next message of type `kind` whose fields include `match` (others skipped)."""
    async with asyncio.timeout(10 * TIME_SCALE):
        while True:
            message = orjson.loads((await ws.receive()).data)
            if message["type"] == kind and all(message.get(k) == v for k, v in match.items()):
                return message


async def test_snapshot_then_a_charger_change(app: App) -> None:
    """The first message is the snapshot (site and chargers as the API shows them); a
    status change then arrives as the whole charger."""
    url = f"http://127.0.0.1:{app.web_port}/api/live"
    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=BEARER) as ws:
        snapshot = orjson.loads((await ws.receive()).data)
        assert snapshot["type"] == "snapshot" and snapshot["chargers"] == []
        assert snapshot["site"]["enabled"] is False
        async with booted(app, "CP1") as cp:
            message = await next_of(ws, "charger")
            assert message["charger"]["id"] == "CP1" and message["seq"] > snapshot["seq"]
            await cp.status(1, "Preparing")

            async def preparing() -> Any:
                while True:
                    message = await next_of(ws, "charger")
                    connectors = message["charger"]["connectors"]
                    if any(c["status"] == "Preparing" for c in connectors):
                        return message

            await preparing()
    hub = app._runner.app[LIVE] if app._runner else None
    assert hub is not None
    await asyncio.sleep(0.1)
    assert not hub.clients and hub._unsubscribe is None  # nothing computed for nobody


async def test_a_security_event_is_hinted_and_chargers_carry_their_security(app: App) -> None:
    """A charger's entry has its security summary (profile, transport of its connection);
    a security event it reports makes a `security` message (a hint: the page fetches
    the events)."""
    url = f"http://127.0.0.1:{app.web_port}/api/live"
    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=BEARER) as ws:
        await next_of(ws, "snapshot")
        async with booted(app, "CP1") as cp:
            message = await next_of(ws, "charger")
            security = message["charger"]["security"]
            assert security["profile"] == 0 and security["pendingProfile"] is None
            assert security["connectedAt"]["transport"] == "ws"
            assert security["connectedAt"]["certificate"] is None
            event = {"type": "MemoryExhaustion", "timestamp": "2026-01-01T00:00:00Z"}
            assert await cp.call("SecurityEventNotification", event) == {}
            hint = await next_of(ws, "security")
            assert set(hint) == {"type", "seq"}


async def test_site_messages_follow_the_meter(tmp_path: Path, meter: MeterServer) -> None:
    """With a meter, a site message arrives with each history point (about 1 Hz)."""
    async with running(site_config(tmp_path, meter.port)) as (app, _api):
        url = f"http://127.0.0.1:{app.web_port}/api/live"
        async with aiohttp.ClientSession() as s, s.ws_connect(url, headers=BEARER) as ws:
            await next_of(ws, "snapshot")
            first = await next_of(ws, "site")
            second = await next_of(ws, "site")
            assert first["site"]["enabled"] is True
            assert second["seq"] > first["seq"]


async def test_heartbeat(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """A quiet site still sends a heartbeat, so the page knows the link is alive."""
    monkeypatch.setattr(live, "HEARTBEAT", 0.2)
    url = f"http://127.0.0.1:{app.web_port}/api/live"
    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=BEARER) as ws:
        await next_of(ws, "snapshot")
        assert await next_of(ws, "heartbeat") == {"type": "heartbeat"}


async def test_the_cookie_needs_our_origin_and_no_auth_is_401(app: App) -> None:
    """Without credentials the upgrade is a JSON 401; with the cookie, another site's
    Origin is refused (403) and ours is let in."""
    base = f"http://127.0.0.1:{app.web_port}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(base + "/api/live")
        assert refused.value.status == 401
        async with session.post(base + "/api/session", json={"password": API_TOKEN}) as resp:
            assert resp.status == 204
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(base + "/api/live", origin="http://evil.example")
        assert refused.value.status == 403
        async with session.ws_connect(base + "/api/live", origin=base) as ws:
            assert (await next_of(ws, "snapshot"))["seq"] >= 0
        async with session.get(base + "/api/live", headers=BEARER) as resp:  # no upgrade
            assert resp.status == 400
            assert (await resp.json())["error"] == "http_error"


async def test_shutdown_closes_open_pages_at_once(config: Config) -> None:
    """An open page does not hold up the service's shutdown (aiohttp would wait for its
    handler); it is told 1001, going away."""
    app = await App(config).__aenter__()
    url = f"http://127.0.0.1:{app.web_port}/api/live"
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url, headers=BEARER)
        await next_of(ws, "snapshot")
        # As a browser does: it is reading when the close comes, and answers it.
        closed = asyncio.ensure_future(ws.receive())
        began = time.monotonic()
        await app.__aexit__(None, None, None)
        assert time.monotonic() - began < 3
        message = await closed
        assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 1001


def test_a_client_that_cannot_keep_up_is_closed() -> None:
    """Past QUEUE_LIMIT waiting messages the client is finished with 1013, its queue
    dropped; nothing more is queued for it."""
    client = _Client(ws=None)  # type: ignore[arg-type]
    for _ in range(QUEUE_LIMIT):
        client.push(b"{}")
    assert not client.done
    client.push(b"{}")
    assert client.done and client.close_code == 1013 and not client.queue
    client.push(b"{}")
    assert not client.queue


async def _raw_socket(
    port: int, offer: str | None
) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
    """Upgrade /api/live by hand, offering `offer` as Sec-WebSocket-Extensions: the
    answer's extensions header, and the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    offered = f"Sec-WebSocket-Extensions: {offer}\r\n" if offer else ""
    writer.write(
        (
            "GET /api/live HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\n{offered}"
            f"Authorization: Bearer {API_TOKEN}\r\n\r\n"
        ).encode()
    )
    async with asyncio.timeout(10 * TIME_SCALE):
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
    assert head.startswith("HTTP/1.1 101"), head
    extensions = ""
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "sec-websocket-extensions":
            extensions = value.strip()
    return extensions, reader, writer


async def _frame(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    """The next frame off the wire: its opcode, RSV1 bit (compressed) and payload."""
    async with asyncio.timeout(10 * TIME_SCALE):
        first, second = await reader.readexactly(2)
        assert first & 0x80 and not second & 0x80  # FIN, and servers never mask
        size = second & 0x7F
        if size == 126:
            size = int.from_bytes(await reader.readexactly(2))
        elif size == 127:
            size = int.from_bytes(await reader.readexactly(8))
        return first & 0x0F, bool(first & 0x40), await reader.readexactly(size)


async def _raw_frames(
    port: int, offer: str | None, count: int
) -> tuple[str, list[tuple[bool, bytes]]]:
    """The extensions header and the first `count` frames (RSV1 bit, payload as sent)."""
    extensions, reader, writer = await _raw_socket(port, offer)
    try:
        frames = []
        for _ in range(count):
            _, compressed, payload = await _frame(reader)
            frames.append((compressed, payload))
        return extensions, frames
    finally:
        writer.close()


async def test_the_feed_is_deflated_with_context_takeover_when_offered(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A browser's offer (permessage-deflate) is accepted: frames go compressed, and the
    deflate window is kept between messages, so a repeated message costs a few bytes."""
    monkeypatch.setattr(live, "HEARTBEAT", 0.1)
    extensions, frames = await _raw_frames(
        app.web_port, "permessage-deflate; client_max_window_bits", 4
    )
    assert extensions.startswith("permessage-deflate")
    assert "server_no_context_takeover" not in extensions
    inflate = zlib.decompressobj(-15)
    messages = [orjson.loads(inflate.decompress(p + b"\x00\x00\xff\xff")) for _, p in frames]
    assert all(compressed for compressed, _ in frames)
    assert messages[0]["type"] == "snapshot"
    assert messages[1:] == [{"type": "heartbeat"}] * 3
    heartbeat = orjson.dumps({"type": "heartbeat"})
    assert len(frames[1][1]) < len(heartbeat)
    assert len(frames[3][1]) <= 8  # the same bytes again: back-references only


async def test_the_feed_is_plain_without_an_offer(app: App) -> None:
    """A client that offers no extension gets the same messages uncompressed."""
    extensions, frames = await _raw_frames(app.web_port, None, 1)
    assert extensions == ""
    compressed, payload = frames[0]
    assert not compressed and orjson.loads(payload)["type"] == "snapshot"
    url = f"http://127.0.0.1:{app.web_port}/api/live"
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, headers=BEARER, compress=0) as ws,
    ):
        assert ws.compress == 0
        assert (await next_of(ws, "snapshot"))["chargers"] == []


async def test_a_deflated_client_behind_by_the_limit_is_closed_1013(app: App) -> None:
    """On a compressed socket too, a page QUEUE_LIMIT messages behind gets a close
    frame with 1013 (try again later), uncompressed as control frames are."""
    extensions, reader, writer = await _raw_socket(app.web_port, "permessage-deflate")
    try:
        assert extensions.startswith("permessage-deflate")
        opcode, compressed, _ = await _frame(reader)  # the snapshot
        assert opcode == 1 and compressed
        hub = app._runner.app[LIVE] if app._runner else None
        assert hub is not None and len(hub.clients) == 1
        for _ in range(QUEUE_LIMIT + 1):  # all in one loop turn: none is sent meanwhile
            hub._broadcast({"type": "security"})
        while True:
            opcode, compressed, payload = await _frame(reader)
            if opcode == 8:
                break
        assert not compressed and int.from_bytes(payload[:2]) == 1013
    finally:
        writer.close()
