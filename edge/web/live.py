"""`GET /api/live`: the page's one WebSocket — a snapshot, then changes, then heartbeats.

Protocol (text frames, JSON; `seq` grows by one per message the hub makes):

    {"type": "snapshot", "seq": n, "site": <GET /api/site>, "chargers": <GET /api/chargers>}
    {"type": "charger", "seq": n, "charger": <one entry of GET /api/chargers>}
    {"type": "site", "seq": n, "site": <GET /api/site>}    one per site-history point (≤ 1 Hz)
    {"type": "security", "seq": n}                           a security event was recorded
    {"type": "heartbeat"}                                    every 15 s

A reconnecting page gets a fresh snapshot; nothing is replayed. Whole objects per entity
keep the page trivial.

Costs on a Pi: each change is serialised once (orjson) and the same bytes go to every
client; with nobody connected the hub is not subscribed to anything and computes
nothing. Each client has a bounded queue: one that cannot keep up (a phone on bad
Wi-Fi) is closed (1013, try again later) instead of growing the service's memory.
`shutdown` (aiohttp `on_shutdown`) closes every socket, so stopping the service never
waits for an open page.

Compression: permessage-deflate when the browser offers it (every browser does), with
context takeover (aiohttp's default unless the client asks otherwise): each socket keeps
its deflate window, and the site message, nearly the same every second, then costs
about 1 KB on the wire instead of ~30 KB (50 chargers: 1.4 KB/s in all, measured by
`bench.web_page`). aiohttp compresses at zlib level 1 (its fixed choice), per socket;
messages over 16 KB are compressed in its executor thread. A client that offers
nothing gets the plain frames.

Authentication is the middleware's (`edge.web.common`): Bearer, or the session cookie
with an `Origin` naming this host (browsers do not apply CORS to WebSockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from edge.events import ChargerEvent, MeterValuesReceived, SecurityEventReceived
from edge.services import Services
from edge.site.controller import SiteController
from edge.web.chargers import charger_json, chargers_body
from edge.web.site import site_body

__all__ = ["LIVE", "LiveHub", "add_routes"]

log = logging.getLogger("edge.web.live")

QUEUE_LIMIT = 256  # messages waiting for one client before it is closed as too slow
HEARTBEAT = 15.0  # s
HEARTBEAT_FRAME = orjson.dumps({"type": "heartbeat"})
CLOSE_SLOW = 1013  # "try again later": the page reconnects and gets a fresh snapshot


class _Client:
    """One page: its queue of serialised messages, and why it must close (if it must)."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.queue: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.close_code: int | None = None
        self.done = False

    def push(self, data: bytes) -> None:
        if self.done:
            return
        if len(self.queue) >= QUEUE_LIMIT:
            self.finish(CLOSE_SLOW)
            return
        self.queue.append(data)
        self.wake.set()

    def finish(self, code: int | None) -> None:
        if not self.done:
            self.done = True
            self.close_code = code
            self.queue.clear()
            self.wake.set()


