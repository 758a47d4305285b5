"""One charger's WebSocket connection: feed frames to the RPC core, dispatch, drain.

Invariants:
- Incoming CALLs are served one at a time, in arrival order, so a charger's
  transaction messages reach the journal in the order it sent them.
- Our own CALLs never block that: `call()` waits on a future the reader resolves,
  and the RPC core answers incoming CALLs while one of ours is outstanding.
- A session that was replaced by a newer connection of the same charger never
  touches the charger's shared state again (see `SessionRegistry.remove`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from edge.chargers import Charger
from edge.ocppj import (
    CallAborted,
    CallReceived,
    CallRejected,
    CallTimedOut,
    ErrorReceived,
    FrameIgnored,
    FrameRejected,
    InternalError,
    NotSupported,
    OcppError,
    ResultInvalid,
    ResultReceived,
    RpcEndpoint,
    RpcUsageError,
    SecurityError,
)
from edge.services import Services

__all__ = [
    "CallFailed",
    "CallTimeout",
    "ChargerSession",
    "Handler",
    "NotConnected",
    "RemoteCallError",
    "SessionRegistry",
]

log = logging.getLogger(__name__)

Payload = dict[str, Any]
ResultHook = Callable[[Payload], None]

# Serves one CALL from a charger: the payload is already schema-valid; the return value
# is the CALLRESULT payload. Raising an OcppError answers with that CALLERROR. The
# feature modules provide them (`edge.features.HANDLERS`).
Handler = Callable[[Services, Charger, Payload], Awaitable[Payload]]


class CallFailed(Exception):
    """A CALL we sent did not produce a usable CALLRESULT."""


class CallTimeout(CallFailed):
    """The charger did not answer within call_timeout (or the call waited too long in queue)."""


class NotConnected(CallFailed):
    """The charger is not connected, or disconnected before answering."""


class RemoteCallError(CallFailed):
    """The charger answered with a CALLERROR, or with a payload that fails the schema."""

    def __init__(self, error_code: str, description: str, details: Payload) -> None:
        super().__init__(f"{error_code}: {description}")
        self.error_code = error_code
        self.description = description
        self.details = details


class ChargerSession:
    """The live connection of one charger."""

    __slots__ = (
        "_waiters",
        "charger",
        "clock",
        "closed",
        "connected_at",
        "endpoint",
        "handlers",
        "on_call",
        "replaced",
        "services",
        "triggered",
        "ws",
    )

    def __init__(
        self,
        charger: Charger,
        ws: ServerConnection,
        services: Services,
        handlers: Mapping[str, Handler],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.charger = charger
        self.ws = ws
        self.services = services
        self.handlers = handlers
        self.clock = clock
        self.endpoint = RpcEndpoint(role="csms", call_timeout=services.config.ocpp.call_timeout)
        self.connected_at = time.time()
        self._waiters: dict[str, tuple[asyncio.Future[Payload], str, ResultHook | None]] = {}
        # Messages the CSMS asked for with TriggerMessage, and until when (monotonic):
        # served even before the charger is Accepted (OCPP-J errata 3.10 allows what
        # the CSMS requested). A window, not one message: a StatusNotification
        # trigger without connectorId brings one per connector.
        self.triggered: dict[str, float] = {}
        self.replaced = False
        self.closed = False
        # Set by the registry: tells it to watch this session's CALL deadlines.
        self.on_call: Callable[[ChargerSession], None] = lambda session: None

    @property
    def pending_calls(self) -> int:
        return len(self._waiters)

    # --- reading --------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes."""
        metrics = self.services.metrics
        recv = self.ws.recv
        try:
            while True:
                # OCPP-J is text frames only. websockets tells a frame's opcode only by
                # the type recv() returns (no public API exposes it with decode=False),
                # so text frames are decoded to str: that costs a copy per frame but
                # refuses binary frames, and a text frame that is not UTF-8 makes
                # websockets close with 1007 (RFC 6455 §8.1) and recv() raise
                # ConnectionClosed.
                frame = await recv()
                self.charger.last_seen = time.time()
                metrics.inc("edge_ocpp_frames_received_total")
                if isinstance(frame, bytes):
                    await self._refuse_binary(len(frame))
                    return
                self.endpoint.receive_text(frame, self.clock())
                await self._process_events()
                await self.flush()
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            self.endpoint.connection_lost()
            self._resolve_events()

    async def _refuse_binary(self, size: int) -> None:
        """Close the connection over a binary frame, unprocessed (RFC 6455 §7.4.1: 1003)."""
        charger_id = self.charger.id
        log.warning("charger %s: binary frame (%d bytes) refused, closing", charger_id, size)
        self.services.metrics.inc("edge_ocpp_frames_rejected_total", code="BinaryFrame")
        self.services.record(charger_id, "BinaryFrameRefused", {"size": size})
        with contextlib.suppress(ConnectionClosed):
            await self.ws.close(1003, "OCPP-J accepts text frames only")

    async def _process_events(self) -> None:
        for event in self.endpoint.events_received():
            if isinstance(event, CallReceived):
                await self._serve_call(event)
            else:
                self._resolve(event)

    def _resolve_events(self) -> None:
        for event in self.endpoint.events_received():
            self._resolve(event)

    async def _serve_call(self, event: CallReceived) -> None:
        action = event.action
        metrics = self.services.metrics
        metrics.inc("edge_ocpp_calls_received_total", action=action)
        charger = self.charger
        if (
            action != "BootNotification"
            and not charger.accepted
            and self.triggered.get(action, 0.0) < self.clock()
        ):
            # A charger not (yet) accepted may only boot (OCPP-J errata 3.10).
            self._answer_error(
                event.unique_id,
                SecurityError(f"{action} refused: the charger is not accepted; boot first"),
            )
            return
        handler = self.handlers.get(action)
        if handler is None:
            self._answer_error(
                event.unique_id, NotSupported(f"{action} is not supported by this central system")
            )
            return
        try:
            result = await handler(self.services, charger, event.payload)
        except OcppError as err:
            self._answer_error(event.unique_id, err)
            return
        except Exception:
            # Never leak internals to the charger; the log has the traceback.
            log.exception("charger %s: %s handler failed", charger.id, action)
            self._answer_error(event.unique_id, InternalError("could not process the message"))
            return
        try:
            self.endpoint.send_result(event.unique_id, result)
        except RpcUsageError:
            log.exception("charger %s: invalid %s response built", charger.id, action)
            self._answer_error(event.unique_id, InternalError("could not process the message"))

    def _answer_error(self, unique_id: str, error: OcppError) -> None:
        self.services.metrics.inc("edge_ocpp_call_errors_sent_total", code=error.code)
        self.endpoint.send_error(unique_id, error)

    def _resolve(self, event: object) -> None:
        """Hand the outcome of one of our CALLs to whoever is waiting for it."""
        metrics = self.services.metrics
        if isinstance(event, CallRejected | FrameRejected):
            metrics.inc("edge_ocpp_frames_rejected_total", code=event.error.code)
            log.info(
                "charger %s: rejected frame: %s %s",
                self.charger.id,
                event.error.code,
                event.error.description,
            )
            return
        if isinstance(event, FrameIgnored):
            metrics.inc("edge_ocpp_frames_ignored_total")
            log.info("charger %s: ignored frame: %s", self.charger.id, event.reason)
            return
        unique_id: str = getattr(event, "unique_id", "")
        waiter = self._waiters.pop(unique_id, None)
        if waiter is None:
            return
        future, action, on_result = waiter
        if isinstance(event, ResultReceived) and on_result is not None:
            # Before any later frame of this charger is served (a triggered message may
            # follow its TriggerMessage.conf in the same read), and even when the caller
            # stopped waiting: the charger did what it answered.
            try:
                on_result(event.payload)
            except Exception:
                log.exception("charger %s: handling the %s result failed", self.charger.id,
                              action)  # fmt: skip
        if future.done():
            return
        if isinstance(event, ResultReceived):
            future.set_result(event.payload)
        elif isinstance(event, ErrorReceived):
            future.set_exception(
                RemoteCallError(event.error_code, event.description, event.details)
            )
        elif isinstance(event, ResultInvalid):
            future.set_exception(
                RemoteCallError(
                    "FormationViolation", event.error.description, {"response": event.payload}
                )
            )
        elif isinstance(event, CallTimedOut):
            future.set_exception(CallTimeout(f"{action}: no answer from {self.charger.id} in time"))
        elif isinstance(event, CallAborted):
            future.set_exception(NotConnected(f"{self.charger.id} disconnected before answering"))

    # --- writing --------------------------------------------------------------------

    async def flush(self) -> None:
        """Send everything the RPC core has queued, in order."""
        for data in self.endpoint.data_to_send():
            try:
                await self.ws.send(data, text=True)
            except ConnectionClosed:
                return

    async def call(
        self, action: str, payload: Payload, *, on_result: ResultHook | None = None
    ) -> Payload:
        """Send a CALL and wait for its CALLRESULT payload.

        Args:
            on_result: called with the CALLRESULT payload as soon as it is read, before
                any later frame is served and whether or not the caller still waits
                (`edge.operations` records the call's effects with it).

        Raises:
            OcppError: the payload is not valid for the action's schema (nothing was sent).
            CallTimeout, NotConnected, RemoteCallError: see their docstrings.
        """
        if self.closed:
            raise NotConnected(f"{self.charger.id} is not connected")
        unique_id = self.endpoint.send_call(action, payload, self.clock())
        future: asyncio.Future[Payload] = asyncio.get_running_loop().create_future()
        self._waiters[unique_id] = (future, action, on_result)
        self.on_call(self)
        self.services.metrics.inc("edge_ocpp_calls_sent_total", action=action)
        await self.flush()
        return await future

    def expect_triggered(self, action: str) -> None:
        """Serve `action` from this charger, accepted or not, for the next call_timeout seconds."""
        window = self.services.config.ocpp.call_timeout
        self.triggered[action] = self.clock() + window

    async def tick(self, now: float) -> None:
        """Expire calls past their deadline and send whatever is next in line."""
        deadline = self.endpoint.next_deadline()
        if deadline is None or deadline > now:
            return
        self.endpoint.handle_timeouts(now)
        self._resolve_events()
        await self.flush()

    async def close(self, reason: str, code: int = 1000) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.ws.close(code, reason)


