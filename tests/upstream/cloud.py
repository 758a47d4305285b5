"""A fleet operator's cloud for the edge's upstream link: a real OCPP 1.6J central system.

Built on mobilityhouse `ocpp` (its `ChargePoint` with `@on` handlers validates every CALL
against the 1.6J schemas) and `websockets.serve`, independent of edge.ocppj. It listens on
127.0.0.1 (ephemeral port, kept across `stop()`/`start()`), accepts `/ocpp/<chargePointId>`
with subprotocol `ocpp1.6` (and HTTP Basic credentials where configured), and records every
CALL it receives, per charge point and in order, with its raw text.

It behaves like the clouds the edge meets (see the field notes on upstream links): its own
transaction ids (from 5000), SteVe-like de-duplication of StartTransaction by content,
configurable BootNotification / Authorize / StartTransaction verdicts, answer delays, a
black hole, CALLERRORs on demand, and CALLs of its own to the charge points.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

Payload = dict[str, Any]
PREFIX = "/ocpp/"
FIRST_TRANSACTION_ID = 5000
_WHITESPACE = re.compile(r"\s*")


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def raw_payload(frame_text: str) -> str:
    """The payload of a CALL frame exactly as it was written: the text of its 4th element."""
    decoder = json.JSONDecoder()
    position = _WHITESPACE.match(frame_text, 0).end()  # type: ignore[union-attr]
    if frame_text[position : position + 1] != "[":
        raise ValueError(f"not a JSON array: {frame_text[:50]!r}")
    position += 1
    for index in range(4):
        start = _WHITESPACE.match(frame_text, position).end()  # type: ignore[union-attr]
        _, end = decoder.raw_decode(frame_text, start)
        if index == 3:
            return frame_text[start:end]
        position = _WHITESPACE.match(frame_text, end).end()  # type: ignore[union-attr]
        if frame_text[position : position + 1] != ",":
            raise ValueError(f"not a CALL frame: {frame_text[:50]!r}")
        position += 1
    raise AssertionError("unreachable")


def basic_credentials(headers: Headers) -> tuple[str, str] | None:
    """(user, password) of an HTTP Basic Authorization header, or None."""
    value = headers.get("Authorization")
    if value is None or not value.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(value[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


@dataclass
class Received:
    """One CALL the cloud received from a charge point."""

    charge_point: str
    connection: int  # the serial number of the connection it came on (Cloud.connections)
    unique_id: str
    action: str
    payload: Payload
    raw: str  # the whole frame's text as it arrived
    at: float  # time.monotonic() on arrival
    received_at: datetime
    answer: list[Any] | None = None  # the frame the cloud answered with; None: unanswered

    @property
    def raw_payload(self) -> str:
        return raw_payload(self.raw)

    @property
    def accepted(self) -> bool:
        """Answered with a CALLRESULT."""
        return self.answer is not None and self.answer[0] == 3


@dataclass
class Connection:
    """One WebSocket connection a charge point opened to the cloud."""

    serial: int
    charge_point: str
    path: str
    subprotocol: str | None
    credentials: tuple[str, str] | None
    opened_at: float
    closed_at: float | None = None


@dataclass
class CloudTransaction:
    transaction_id: int
    charge_point: str
    connector_id: int
    id_tag: str
    meter_start: int
    timestamp: str
    meter_values: list[Payload] = field(default_factory=list)
    stop: Payload | None = None


@dataclass
class ErrorRule:
    """Answer CALLs of `action` (that `when` accepts) with a CALLERROR."""

    action: str
    code: str
    description: str
    when: Callable[[Payload], bool] | None = None

    def matches(self, action: str, payload: Payload) -> bool:
        return action == self.action and (self.when is None or self.when(payload))


class CloudCP(ChargePoint):
    """The cloud's side of one connection: records, delays, silences or answers each CALL."""

    def __init__(self, cloud: Cloud, connection: Connection, ws: ServerConnection) -> None:
        super().__init__(connection.charge_point, ws, response_timeout=30)
        self.cloud = cloud
        self.connection = connection
        self.ws = ws
        self._answers: dict[str, asyncio.Future[list[Any]]] = {}
        self._open: dict[str, Received] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def route_message(self, raw_msg: str) -> None:
        try:
            frame = json.loads(raw_msg)
        except ValueError:
            frame = None
        if not isinstance(frame, list) or len(frame) < 3 or frame[0] not in (2, 3, 4):
            await super().route_message(raw_msg)  # the library answers what it can
            return
        if frame[0] in (3, 4):
            future = self._answers.pop(str(frame[1]), None)
            if future is not None and not future.done():
                future.set_result(frame)
            return
        received = Received(
            charge_point=self.id,
            connection=self.connection.serial,
            unique_id=str(frame[1]),
            action=str(frame[2]),
            payload=frame[3] if len(frame) > 3 and isinstance(frame[3], dict) else {},
            raw=raw_msg,
            at=time.monotonic(),
            received_at=datetime.now(UTC),
        )
        self.cloud.calls.setdefault(self.id, []).append(received)
        if self.cloud.on_call is not None:
            self.cloud.on_call(received)
        if self.cloud.black_hole or received.action in self.cloud.silent:
            return
        self._open[received.unique_id] = received
        delay = self.cloud.delays.get(received.action, self.cloud.delays.get("*", 0.0))
        if delay > 0:
            task = asyncio.create_task(self._answer_later(received, raw_msg, delay))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            await self._answer(received, raw_msg)

    async def _answer_later(self, received: Received, raw_msg: str, delay: float) -> None:
        await asyncio.sleep(delay)
        with contextlib.suppress(ConnectionClosed):
            await self._answer(received, raw_msg)

    async def _answer(self, received: Received, raw_msg: str) -> None:
        for rule in self.cloud.errors:
            if rule.matches(received.action, received.payload):
                frame = [4, received.unique_id, rule.code, rule.description, {}]
                await self._send(json.dumps(frame))
                return
        await super().route_message(raw_msg)

    async def _send(self, message: str) -> None:
        await super()._send(message)
        frame = json.loads(message)
        if frame[0] in (3, 4):
            received = self._open.pop(str(frame[1]), None)
            if received is not None:
                received.answer = frame

    async def send_call(self, action: str, payload: Payload, timeout: float) -> list[Any]:
        unique_id = str(uuid.uuid4())
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._answers[unique_id] = future
        try:
            await self.ws.send(json.dumps([2, unique_id, action, payload]))
            return await asyncio.wait_for(future, timeout)
        except ConnectionClosed as closed:
            raise ConnectionError(f"{self.id} disconnected") from closed
        finally:
            self._answers.pop(unique_id, None)

    def closed(self) -> None:
        for task in self._tasks:
            task.cancel()
        for future in self._answers.values():
            if not future.done():
                future.set_exception(ConnectionError("the charge point disconnected"))
                future.exception()

    # The central system's answers. `route_message` has recorded the CALL already.

    @on("BootNotification")
    def on_boot_notification(self, **_: Any) -> Any:
        status = self.cloud.boot_status
        accepted = status == "Accepted"
        interval = self.cloud.heartbeat_interval if accepted else self.cloud.boot_interval
        return call_result.BootNotification(
            current_time=now_text(), interval=interval, status=status
        )

    @on("Heartbeat")
    def on_heartbeat(self, **_: Any) -> Any:
        return call_result.Heartbeat(current_time=now_text())

    @on("StatusNotification")
    def on_status_notification(self, **_: Any) -> Any:
        return call_result.StatusNotification()

    @on("Authorize")
    def on_authorize(self, id_tag: str, **_: Any) -> Any:
        status = self.cloud.authorize_status.get(id_tag, "Accepted")
        return call_result.Authorize(id_tag_info={"status": status})

    @on("StartTransaction")
    def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **_: Any
    ) -> Any:
        transaction = self.cloud.start_transaction(
            self.id, connector_id, id_tag, meter_start, timestamp
        )
        status = self.cloud.id_tag_status.get(id_tag, "Accepted")
        return call_result.StartTransaction(
            transaction_id=transaction.transaction_id, id_tag_info={"status": status}
        )

    @on("MeterValues")
    def on_meter_values(self, call_unique_id: str, **kwargs: Any) -> Any:
        transaction = self.cloud.transactions.get(kwargs.get("transaction_id", -1))
        if transaction is not None:
            transaction.meter_values.append(self._open[call_unique_id].payload)
        return call_result.MeterValues()

    @on("StopTransaction")
    def on_stop_transaction(self, transaction_id: int, call_unique_id: str, **kwargs: Any) -> Any:
        transaction = self.cloud.transactions.get(transaction_id)
        if transaction is not None and transaction.stop is None:
            transaction.stop = self._open[call_unique_id].payload
        id_tag = kwargs.get("id_tag")
        if id_tag is None:
            return call_result.StopTransaction()
        status = self.cloud.id_tag_status.get(id_tag, "Accepted")
        return call_result.StopTransaction(id_tag_info={"status": status})

    @on("DataTransfer")
    def on_data_transfer(self, **_: Any) -> Any:
        return call_result.DataTransfer(status=self.cloud.data_transfer_status)

    @on("DiagnosticsStatusNotification")
    def on_diagnostics_status(self, **_: Any) -> Any:
        return call_result.DiagnosticsStatusNotification()

    @on("FirmwareStatusNotification")
    def on_firmware_status(self, **_: Any) -> Any:
        return call_result.FirmwareStatusNotification()

    @on("SecurityEventNotification")
    def on_security_event(self, **_: Any) -> Any:
        return call_result.SecurityEventNotification()

    @on("SignedFirmwareStatusNotification")
    def on_signed_firmware_status(self, **_: Any) -> Any:
        return call_result.SignedFirmwareStatusNotification()

    @on("LogStatusNotification")
    def on_log_status(self, **_: Any) -> Any:
        return call_result.LogStatusNotification()