class LiveHub:
    """Every open `/api/live` socket, and the subscriptions that feed them (only while
    there is one)."""

    def __init__(self, app: web.Application, svc: Services, site: SiteController | None) -> None:
        self.app = app
        self.svc = svc
        self.site = site
        self.clients: set[_Client] = set()
        self.seq = 0
        self._unsubscribe: Callable[[], None] | None = None
        self._dirty: set[str] = set()
        self._flush_scheduled = False
        self._security = False  # a security event since the last flush

    # --- subscriptions ----------------------------------------------------------------

    def _attach(self, client: _Client) -> None:
        if not self.clients:
            self._unsubscribe = self.svc.events.subscribe(self._on_event)
            if self.site is not None:
                self.site.history.listeners.append(self._on_site)
        self.clients.add(client)

    def _detach(self, client: _Client) -> None:
        self.clients.discard(client)
        if not self.clients:
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            if self.site is not None:
                with contextlib.suppress(ValueError):
                    self.site.history.listeners.remove(self._on_site)
            self._dirty.clear()
            self._security = False

    def _on_event(self, event: ChargerEvent) -> None:
        if isinstance(event, MeterValuesReceived):
            return  # nothing of /api/chargers changes; the site message carries draws
        if isinstance(event, SecurityEventReceived):
            # A hint, not the event: the page fetches /api/security/events when it shows
            # them. A burst of refusals makes one message per loop turn.
            self._security = True
        self._dirty.add(event.charger_id)
        if not self._flush_scheduled:
            # Events of one message (a boot and its statuses) make one update per charger.
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_chargers)

    def _flush_chargers(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, set()
        for charger_id in sorted(dirty):
            charger = self.svc.chargers.get(charger_id)
            if charger is not None:
                self._broadcast({"type": "charger", "charger": charger_json(self.svc, charger)})
            else:  # removed from the registry (`DELETE /api/chargers/{id}`)
                self._broadcast({"type": "chargerRemoved", "chargerId": charger_id})
        if self._security:
            self._security = False
            self._broadcast({"type": "security"})

    def _on_site(self) -> None:
        self._broadcast({"type": "site", "site": site_body(self.app)})

    def _broadcast(self, message: dict[str, object]) -> None:
        self.seq += 1
        data = orjson.dumps({**message, "seq": self.seq})  # once, for every client
        for client in tuple(self.clients):
            client.push(data)

    # --- one socket ---------------------------------------------------------------------

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """Upgrade, send the snapshot, then changes and heartbeats until either side closes."""
        ws = web.WebSocketResponse(compress=True, max_msg_size=4096)
        await ws.prepare(request)
        client = _Client(ws)
        # Attached before the snapshot is built, with no await between: no change is lost,
        # and none is queued ahead of it.
        self._attach(client)
        try:
            snapshot = {
                "type": "snapshot",
                "seq": self.seq,
                "site": site_body(self.app),
                "chargers": chargers_body(self.svc),
            }
            client.queue.appendleft(orjson.dumps(snapshot))
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._read(client))
                await self._write(client)
        except* (ConnectionError, RuntimeError) as errors:
            log.debug("live page gone: %s", errors.exceptions[0])
        finally:
            self._detach(client)
            if not ws.closed:
                await ws.close(code=client.close_code or WSCloseCode.OK)
        return ws

    async def _read(self, client: _Client) -> None:
        """The page sends nothing; reading is how a close (or a dead peer) is noticed."""
        async for message in client.ws:
            if message.type == WSMsgType.ERROR:
                break
        client.finish(None)

    async def _write(self, client: _Client) -> None:
        ws = client.ws
        loop = asyncio.get_running_loop()
        heartbeat_at = loop.time() + HEARTBEAT
        while not client.done:
            if client.queue:
                await _send(ws, client.queue.popleft())
                continue
            client.wake.clear()
            wait = heartbeat_at - loop.time()
            if wait <= 0:
                await _send(ws, HEARTBEAT_FRAME)
                heartbeat_at = loop.time() + HEARTBEAT
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.wake.wait(), wait)
        if client.close_code is not None:
            if client.close_code == CLOSE_SLOW:
                log.info("live page too slow (%d messages waiting): closed", QUEUE_LIMIT)
            await ws.close(code=client.close_code)

    async def shutdown(self, app: web.Application) -> None:
        """aiohttp `on_shutdown`: close every socket (1001, going away) so the server's
        shutdown does not wait for the pages."""
        for client in tuple(self.clients):
            client.finish(WSCloseCode.GOING_AWAY)
            with contextlib.suppress(Exception):
                await client.ws.close(code=WSCloseCode.GOING_AWAY)


async def _send(ws: web.WebSocketResponse, data: bytes) -> None:
    # The serialised bytes as a text frame, without a decode and re-encode per client.
    await ws.send_frame(data, WSMsgType.TEXT)


LIVE = web.AppKey("live", LiveHub)


async def live(request: web.Request) -> web.StreamResponse:
    """GET /api/live (WebSocket upgrade)."""
    return await request.app[LIVE].serve(request)


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_get("/api/live", live)