class SessionRegistry:
    """The live session of each connected charger; a newer connection replaces an older one."""

    def __init__(self, spawn: Callable[[Coroutine[Any, Any, None]], object]) -> None:
        self._sessions: dict[str, ChargerSession] = {}
        self._calling: set[ChargerSession] = set()
        self._spawn = spawn

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, charger_id: str) -> ChargerSession | None:
        return self._sessions.get(charger_id)

    def sessions(self) -> list[ChargerSession]:
        return list(self._sessions.values())

    def add(self, session: ChargerSession) -> None:
        """Make `session` the charger's active one, closing any older connection.

        The old socket is usually a half-open TCP connection after a network loss;
        its close handshake runs in the background so the new session is served at once.
        """
        old = self._sessions.get(session.charger.id)
        self._sessions[session.charger.id] = session
        session.on_call = self._calling.add
        session.charger.connected = True
        if old is not None:
            old.replaced = True
            log.info("charger %s reconnected; closing its previous connection", old.charger.id)
            self._spawn(old.close("replaced by a new connection"))

    def close(self, session: ChargerSession, code: int, reason: str) -> None:
        """Close a session's connection in the background (the close handshake may wait
        for an unresponsive peer); its task ends as for any closed connection."""
        self._spawn(session.close(reason, code))

    def remove(self, session: ChargerSession) -> bool:
        """Forget a closed session, unless a newer one already took its place."""
        if self._sessions.get(session.charger.id) is not session:
            return False
        del self._sessions[session.charger.id]
        session.charger.connected = False
        return True

    async def tick(self, now: float) -> None:
        """Expire overdue CALLs; only sessions that are waiting for an answer are visited."""
        for session in tuple(self._calling):
            if session.pending_calls:
                await session.tick(now)
            else:
                self._calling.discard(session)
