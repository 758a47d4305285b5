"""One charger's link to the cloud: the edge acting as that charger (DESIGN §7).

The link connects to ``url/<upstream id>`` (subprotocol ``ocpp1.6``, HTTP Basic with the
charger's upstream password, TLS with the system CA store or ``[upstream] ca``), sends
BootNotification first when one is due (after the edge starts, after the charger booted,
on every reconnect with ``boot_on_reconnect``) and nothing else until the cloud accepts
it, then drains the charger's outbox in order, one CALL at a time, and sends Heartbeat
at the cloud's interval while idle. Commands from the cloud are relayed to the charger
(`edge.upstream.commands`). A lost connection is retried with exponential back-off and
jitter. Nothing the cloud does (down, slow, silent, refusing) delays the charger's own
answers: those never wait for the link.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import broadcast
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from edge.chargers import BOOT_FIELDS
from edge.clock import clock_synchronised
from edge.config import UpstreamConfig
from edge.ocppj.errors import ERROR_CODES, InternalError, OcppError, RpcUsageError
from edge.ocppj.events import (
    CallAborted,
    CallReceived,
    CallRejected,
    CallTimedOut,
    ErrorReceived,
    Event,
    FrameIgnored,
    FrameRejected,
    ResultInvalid,
    ResultReceived,
)
from edge.ocppj.rpc import RpcEndpoint
from edge.ocppj.validation import validate_request, validate_response
from edge.services import Services
from edge.store import OutboxEntry
from edge.upstream.rules import (
    TRANSACTION_ACTIONS,
    Front,
    backoff,
    needs_cloud_id,
    next_to_send,
    to_cloud,
)

__all__ = ["LinkState", "UpstreamLink"]

log = logging.getLogger(__name__)

CALL_TIMEOUT = 30.0  # s the cloud has to answer one CALL before the link is reset
OPEN_TIMEOUT = 15.0  # s for the WebSocket handshake
DEFAULT_INTERVAL = 60.0  # s between Heartbeats (and Boot retries) until the cloud says
BATCH = 50  # outbox rows read at once (kept in memory until sent: one query per BATCH rows)
SETTLE_WAIT = 5.0  # s a cloud command naming an unknown id waits for the answer in hand
CLOUD_IDS_KEPT = 8  # transactions whose cloud id a link keeps in memory
BOOT_WAIT = 10.0  # s to wait for a charger that just connected to send its own Boot
CLOUD_ERRORS = "edge_upstream_cloud_errors_total"  # what the cloud sent that breaks OCPP-J


@dataclass(slots=True)
class LinkState:
    """What the API and the metrics show of one link."""

    connected: bool = False
    boot_accepted: bool = False
    registration: str | None = None
    last_error: str | None = None
    connected_since: float | None = None
    sent: int = 0
    parked: int = 0


def _short(text: object, limit: int = 200) -> str:
    """Cloud-controlled text for a log line or a parked reason: one line, bounded."""
    text = str(text)
    cut = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return cut + "…" if len(text) > limit else cut


class _Disconnected(Exception):
    """The connection ended or stopped answering; reconnect."""


class UpstreamLink:
    """The link of one charger; `run` until the service stops."""

    def __init__(
        self,
        svc: Services,
        charger_id: str,
        settings: UpstreamConfig,
        *,
        relay: Callable[[str, str, dict[str, Any]], Awaitable[dict[str, Any]]],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.svc = svc
        self.charger_id = charger_id
        self.settings = settings
        charger_settings = svc.config.chargers.get(charger_id)
        self.upstream_id = (charger_settings and charger_settings.upstream_id) or charger_id
        self.password = (
            charger_settings and charger_settings.upstream_password
        ) or settings.password
        self.url = f"{settings.url}/{self.upstream_id}"
        self.relay = relay
        self.spawn = spawn
        self.monotonic = monotonic
        self.state = LinkState()
        self.boot_due = True  # after the edge starts
        self.interval = DEFAULT_INTERVAL
        # Waking: `wake` sets `_woken` (cleared before the link looks at its state) and
        # ends the one wait in progress; `_alarm` arms the link's one timer.
        self._woken = False
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # when it rings, on `monotonic`'s clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._answers: dict[str, asyncio.Future[Event]] = {}
        self._endpoint: RpcEndpoint | None = None
        self._ws: ClientConnection | None = None
        self._retry_at: dict[int, float] = {}
        # The front of the outbox, read BATCH rows at a time (reading them again for every
        # row sent was most of a long replay's CPU) or handed over as they commit (a link
        # that keeps up reads nothing), and sent from memory.
        self._front = Front(BATCH)
        # The ack of the last row the cloud took, when it is lazy (it rides in the
        # journal's next commit): durable before the next row goes or the outbox is read.
        self._ack: asyncio.Future[None] | None = None
        # The cloud's ids of this charger's recent transactions (cloud_transaction once each).
        self._cloud_ids: dict[int, int] = {}
        self._booted_here = asyncio.Event()
        # Clear while a row is with the cloud, until its answer is on disk: a command the
        # cloud sends right after a StartTransaction.conf may name the id it just gave.
        self._settled = asyncio.Event()
        self._settled.set()
        self._up_since: str | None = None  # when the link came up (outbox time)
        self._lost = "closed"  # why the connection ended, once it has
        self._warned: set[str] = set()  # schema complaints logged on this connection
        svc.metrics.describe_counter(
            CLOUD_ERRORS, "Frames from the cloud that break OCPP-J, by kind (ignored or refused)"
        )

    # --- what the manager calls -------------------------------------------------------

    def wake(self) -> None:
        """Something changed (a new outbox row, the charger (dis)connected)."""
        self._woken = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def written(self, entry: OutboxEntry) -> None:
        """A new row for this charger is committed in the outbox (rows come in order)."""
        self._front.handed(entry)
        self.wake()

    def forget_front(self) -> None:
        """Rows may have left the outbox behind the link's back (retention): read again."""
        self._front.forget()

    def charger_booted(self) -> None:
        """The charger sent BootNotification: the cloud gets one before anything else."""
        self.boot_due = True
        self.state.boot_accepted = False
        self._booted_here.set()
        self.wake()

    def wanted(self) -> bool:
        """Up while the charger is connected to the edge or has messages for the cloud.
        (A row acked lazily counts until its ack commits: see `_settle`.)"""
        charger = self.svc.chargers.get(self.charger_id)
        if charger is not None and charger.connected:
            return True
        return bool(self._front.rows or self.svc.journal.outbox_pending(self.charger_id, 1))

    async def _still_wanted(self) -> bool:
        charger = self.svc.chargers.get(self.charger_id)
        if charger is not None and charger.connected:
            return True
        await self._settle()
        return self.wanted()

    # --- the connection loop --------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        # Stopping wakes whatever the link waits for (`_wait` watches one future only).
        stopping = asyncio.ensure_future(stop.wait())
        stopping.add_done_callback(lambda _: self.wake())
        try:
            await self._run(stop)
        finally:
            stopping.cancel()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    async def _run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            self._woken = False
            if not await self._still_wanted():
                await self._wait(stop, None)
                continue
            sent_before = self.state.sent
            try:
                await self._connect_and_serve(stop)
                attempt = 0
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ConnectionClosed) as err:
                self._down(f"{type(err).__name__}: {err}")
            except _Disconnected as err:
                self._down(str(err))
                # Back to a quick retry only when this connection got something through: a
                # cloud that drops every connection at the same message is retried after
                # 1, 2, 4 ... 60 s, not twice a second forever.
                attempt = 0 if self.state.sent > sent_before else attempt
            except Exception as err:  # a bug must not take the service down with the link
                log.exception("cloud link of %s failed", self.charger_id)
                self._down(f"internal error: {err}")
            if stop.is_set():
                break
            delay = backoff(attempt)
            attempt += 1
            # New messages do not cut the back-off short: the cloud is what we wait for.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    def _down(self, why: str) -> None:
        if self.state.connected_since is not None:  # it was up (`connected` is reset already)
            log.warning("cloud link of %s down: %s", self.charger_id, why)
        else:
            log.info("cloud link of %s: cannot connect to %s: %s", self.charger_id, self.url, why)
        self.state.connected = False
        self.state.connected_since = None
        self.state.last_error = why

    async def _wait(self, stop: asyncio.Event, seconds: float | None) -> None:
        """Until woken since the caller cleared `_woken`, stopped or `seconds` passed.
        (Stopping wakes the link, see `run`. A link that keeps up waits once per message:
        one future, and no task or timer of its own.)"""
        if stop.is_set() or self._woken:
            return
        if seconds is not None:
            self._alarm(self.monotonic() + seconds)
        assert self._loop is not None
        waiter = self._waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _alarm(self, at: float) -> None:
        """Ring (wake the link, time out a CALL due) at `at` (`monotonic`'s clock) or
        earlier. One timer per link, only ever moved earlier: it rings early at worst,
        and the link looks again; sending a row sets no timer of its own."""
        timer = self._timer
        if timer is not None:
            if self._timer_at <= at:
                return
            timer.cancel()
        assert self._loop is not None
        self._timer_at = at
        self._timer = self._loop.call_later(max(0.0, at - self.monotonic()), self._ring)

    def _ring(self) -> None:
        self._timer = None
        endpoint = self._endpoint
        if endpoint is not None:
            # A CALL the cloud has not answered in time ends (CallTimedOut), and a CALL
            # queued behind it goes.
            endpoint.handle_timeouts(self.monotonic())
            self._dispatch(endpoint.events_received())
            self._flush()
            deadline = endpoint.next_deadline()
            if deadline is not None:
                self._alarm(deadline)
        self.wake()

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.url.startswith("wss://"):
            return None
        context = ssl.create_default_context(
            cafile=str(self.settings.ca) if self.settings.ca is not None else None
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    async def _connect_and_serve(self, stop: asyncio.Event) -> None:
        headers = {}
        if self.password is not None:
            token = base64.b64encode(f"{self.upstream_id}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        async with websockets.connect(
            self.url,
            subprotocols=[websockets.Subprotocol("ocpp1.6")],
            additional_headers=headers,
            ssl=self._ssl(),
            open_timeout=OPEN_TIMEOUT,
            ping_interval=None,  # OCPP has Heartbeat; a cloud may not answer pings
            max_size=2**20,
        ) as ws:
            if ws.subprotocol != "ocpp1.6":
                raise _Disconnected(f"the cloud did not agree to ocpp1.6 ({ws.subprotocol})")
            self._ws = ws
            # Payloads are checked here, not by the endpoint: the outbox holds what chargers
            # sent (leniently valid), and a cloud's answer only needs the fields we use.
            self._endpoint = RpcEndpoint(
                role="charge_point", call_timeout=CALL_TIMEOUT, validate=False
            )
            self._lost = "closed"
            self._warned.clear()
            self.state.connected = True
            self.state.connected_since = self.monotonic()
            self._up_since = self.svc.now_text()
            self.state.last_error = None
            log.info("cloud link of %s up: %s", self.charger_id, self.url)
            reader = asyncio.ensure_future(self._read(ws))
            try:
                await self._serve(stop, reader)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader
                self._endpoint.connection_lost()
                self._dispatch(self._endpoint.events_received())
                self._ws = self._endpoint = None
                self.state.connected = False

    def _received(self, message: str) -> None:
        """A text message from the cloud: its events dispatched, what it asks sent."""
        endpoint = self._endpoint
        if endpoint is not None:
            endpoint.receive_text(message, self.monotonic())
            self._dispatch(endpoint.events_received())
            self._flush()

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                if self._endpoint is None:
                    return
                if isinstance(message, bytes):  # OCPP-J is text frames only
                    self._cloud_error("binary", f"ignored a binary frame of {len(message)} bytes")
                    continue
                self._received(message)
            reason = f" {_short(ws.close_reason)}" if ws.close_reason else ""
            self._lost = f"closed by the cloud ({ws.close_code}{reason})"
        except ConnectionClosed as closed:
            self._lost = str(closed)  # e.g. "sent 1009 (message too big) …"
            raise
        finally:
            # The cloud is gone: end the CALL waiting for it and wake the link now,
            # rather than when that CALL or the idle wait times out.
            if self._endpoint is not None:
                self._endpoint.connection_lost()
                self._dispatch(self._endpoint.events_received())
            self.wake()

    def _flush(self) -> None:
        """Write what the endpoint has to send, now. (websockets' `broadcast`: the frame
        is written without a wait; a connection that is closing is skipped, and its end
        aborts the CALL waiting for an answer.)"""
        ws, endpoint = self._ws, self._endpoint
        if ws is None or endpoint is None:
            return
        for frame in endpoint.data_to_send():
            broadcast((ws,), frame, text=True)  # UTF-8 already: no decode

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, CallReceived):
                if self._refuse_invalid(event):
                    continue
                self.spawn(self._answer_cloud(event))
            elif isinstance(event, CallRejected):
                self._cloud_error(
                    "call_rejected",
                    f"answered a CALL from the cloud with {event.error}",
                )
            elif isinstance(event, FrameRejected):
                self._cloud_error("frame", f"a frame from the cloud is not OCPP-J: {event.error}")
            elif isinstance(event, FrameIgnored):
                self._cloud_error(
                    "unmatched",
                    f"ignored a frame from the cloud: {event.reason}"
                    + (f" (message id {event.unique_id!r})" if event.unique_id else ""),
                )
            elif isinstance(
                event, ResultReceived | ResultInvalid | ErrorReceived | CallTimedOut | CallAborted
            ):
                future = self._answers.pop(event.unique_id, None)
                if future is not None and not future.done():
                    future.set_result(event)

    def _refuse_invalid(self, call: CallReceived) -> bool:
        """Answer a CALL whose payload breaks its schema with the CALLERROR OCPP-J names
        for it (FormationViolation, TypeConstraintViolation, …); True if it was."""
        try:
            validate_request(call.action, call.payload, strict=False)
        except OcppError as err:
            endpoint = self._endpoint
            if endpoint is not None:
                with contextlib.suppress(RpcUsageError):
                    endpoint.send_error(call.unique_id, err)  # sent by the reader's flush
            self._cloud_error("call_rejected", f"answered {call.action} from the cloud with {err}")
            return True
        return False

    def _cloud_error(self, kind: str, what: str) -> None:
        """The cloud broke OCPP-J: logged and counted; the link goes on."""
        log.warning("cloud link of %s: %s", self.charger_id, what)
        self.svc.metrics.inc(CLOUD_ERRORS, kind=kind)

    def _check_answer(self, event: Event) -> None:
        """Log and count an answer that breaks OCPP-J; what we need of it is read leniently."""
        if isinstance(event, ErrorReceived) and event.error_code not in ERROR_CODES:
            self._cloud_error(
                "error_code",
                f"{event.action} answered with CALLERROR {_short(event.error_code, 50)!r}, "
                "not an OCPP-J 1.6 errorCode",
            )
        elif isinstance(event, ResultReceived):
            try:
                validate_response(event.action, event.payload, strict=False)
            except OcppError as err:
                if event.action in self._warned:  # once per connection: no log flood
                    self.svc.metrics.inc(CLOUD_ERRORS, kind="invalid_result")
                    return
                self._warned.add(event.action)
                self._cloud_error(
                    "invalid_result",
                    f"the cloud's {event.action}.conf breaks its schema: {err.description}",
                )

    async def _call(self, action: str, payload: dict[str, Any]) -> Event:
        """One CALL to the cloud; its outcome event. Raises _Disconnected when the
        connection is gone or the cloud did not answer in time."""
        endpoint = self._endpoint
        if endpoint is None or self._loop is None:
            raise _Disconnected("not connected")
        future: asyncio.Future[Event] = self._loop.create_future()
        try:
            unique_id = endpoint.send_call(action, payload, self.monotonic())
        except RpcUsageError as err:  # the connection was lost meanwhile
            raise _Disconnected(str(err)) from None
        self._answers[unique_id] = future
        self._flush()
        deadline = endpoint.next_deadline()
        if deadline is not None:
            self._alarm(deadline)  # rings CallTimedOut into the future if need be
        try:
            event = await future
        finally:
            self._answers.pop(unique_id, None)
        if isinstance(event, CallTimedOut):
            raise _Disconnected(f"no answer to {action} within {CALL_TIMEOUT:g} s")
        if isinstance(event, CallAborted):
            raise _Disconnected(f"connection lost waiting for the answer to {action}: {self._lost}")
        self._check_answer(event)
        return event

    # --- the session ----------------------------------------------------------------------

    async def _serve(self, stop: asyncio.Event, reader: asyncio.Future[None]) -> None:
        reconnected = not self.boot_due
        charger = self.svc.chargers.get(self.charger_id)
        if self.boot_due and not self._booted_here.is_set() and charger and charger.connected:
            # Just connected to the edge: it boots in a moment, so one Boot will do.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._booted_here.wait(), BOOT_WAIT)
        if self.boot_due or self.settings.boot_on_reconnect or not self.state.boot_accepted:
            await self._boot(stop, reader)
        if reconnected:
            await self._current_statuses()
        idle_since = self.monotonic()
        while not stop.is_set():
            self._woken = False  # what happens from here on ends the wait below
            if reader.done():
                raise _Disconnected(f"connection lost: {self._lost}")
            if self.boot_due:
                await self._boot(stop, reader)
            if await self._send_next():
                idle_since = self.monotonic()
                continue
            if not await self._still_wanted():
                return  # nothing left for the cloud and the charger is gone
            due = idle_since + self.interval - self.monotonic()
            if due <= 0:
                await self._heartbeat()
                idle_since = self.monotonic()
                continue
            await self._wait(stop, min(due, self._next_retry_in()))

    async def _boot(self, stop: asyncio.Event, reader: asyncio.Future[None]) -> None:
        """BootNotification with the charger's own identity, until the cloud accepts it."""
        while not stop.is_set():
            event = await self._call("BootNotification", self._boot_payload())
            answer = event.payload if isinstance(event, ResultReceived | ResultInvalid) else {}
            status = str(answer.get("status", ""))
            interval = answer.get("interval")
            if isinstance(interval, int | float) and interval > 0:
                self.interval = float(interval)
            self.state.registration = status or None
            if status == "Accepted":
                self.boot_due = False
                self.state.boot_accepted = True
                log.info("cloud accepted %s (heartbeat every %g s)", self.charger_id, self.interval)
                return
            if isinstance(event, ErrorReceived):
                why = f"answered with CALLERROR {_short(event.error_code, 50)}"
            else:
                why = status or "answered without a status"
            self.state.last_error = f"BootNotification {why}"
            log.warning("cloud link of %s: BootNotification %s; again in %g s",
                        self.charger_id, why, self.interval)  # fmt: skip
            # Pending/Rejected: nothing else may be sent; the cloud's own CALLs are answered.
            deadline = self.monotonic() + self.interval
            while (left := deadline - self.monotonic()) > 0 and not stop.is_set():
                if reader.done():
                    raise _Disconnected(f"connection lost: {self._lost}")
                await asyncio.sleep(min(left, 1.0))

    def _boot_payload(self) -> dict[str, Any]:
        """The charger's own BootNotification fields, as it last sent them."""
        charger = self.svc.chargers.get(self.charger_id)
        doc: dict[str, Any] = dict(charger.doc) if charger is not None else {}
        payload = {
            field: doc[key] for field, key in BOOT_FIELDS.items() if isinstance(doc.get(key), str)
        }
        payload.setdefault("chargePointVendor", "unknown")
        payload.setdefault("chargePointModel", "unknown")
        return payload

    async def _current_statuses(self) -> None:
        """After a plain reconnect: each connector's current status (OCPP 1.6 §4.9),
        unless the outbox carries a newer one anyway."""
        charger = self.svc.chargers.get(self.charger_id)
        if charger is None:
            return
        await self._settle()
        queued = {
            e.connector_id
            for e in self.svc.journal.outbox_pending(self.charger_id, BATCH)
            if e.action == "StatusNotification"
        }
        for connector_id, state in sorted(charger.connectors.items()):
            if connector_id in queued or state.status is None:
                continue
            payload: dict[str, Any] = {
                "connectorId": connector_id,
                "status": state.status,
                "errorCode": state.error_code or "NoError",
            }
            if state.timestamp and clock_synchronised() is not False:
                # It may be the edge's own stamp: none from a clock known to be wrong.
                payload["timestamp"] = state.timestamp
            await self._call("StatusNotification", payload)

    async def _heartbeat(self) -> None:
        await self._call("Heartbeat", {})

    def _next_retry_in(self) -> float:
        if not self._retry_at:
            return self.interval
        return max(0.05, min(self._retry_at.values()) - self.monotonic())

    async def _settle(self) -> None:
        """Until the lazy ack of the last row sent is on disk (a commit now if need be)."""
        ack, self._ack = self._ack, None
        if ack is None:
            return
        if not ack.done():
            self.svc.journal.flush()
        try:
            await ack
        except Exception as err:  # its row is still on disk: read the outbox again
            log.error("cloud link of %s: recording an ack failed: %s", self.charger_id, err)
            self.forget_front()

    async def _send_next(self) -> bool:
        """Send the front of the outbox; True if something was done."""
        front = self._front
        if not front.rows and front.complete:
            return False  # caught up: nothing to read, nothing to send
        # Before a row goes or the outbox is read again, the last ack is on disk.
        await self._settle()
        journal = self.svc.journal
        if front.needs_read:
            front.read(journal.outbox_pending(self.charger_id, front.limit))
        step = next_to_send(front.rows, self._up_since)
        if step.superseded:
            await journal.outbox_ack(step.superseded)
            self._drop(*step.superseded)
            self.svc.metrics.inc("edge_upstream_coalesced_total", len(step.superseded))
        entry = step.entry
        if entry is None:
            return bool(step.superseded)
        retry_at = self._retry_at.get(entry.seq)
        if retry_at is not None and retry_at > self.monotonic():
            return False  # the cloud refused it; its retry is not due yet
        cloud_tx = None
        if entry.edge_tx is not None and needs_cloud_id(entry):
            cloud_tx = self._cloud_ids.get(entry.edge_tx)
            if cloud_tx is None:
                mapped = journal.cloud_transaction(entry.edge_tx)
                if mapped is None:
                    await self._park(entry, "the cloud has no id for its transaction")
                    return True
                cloud_tx = mapped[0]
                self._remember_cloud_id(entry.edge_tx, cloud_tx)
        self._settled.clear()
        try:
            event = await self._call(entry.action, to_cloud(entry, cloud_tx))
            if isinstance(event, ErrorReceived):
                await self._refused(
                    entry, f"CALLERROR {_short(event.error_code, 50)}: {_short(event.description)}"
                )
                return True
            answer = event.payload if isinstance(event, ResultReceived | ResultInvalid) else {}
            await self._acknowledged(entry, answer)
        finally:
            self._settled.set()
        return True

    async def settled(self) -> None:
        """Until the row with the cloud has its answer on disk (at most SETTLE_WAIT)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SETTLE_WAIT):
                await self._settled.wait()

    async def _acknowledged(self, entry: OutboxEntry, answer: dict[str, Any]) -> None:
        mapping = None
        if entry.action == "StartTransaction" and entry.edge_tx is not None:
            cloud_tx = answer.get("transactionId")
            info = answer.get("idTagInfo") or {}
            status = info.get("status") if isinstance(info, dict) else None
            if isinstance(cloud_tx, bool) or not isinstance(cloud_tx, int):  # true is not 1
                await self._refused(
                    entry, f"StartTransaction.conf without a usable transactionId: {_short(answer)}"
                )
                return
            mapping = (entry.edge_tx, cloud_tx, status if isinstance(status, str) else None)
            if status != "Accepted":
                log.warning("cloud answered %s for transaction %s of %s (its id %s)",
                            status, entry.edge_tx, self.charger_id, cloud_tx)  # fmt: skip
                self.svc.record(
                    self.charger_id,
                    "CloudIdTagRejected",
                    {"transactionId": entry.edge_tx, "cloudTransactionId": cloud_tx,
                     "status": status},
                )  # fmt: skip
        if mapping is not None:
            # On disk before a command naming the cloud's id is relayed (`settled`).
            await self.svc.journal.outbox_ack((entry.seq,), mapping)
            self._remember_cloud_id(mapping[0], mapping[1])
            self._drop(entry.seq)
        else:
            self._drop(entry.seq)
            # Durable before the next row goes or the outbox is read (`_settle`): a kill -9
            # repeats at most this one. With nothing else in hand it rides in the journal's
            # next commit instead of making one of its own.
            self._ack = self.svc.journal.outbox_ack((entry.seq,), lazy=not self._front.rows)
        self._retry_at.pop(entry.seq, None)
        self.state.sent += 1
        self.svc.metrics.inc("edge_upstream_forwarded_total", action=entry.action)

    async def _refused(self, entry: OutboxEntry, why: str) -> None:
        attempts = entry.attempts + 1
        if attempts >= self.settings.message_attempts or entry.action not in TRANSACTION_ACTIONS:
            await self._park(entry, why)
            return
        log.info("cloud link of %s: %s refused (%s); try %d of %d in %g s", self.charger_id,
                 entry.action, why, attempts, self.settings.message_attempts,
                 self.settings.retry_interval * attempts)  # fmt: skip
        await self.svc.journal.outbox_attempt(entry.seq)
        self._front.tried(entry.seq)
        # Like TransactionMessageRetryInterval: the interval times the tries so far.
        self._retry_at[entry.seq] = self.monotonic() + self.settings.retry_interval * attempts

    async def _park(self, entry: OutboxEntry, why: str) -> None:
        """Keep it where the operator sees it, and go on with the charger's queue."""
        log.error("cloud link of %s: %s #%d parked: %s", self.charger_id, entry.action,
                  entry.seq, why)  # fmt: skip
        await self.svc.journal.outbox_attempt(entry.seq, why)
        self._drop(entry.seq)
        self._retry_at.pop(entry.seq, None)
        self.state.parked += 1
        self.svc.metrics.inc("edge_upstream_parked_total", action=entry.action)

    def _remember_cloud_id(self, edge_tx: int, cloud_tx: int) -> None:
        if len(self._cloud_ids) >= CLOUD_IDS_KEPT:
            del self._cloud_ids[next(iter(self._cloud_ids))]  # the oldest
        self._cloud_ids[edge_tx] = cloud_tx

    def _drop(self, *seqs: int) -> None:
        """Rows that left the outbox (sent, coalesced or parked) leave the front too."""
        self._front.drop(*seqs)

    async def authorize(self, id_tag: str) -> dict[str, Any] | None:
        """The cloud's idTagInfo for `id_tag` (None: no usable answer). The caller bounds
        the wait; the CALL queues behind one in flight (one at a time, OCPP-J §4.1.1)."""
        if not (self.state.connected and self.state.boot_accepted):
            return None
        event = await self._call("Authorize", {"idTag": id_tag})
        info = event.payload.get("idTagInfo") if isinstance(event, ResultReceived) else None
        if isinstance(info, dict) and isinstance(info.get("status"), str):
            return info
        return None

    async def data_transfer(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The cloud's answer to a charger's DataTransfer (None: no usable answer, a
        CALLERROR included). The caller bounds the wait, as for `authorize`."""
        if not (self.state.connected and self.state.boot_accepted):
            return None
        event = await self._call("DataTransfer", payload)
        if isinstance(event, ResultReceived) and isinstance(event.payload.get("status"), str):
            return dict(event.payload)
        return None

    # --- commands from the cloud ----------------------------------------------------------

    async def _answer_cloud(self, call: CallReceived) -> None:
        endpoint = self._endpoint
        error: OcppError | None = None
        answer: dict[str, Any] = {}
        try:
            answer = await self.relay(self.charger_id, call.action, call.payload)
        except OcppError as err:
            error = err
        except Exception:  # an answer the cloud can read beats a silent link
            log.exception("cloud link of %s: relaying %s failed", self.charger_id, call.action)
            # The description goes on the wire: no exception text (OcppError's rule).
            error = InternalError(f"the site controller could not relay {call.action}")
        if endpoint is None or endpoint is not self._endpoint:
            return  # the connection it came on is gone: nobody to answer
        # The connection may have dropped while the charger answered.
        with contextlib.suppress(RpcUsageError, ConnectionClosed):
            if error is not None:
                endpoint.send_error(call.unique_id, error)
            else:
                endpoint.send_result(call.unique_id, answer)
            self._flush()