class Cloud:
    """The central system. `async with Cloud() as cloud:`; its charge points reach it at
    `cloud.url + "/" + chargePointId`. Change the public attributes at any time."""

    def __init__(self) -> None:
        self.port = 0
        # BootNotification: "Accepted" (interval = heartbeat_interval), or "Pending" /
        # "Rejected" (interval = boot_interval, when to try again).
        self.boot_status = "Accepted"
        self.heartbeat_interval = 300
        self.boot_interval = 1
        # Verdicts by idTag; Accepted for any other tag.
        self.authorize_status: dict[str, str] = {}
        self.id_tag_status: dict[str, str] = {}  # in StartTransaction/StopTransaction.conf
        self.data_transfer_status = "Accepted"
        # Seconds to wait before answering, by action; "*" for every action.
        self.delays: dict[str, float] = {}
        # Never answer any CALL (black_hole), or those of the `silent` actions.
        self.black_hole = False
        self.silent: set[str] = set()
        self.errors: list[ErrorRule] = []
        # HTTP Basic password each charge point must present; none asked where absent.
        self.passwords: dict[str, str] = {}
        # Called with each CALL as it arrives, before it is answered (a test's probe).
        self.on_call: Callable[[Received], None] | None = None

        self.calls: dict[str, list[Received]] = {}
        self.connections: list[Connection] = []
        self.refused: list[tuple[str, int]] = []  # (path, HTTP status) of refused handshakes
        self.transactions: dict[int, CloudTransaction] = {}
        self._by_content: dict[tuple[str, int, str, str, int], int] = {}
        self._transaction_ids = itertools.count(FIRST_TRANSACTION_ID)
        self._sessions: dict[str, CloudCP] = {}
        self._server: Server | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    async def __aenter__(self) -> Cloud:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # Outages

    async def start(self) -> None:
        """Listen (again, on the same port after a `stop()`)."""
        assert self._server is None, "already listening"
        self._server = await serve(
            self._serve,
            "127.0.0.1",
            self.port,
            subprotocols=[Subprotocol("ocpp1.6")],
            process_request=self._check,
            compression=None,
            open_timeout=5,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self, *, abrupt: bool = False) -> None:
        """Stop listening and drop every connection: with a close frame, or (`abrupt`) by
        cutting the TCP connections as a lost network would."""
        server, self._server = self._server, None
        if server is None:
            return
        if abrupt:
            for session in list(self._sessions.values()):
                session.ws.transport.abort()
        server.close()
        await server.wait_closed()

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def disconnect(self, charge_point: str) -> None:
        """Close the charge point's connection (it is expected to reconnect)."""
        session = self._sessions.get(charge_point)
        if session is not None:
            await session.ws.close()

    def connected(self, charge_point: str) -> bool:
        return charge_point in self._sessions

    # Behaviour

    def fail(
        self,
        action: str,
        code: str = "InternalError",
        description: str = "refused by the cloud",
        when: Callable[[Payload], bool] | None = None,
    ) -> ErrorRule:
        """Answer `action` (where `when` holds) with CALLERROR `code` from now on; the rule
        can be lifted with `self.errors.remove(rule)`."""
        rule = ErrorRule(action, code, description, when)
        self.errors.append(rule)
        return rule

    def start_transaction(
        self, charge_point: str, connector_id: int, id_tag: str, meter_start: int, timestamp: str
    ) -> CloudTransaction:
        """SteVe's insertIgnoreTransaction: the same connector, idTag, timestamp and
        meterStart are the same transaction."""
        key = (charge_point, connector_id, id_tag, timestamp, meter_start)
        known = self._by_content.get(key)
        if known is not None:
            return self.transactions[known]
        transaction = CloudTransaction(
            transaction_id=next(self._transaction_ids),
            charge_point=charge_point,
            connector_id=connector_id,
            id_tag=id_tag,
            meter_start=meter_start,
            timestamp=timestamp,
        )
        self._by_content[key] = transaction.transaction_id
        self.transactions[transaction.transaction_id] = transaction
        return transaction

    # Calls to the charge points

    async def call(
        self, charge_point: str, action: str, payload: Payload, timeout: float = 10.0
    ) -> list[Any]:
        """Send a CALL to the charge point; its answer frame (CALLRESULT or CALLERROR)."""
        session = self._sessions.get(charge_point)
        if session is None:
            raise ConnectionError(f"{charge_point} is not connected to the cloud")
        return await session.send_call(action, payload, timeout)

    # What was received

    def received(self, charge_point: str, *actions: str) -> list[Received]:
        """The CALLs received from the charge point in order (only `actions` if given)."""
        calls = self.calls.get(charge_point, [])
        return [c for c in calls if not actions or c.action in actions]

    def actions(self, charge_point: str) -> list[str]:
        return [c.action for c in self.received(charge_point)]

    async def wait_for(
        self,
        charge_point: str,
        action: str,
        match: Callable[[Received], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = 10.0,
    ) -> list[Received]:
        """Wait until `count` CALLs of `action` (that `match` accepts) arrived; all of them.
        AssertionError saying what did arrive after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.received(charge_point, action) if match is None or match(c)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the cloud received {len(found)} of {count} {action} from {charge_point}"
                    f" in {timeout:g} s; it received: {self.actions(charge_point)}"
                )
            await asyncio.sleep(0.01)

    async def wait_connected(self, charge_point: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.connected(charge_point):
            if time.monotonic() > deadline:
                raise AssertionError(f"{charge_point} did not connect to the cloud")
            await asyncio.sleep(0.01)

    async def wait_disconnected(self, charge_point: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.connected(charge_point):
            if time.monotonic() > deadline:
                raise AssertionError(f"{charge_point} stayed connected to the cloud")
            await asyncio.sleep(0.01)

    # Connections

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        charge_point = unquote(path.removeprefix(PREFIX))
        if not path.startswith(PREFIX) or not charge_point or "/" in charge_point:
            self.refused.append((request.path, HTTPStatus.NOT_FOUND))
            return connection.respond(HTTPStatus.NOT_FOUND, "no such charge point path\n")
        expected = self.passwords.get(charge_point)
        if expected is not None and basic_credentials(request.headers) != (
            charge_point,
            expected,
        ):
            self.refused.append((request.path, HTTPStatus.UNAUTHORIZED))
            response = connection.respond(HTTPStatus.UNAUTHORIZED, "bad credentials\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="ocpp"'
            return response
        return None

    async def _serve(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else ""
        headers = ws.request.headers if ws.request is not None else Headers()
        connection = Connection(
            serial=len(self.connections) + 1,
            charge_point=unquote(path.split("?", 1)[0].removeprefix(PREFIX)),
            path=path,
            subprotocol=ws.subprotocol,
            credentials=basic_credentials(headers),
            opened_at=time.monotonic(),
        )
        self.connections.append(connection)
        session = CloudCP(self, connection, ws)
        previous = self._sessions.get(connection.charge_point)
        self._sessions[connection.charge_point] = session
        if previous is not None:
            await previous.ws.close(1008, "replaced by a new connection")
        try:
            await session.start()
        except ConnectionClosed:
            pass
        finally:
            connection.closed_at = time.monotonic()
            session.closed()
            if self._sessions.get(connection.charge_point) is session:
                del self._sessions[connection.charge_point]
