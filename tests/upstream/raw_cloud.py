"""A cloud written on raw WebSocket frames, for tests of what a broken cloud sends.

Not the `ocpp` package (tests.upstream.cloud is the well-behaved cloud built on it): this
one is `websockets.asyncio.server.serve` with subprotocol ``ocpp1.6`` and JSON by hand, so
it can answer the edge's CALLs with anything at all: text that is not JSON, binary
frames, answers to the wrong message id, payloads that break the schemas, CALLERRORs
with codes OCPP-J does not have, frames larger than any limit, or a closed connection.
What it answers is decided per action by `RawCloud.script`; without a script it is a
well-behaved central system (Boot Accepted, its own transaction ids from 7000).

It records every frame the edge sent it, per charge point and in order, and what it
answered; it can send the edge CALLs (well-formed or not) and collect the answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

Payload = dict[str, Any]
PREFIX = "/ocpp/"
FIRST_TRANSACTION_ID = 7000


class Close:
    """A reply that closes the connection instead of answering: with a close frame
    (`code`), or (`abort`) by cutting the TCP connection."""

    def __init__(self, code: int = 1011, reason: str = "", *, abort: bool = False) -> None:
        self.code, self.reason, self.abort = code, reason, abort


class Fragments:
    """A reply sent as one text message in several frames (a fragmented message)."""

    def __init__(self, *parts: str) -> None:
        self.parts = parts


class RawText:
    """A reply sent as a text frame holding these bytes, UTF-8 or not."""

    def __init__(self, data: bytes) -> None:
        self.data = data


# What the cloud sends in reply to one CALL, in order: a str goes as a text frame as it is,
# bytes as a binary frame, a list or dict as JSON text, Fragments as one fragmented text
# message, RawText as a text frame of any bytes, a Close closes the connection.
Reply = str | bytes | list[Any] | dict[str, Any] | Fragments | RawText | Close
Script = Callable[["Received"], list[Reply]]


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Received:
    """One CALL the edge sent the cloud, and what the cloud replied."""

    charge_point: str
    connection: int
    unique_id: str
    action: str
    payload: Payload
    raw: str
    replies: list[Reply] = field(default_factory=list)
    good: bool = False  # answered by the well-behaved cloud with a CALLRESULT

    def result(self) -> Payload | None:
        """The well-behaved answer's payload, if that is what it got."""
        for reply in self.replies:
            if isinstance(reply, list) and reply[:2] == [3, self.unique_id]:
                payload: Payload = reply[2]
                return payload
        return None


@dataclass
class Session:
    charge_point: str
    serial: int
    ws: ServerConnection
    answers: dict[str, asyncio.Future[list[Any]]] = field(default_factory=dict)
    unmatched: list[Any] = field(default_factory=list)


class RawCloud:
    """`async with RawCloud() as cloud:`; charge points reach it at ``cloud.url/<id>``.

    ``script[action]`` replaces the well-behaved answer to that action (each CALL of it);
    clear the dict to make the cloud well-behaved again."""

    def __init__(self) -> None:
        self.port = 0
        self.heartbeat_interval = 300
        self.script: dict[str, Script] = {}
        self.calls: dict[str, list[Received]] = {}
        self.frames: dict[str, list[str | bytes]] = {}  # everything the edge sent, raw
        self.connections = 0
        self._sessions: dict[str, Session] = {}
        self._server: Server | None = None
        self._ids = itertools.count(FIRST_TRANSACTION_ID)
        self._call_ids = itertools.count(1)
        self.transaction_ids: dict[tuple[str, int, str, int, str], int] = {}

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    async def __aenter__(self) -> RawCloud:
        self._server = await serve(
            self._serve,
            "127.0.0.1",
            self.port,
            subprotocols=[Subprotocol("ocpp1.6")],
            compression=None,
            max_size=None,
            ping_interval=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    # --- what arrived ----------------------------------------------------------------

    def received(self, charge_point: str, *actions: str) -> list[Received]:
        calls = self.calls.get(charge_point, [])
        return [c for c in calls if not actions or c.action in actions]

    def good(self, charge_point: str, *actions: str) -> list[Received]:
        """The CALLs the well-behaved cloud answered (what the cloud has taken)."""
        return [c for c in self.received(charge_point, *actions) if c.good]

    async def wait_for(
        self,
        charge_point: str,
        action: str,
        match: Callable[[Received], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = 10.0,
    ) -> list[Received]:
        """Until `count` CALLs of `action` that `match` accepts arrived (and were replied
        to); all of them. AssertionError saying what arrived after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = [
                c
                for c in self.received(charge_point, action)
                if c.replies and (match is None or match(c))
            ]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                got = [(c.action, c.good) for c in self.received(charge_point)]
                raise AssertionError(
                    f"the cloud got {len(found)} of {count} {action} from {charge_point} "
                    f"in {timeout:g} s; it got (action, answered well): {got}"
                )
            await asyncio.sleep(0.01)

    def connected(self, charge_point: str) -> bool:
        return charge_point in self._sessions

    async def wait_connected(self, charge_point: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.connected(charge_point):
            if time.monotonic() > deadline:
                raise AssertionError(f"{charge_point} did not connect to the cloud")
            await asyncio.sleep(0.01)

    # --- the cloud's own frames --------------------------------------------------------

    async def call(
        self, charge_point: str, action: str, payload: Any, *, timeout: float = 10.0
    ) -> list[Any]:
        """Send a CALL (any payload, valid or not); the edge's answer frame."""
        unique_id = f"cloud-{next(self._call_ids)}"
        return await self.send(
            charge_point, json.dumps([2, unique_id, action, payload]), unique_id, timeout=timeout
        )

    async def send(
        self, charge_point: str, text: str, answer_id: str, *, timeout: float = 10.0
    ) -> list[Any]:
        """Send `text` as it is; the edge's answer frame with message id `answer_id`."""
        session = self._sessions.get(charge_point)
        if session is None:
            raise ConnectionError(f"{charge_point} is not connected to the cloud")
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        session.answers[answer_id] = future
        try:
            await session.ws.send(text)
            return await asyncio.wait_for(future, timeout)
        finally:
            session.answers.pop(answer_id, None)

    async def disconnect(self, charge_point: str) -> None:
        session = self._sessions.get(charge_point)
        if session is not None:
            await session.ws.close()

    # --- serving ---------------------------------------------------------------------

    async def _serve(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        path = ws.request.path.split("?", 1)[0]
        if not path.startswith(PREFIX) or ws.subprotocol != "ocpp1.6":
            await ws.close(1008, "no such charge point path")
            return
        self.connections += 1
        session = Session(unquote(path.removeprefix(PREFIX)), self.connections, ws)
        previous = self._sessions.get(session.charge_point)
        self._sessions[session.charge_point] = session
        if previous is not None:
            await previous.ws.close(1008, "replaced")
        try:
            async for message in ws:
                self.frames.setdefault(session.charge_point, []).append(message)
                if isinstance(message, str):
                    await self._frame(session, message)
        except ConnectionClosed:
            pass
        finally:
            for future in session.answers.values():
                if not future.done():
                    future.set_exception(ConnectionError("the charge point disconnected"))
                    future.exception()
            if self._sessions.get(session.charge_point) is session:
                del self._sessions[session.charge_point]

    async def _frame(self, session: Session, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            return
        if not isinstance(frame, list) or len(frame) < 2:
            return
        if frame[0] in (3, 4):
            future = session.answers.pop(str(frame[1]), None)
            if future is not None and not future.done():
                future.set_result(frame)
            else:
                session.unmatched.append(frame)
            return
        if frame[0] != 2 or len(frame) != 4:
            return
        call = Received(
            charge_point=session.charge_point,
            connection=session.serial,
            unique_id=str(frame[1]),
            action=str(frame[2]),
            payload=frame[3] if isinstance(frame[3], dict) else {},
            raw=text,
        )
        self.calls.setdefault(session.charge_point, []).append(call)
        script = self.script.get(call.action)
        if script is None:
            replies: list[Reply] = [[3, call.unique_id, self._answer(session, call)]]
            call.good = True
        else:
            replies = script(call)
        call.replies = replies
        for reply in replies:
            if isinstance(reply, Close):
                if reply.abort:
                    session.ws.transport.abort()
                else:
                    await session.ws.close(reply.code, reply.reason)
                return
            with contextlib.suppress(ConnectionClosed):
                if isinstance(reply, Fragments):
                    await session.ws.send(iter(reply.parts))
                elif isinstance(reply, RawText):
                    await session.ws.send(reply.data, text=True)
                elif isinstance(reply, list | dict):
                    await session.ws.send(json.dumps(reply))
                else:
                    await session.ws.send(reply)

    def _answer(self, session: Session, call: Received) -> Payload:
        """A well-behaved central system's answer."""
        if call.action == "BootNotification":
            return {
                "status": "Accepted",
                "currentTime": now_text(),
                "interval": self.heartbeat_interval,
            }
        if call.action == "Heartbeat":
            return {"currentTime": now_text()}
        if call.action == "Authorize":
            return {"idTagInfo": {"status": "Accepted"}}
        if call.action == "StartTransaction":
            p = call.payload
            key = (call.charge_point, p["connectorId"], p["idTag"], p["meterStart"], p["timestamp"])
            transaction_id = self.transaction_ids.get(key)  # de-duplicated by content
            if transaction_id is None:
                transaction_id = self.transaction_ids[key] = next(self._ids)
            return {"transactionId": transaction_id, "idTagInfo": {"status": "Accepted"}}
        if call.action == "DataTransfer":
            return {"status": "Accepted"}
        return {}
