"""A sans-I/O OCPP-J 1.6 RPC endpoint: text in, events out, frames to send drained.

Shaped like ``websockets.protocol.Protocol``: the I/O layer feeds each received text
frame to :meth:`RpcEndpoint.receive_text`, then drains :meth:`~RpcEndpoint.events_received`
and :meth:`~RpcEndpoint.data_to_send`, and arms a timer for
:meth:`~RpcEndpoint.next_deadline`. Nothing here awaits or reads a clock.

Invariants (h11 style):

Rule 1: At most one of our CALLs is outstanding. "A Charge Point or Central System
    SHOULD NOT send a CALL message to the other party unless all the CALL messages it
    sent before have been responded to or have timed out" (OCPP-J 1.6 §4.1.1, errata 3.5).
    Further CALLs wait in a FIFO queue of at most ``max_queued_calls``.
Rule 2: Every CALL we send ends in exactly one of ResultReceived, ResultInvalid,
    ErrorReceived, CallTimedOut or CallAborted.
Rule 3: Every well-formed incoming CALL gets exactly one answer. Either the core answers
    it with a CALLERROR and emits CallRejected, or it emits CallReceived and the owner
    must answer exactly once with send_result or send_error. Incoming CALLs are served
    while our own CALL is outstanding: the two directions are independent (J §4.1.1).
Rule 4: Nothing the peer sends raises. Peer mistakes become events (plus a CALLERROR
    when the frame was a CALL); a CALLRESULT or CALLERROR is never answered. Misuse by
    our own code raises RpcUsageError, and never reaches the wire.
Rule 5: Time moves only through the ``now`` arguments (monotonic seconds). Every method
    that takes ``now`` first applies the timeouts due at ``now``, so the outcome does not
    depend on whether the I/O layer's timer fired before a frame arrived.
Rule 6: After connection_lost() nothing is sent and every send_* raises.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from .actions import ALL_ACTIONS, CP_TO_CSMS_ACTIONS, CSMS_TO_CP_ACTIONS
from .errors import (
    ERROR_CODES,
    FrameError,
    NotSupported,
    OcppError,
    OcppNotImplemented,
    ProtocolError,
    QueueFull,
    RpcUsageError,
)
from .events import (
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
    RpcStatistics,
)
from .messages import (
    CALL,
    MAX_UNIQUE_ID_LENGTH,
    Call,
    CallError,
    CallResult,
    dump_call,
    dump_error,
    dump_result,
    parse_frame,
)
from .validation import validate_request, validate_response

__all__ = ["NO_ID", "RpcEndpoint"]

Role = Literal["csms", "charge_point"]

NO_ID = "-1"
"""The id of a CALLERROR answering a frame whose id could not be read (OCPP 2.0.1
practice; 1.6 has no rule for it and a 1.6 peer simply finds no matching CALL)."""

_ROLE_NAMES = {"csms": "Central System", "charge_point": "Charge Point"}

# The id counter needs room: prefix + "-" + up to 11 digits must fit in 36 characters.
_MAX_PREFIX = MAX_UNIQUE_ID_LENGTH - 12


@dataclass(slots=True)
class _OutgoingCall:
    unique_id: str
    action: str
    frame: bytes
    queued_at: float
    deadline: float = 0.0  # set when actually sent


class RpcEndpoint:
    """One side of one OCPP-J connection.

    Args:
        role: ``"csms"`` receives the charge point's CALLs and sends central-system
            CALLs; ``"charge_point"`` the reverse (for an upstream connection where this
            product acts as a charger).
        call_timeout: seconds an outgoing CALL may wait for its answer once sent, and
            also the longest it may wait in the queue before being dropped.
        max_queued_calls: how many CALLs may wait behind the outstanding one.
        id_prefix: prefix of our message ids (at most 24 characters). Default: 8 random
            hex digits, so ids stay unique across reconnects of the same charger
            (J errata 3.1/3.7) without persisting a counter.
        validate: check payloads against the OCPP JSON schemas (incoming leniently,
            outgoing strictly). Turn off only in benchmarks.

    Raises:
        ValueError: an argument is out of range.
    """

    __slots__ = (
        "_call_timeout",
        "_closed",
        "_counter",
        "_events",
        "_incoming_actions",
        "_max_queued",
        "_n_calls_aborted",
        "_n_calls_received",
        "_n_calls_rejected",
        "_n_calls_sent",
        "_n_calls_timed_out",
        "_n_errors_received",
        "_n_errors_sent",
        "_n_frames_ignored",
        "_n_frames_rejected",
        "_n_results_invalid",
        "_n_results_received",
        "_n_results_sent",
        "_open",
        "_outgoing_actions",
        "_outstanding",
        "_prefix",
        "_queue",
        "_role",
        "_to_send",
        "_validate",
    )

    def __init__(
        self,
        *,
        role: Role = "csms",
        call_timeout: float = 30.0,
        max_queued_calls: int = 64,
        id_prefix: str | None = None,
        validate: bool = True,
    ) -> None:
        if role == "csms":
            self._incoming_actions, self._outgoing_actions = CP_TO_CSMS_ACTIONS, CSMS_TO_CP_ACTIONS
        elif role == "charge_point":
            self._incoming_actions, self._outgoing_actions = CSMS_TO_CP_ACTIONS, CP_TO_CSMS_ACTIONS
        else:
            raise ValueError(f"role must be 'csms' or 'charge_point', not {role!r}")
        if not call_timeout > 0:
            raise ValueError("call_timeout must be positive")
        if max_queued_calls < 0:
            raise ValueError("max_queued_calls must not be negative")
        if id_prefix is None:
            id_prefix = secrets.token_hex(4)
        elif not 0 < len(id_prefix) <= _MAX_PREFIX:
            raise ValueError(f"id_prefix must have 1 to {_MAX_PREFIX} characters")
        self._role: Role = role
        self._call_timeout = float(call_timeout)
        self._max_queued = max_queued_calls
        self._prefix = id_prefix + "-"
        self._counter = 0
        self._validate = validate
        self._events: list[Event] = []
        self._to_send: list[bytes] = []
        self._open: dict[str, str] = {}  # incoming CALL id -> action, until answered
        self._outstanding: _OutgoingCall | None = None
        self._queue: deque[_OutgoingCall] = deque()
        self._closed = False
        self._n_calls_received = self._n_calls_rejected = 0
        self._n_results_sent = self._n_errors_sent = 0
        self._n_calls_sent = self._n_results_received = self._n_results_invalid = 0
        self._n_errors_received = self._n_calls_timed_out = self._n_calls_aborted = 0
        self._n_frames_rejected = self._n_frames_ignored = 0

    # ------------------------------------------------------------------ draining

    def events_received(self) -> list[Event]:
        """Return and forget the events produced since the last call."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[bytes]:
        """Return and forget the frames to send, in order; each is one WebSocket *text*
        frame (UTF-8 JSON as bytes: send with ``text=True``)."""
        frames, self._to_send = self._to_send, []
        return frames

    @property
    def role(self) -> Role:
        """``"csms"`` or ``"charge_point"``."""
        return self._role

    @property
    def outstanding_call(self) -> str | None:
        """The id of our CALL awaiting its answer, if any."""
        return None if self._outstanding is None else self._outstanding.unique_id

    @property
    def queued_calls(self) -> int:
        """How many of our CALLs wait behind the outstanding one."""
        return len(self._queue)

    def statistics(self) -> RpcStatistics:
        """A frozen snapshot of the counters and the current state."""
        return RpcStatistics(
            calls_received=self._n_calls_received,
            calls_rejected=self._n_calls_rejected,
            results_sent=self._n_results_sent,
            errors_sent=self._n_errors_sent,
            calls_sent=self._n_calls_sent,
            results_received=self._n_results_received,
            results_invalid=self._n_results_invalid,
            errors_received=self._n_errors_received,
            calls_timed_out=self._n_calls_timed_out,
            calls_aborted=self._n_calls_aborted,
            frames_rejected=self._n_frames_rejected,
            frames_ignored=self._n_frames_ignored,
            open_incoming=len(self._open),
            outstanding_call=self.outstanding_call,
            queued_calls=len(self._queue),
            closed=self._closed,
        )

    # ------------------------------------------------------------------ receiving

    def receive_text(self, data: bytes | str, now: float) -> None:
        """Process one received text frame.

        Never raises for anything in ``data``; read the outcome from
        :meth:`events_received` and :meth:`data_to_send`.

        Raises:
            RpcUsageError: called after :meth:`connection_lost`.
        """
        self._check_connected()
        self.handle_timeouts(now)
        try:
            message = parse_frame(data)
        except FrameError as err:
            self._frame_rejected(err)
            return
        if message is None:
            # J §4.1.3: a MessageTypeId other than 2, 3, 4 the receiver "SHALL ignore".
            self._ignore("unknown MessageTypeId", None)
        elif isinstance(message, Call):
            self._call_received(message)
        else:
            self._answer_received(message, now)

    def _frame_rejected(self, err: FrameError) -> None:
        self._n_frames_rejected += 1
        self._events.append(FrameRejected(err.error, err.unique_id))
        if err.message_type_id is None or err.message_type_id == CALL:
            # Only a CALL is answered: a CALLRESULT/CALLERROR never gets a CALLERROR back
            # (J §4.2.3: CALLERROR answers a CALL). Garbage gets the id "-1".
            unique_id = NO_ID if err.unique_id is None else err.unique_id
            self._queue_error(unique_id, err.error)

    def _call_received(self, call: Call) -> None:
        unique_id, action = call.unique_id, call.action
        error: OcppError | None = None
        if unique_id in self._open:
            # J §4.2.3: CALLERROR for "duplicate message id being processed".
            error = ProtocolError("duplicate message id: a CALL with this id is still open")
        elif action not in self._incoming_actions:
            if action in ALL_ACTIONS:
                # "NotSupported: Requested Action is recognized but not supported".
                error = NotSupported(f"{action} is not accepted by the {_ROLE_NAMES[self._role]}")
            else:
                # "NotImplemented: Requested Action is not known by receiver".
                error = OcppNotImplemented(f"unknown action {_printable(action)!r}")
        elif self._validate:
            try:
                validate_request(action, call.payload, strict=False)
            except OcppError as err:
                error = err
        if error is None:
            self._open[unique_id] = action
            self._n_calls_received += 1
            self._events.append(CallReceived(unique_id, action, call.payload))
        else:
            self._n_calls_rejected += 1
            self._queue_error(unique_id, error)
            self._events.append(CallRejected(unique_id, action, error))

    def _answer_received(self, message: CallResult | CallError, now: float) -> None:
        unique_id = message.unique_id
        call = self._outstanding
        if call is None or call.unique_id != unique_id:
            # A late answer (after its timeout) or a confused peer: not ours to act on.
            self._ignore("answer to a CALL that is not outstanding", unique_id)
            return
        self._outstanding = None
        if isinstance(message, CallResult):
            error: OcppError | None = None
            if self._validate:
                try:
                    validate_response(call.action, message.payload, strict=False)
                except OcppError as err:
                    error = err
            if error is None:
                self._n_results_received += 1
                self._events.append(ResultReceived(unique_id, call.action, message.payload))
            else:
                self._n_results_invalid += 1
                self._events.append(ResultInvalid(unique_id, call.action, message.payload, error))
        else:
            self._n_errors_received += 1
            self._events.append(
                ErrorReceived(
                    unique_id,
                    call.action,
                    message.error_code,
                    message.error_description,
                    message.error_details,
                )
            )
        self._send_next(now)

    def _ignore(self, reason: str, unique_id: str | None) -> None:
        self._n_frames_ignored += 1
        self._events.append(FrameIgnored(reason, unique_id))

    # ------------------------------------------------------------------ answering

    def send_result(self, unique_id: str, payload: dict[str, Any]) -> None:
        """Answer the open incoming CALL ``unique_id`` with a CALLRESULT.

        Raises:
            RpcUsageError: ``unique_id`` is not open, the endpoint is closed, or the
                payload fails the response schema (the id stays open: answer it with
                ``send_error(unique_id, InternalError())``).
        """
        action = self._open_action(unique_id)
        if self._validate:
            try:
                validate_response(action, payload, strict=True)
            except OcppError as err:
                raise RpcUsageError(f"invalid {action} response: {err.description}") from err
        try:
            frame = dump_result(unique_id, payload)
        except orjson.JSONEncodeError as err:
            raise RpcUsageError(f"{action} response is not JSON-serialisable") from err
        del self._open[unique_id]
        self._n_results_sent += 1
        self._to_send.append(frame)

    def send_error(self, unique_id: str, error: OcppError) -> None:
        """Answer the open incoming CALL ``unique_id`` with a CALLERROR.

        ``error.description`` goes on the wire verbatim: never put exception text in it.

        Raises:
            RpcUsageError: ``unique_id`` is not open, the endpoint is closed, or the
                error is not sendable (no 1.6 code, unserialisable details).
        """
        self._open_action(unique_id)
        if error.code not in ERROR_CODES:
            raise RpcUsageError(f"{error.code!r} is not an OCPP-J 1.6 error code")
        try:
            frame = dump_error(unique_id, error.code, error.description, error.details)
        except orjson.JSONEncodeError as err:
            raise RpcUsageError("error details are not JSON-serialisable") from err
        del self._open[unique_id]
        self._n_errors_sent += 1
        self._to_send.append(frame)

    def _open_action(self, unique_id: str) -> str:
        self._check_connected()
        action = self._open.get(unique_id)
        if action is None:
            raise RpcUsageError(f"no open incoming CALL with id {unique_id!r}")
        return action

    def _queue_error(self, unique_id: str, error: OcppError) -> None:
        self._n_errors_sent += 1
        self._to_send.append(dump_error(unique_id, error.code, error.description, error.details))

    # ------------------------------------------------------------------ calling

    def send_call(self, action: str, payload: dict[str, Any], now: float) -> str:
        """Send a CALL now, or queue it behind the outstanding one (Rule 1).

        Returns:
            The CALL's unique id; its outcome arrives later as an event carrying it.

        Raises:
            OcppError: the payload fails its schema (e.g. PropertyConstraintViolation);
                nothing was queued. Report it to whoever asked (HTTP 400).
            QueueFull: ``max_queued_calls`` CALLs are already waiting.
            RpcUsageError: ``action`` is not one this role sends, the payload is not
                JSON-serialisable, or the endpoint is closed.
        """
        self._check_connected()
        if action not in self._outgoing_actions:
            raise RpcUsageError(f"a {self._role} endpoint does not send {action!r}")
        if self._validate:
            validate_request(action, payload, strict=True)
        self.handle_timeouts(now)
        if self._outstanding is not None and len(self._queue) >= self._max_queued:
            raise QueueFull(f"{len(self._queue)} CALLs already queued")
        self._counter += 1
        unique_id = f"{self._prefix}{self._counter}"
        try:
            frame = dump_call(unique_id, action, payload)
        except orjson.JSONEncodeError as err:
            raise RpcUsageError(f"{action} payload is not JSON-serialisable") from err
        call = _OutgoingCall(unique_id, action, frame, now)
        if self._outstanding is None:
            self._transmit(call, now)
        else:
            self._queue.append(call)
        return unique_id

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeouts` must next be called (same clock as ``now``),
        or ``None`` when no CALL of ours is pending."""
        call = self._outstanding
        if call is None:
            return None
        if self._queue:
            return min(call.deadline, self._queue[0].queued_at + self._call_timeout)
        return call.deadline

    def handle_timeouts(self, now: float) -> None:
        """Time out the outstanding CALL and drop stale queued CALLs due at ``now``.

        Emits CallTimedOut events, and sends the next queued CALL when the outstanding
        one timed out. Cheap when nothing is due; safe to call at any time.
        """
        call = self._outstanding
        if call is None:
            return  # the queue is empty whenever nothing is outstanding
        if now < call.deadline:
            if self._queue and now >= self._queue[0].queued_at + self._call_timeout:
                self._expire_queued(now)
            return
        self._outstanding = None
        self._n_calls_timed_out += 1
        self._events.append(CallTimedOut(call.unique_id, call.action, sent=True))
        self._send_next(now)

    def _expire_queued(self, now: float) -> None:
        queue, limit = self._queue, now - self._call_timeout
        while queue and queue[0].queued_at <= limit:
            call = queue.popleft()
            self._n_calls_timed_out += 1
            self._events.append(CallTimedOut(call.unique_id, call.action, sent=False))

    def _send_next(self, now: float) -> None:
        self._expire_queued(now)
        if self._queue:
            self._transmit(self._queue.popleft(), now)

    def _transmit(self, call: _OutgoingCall, now: float) -> None:
        # The answer deadline counts from when the CALL actually leaves, not when queued.
        call.deadline = now + self._call_timeout
        self._outstanding = call
        self._n_calls_sent += 1
        self._to_send.append(call.frame)

    # ------------------------------------------------------------------ closing

    def connection_lost(self) -> None:
        """The WebSocket is gone: abort our pending CALLs and forget open incoming ids.

        Emits CallAborted for the outstanding CALL (``sent=True``) and each queued one
        (``sent=False``), and discards frames not yet drained. Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        if self._outstanding is not None:
            call, self._outstanding = self._outstanding, None
            self._n_calls_aborted += 1
            self._events.append(CallAborted(call.unique_id, call.action, sent=True))
        while self._queue:
            call = self._queue.popleft()
            self._n_calls_aborted += 1
            self._events.append(CallAborted(call.unique_id, call.action, sent=False))
        self._open.clear()
        self._to_send.clear()

    def _check_connected(self) -> None:
        if self._closed:
            raise RpcUsageError("the connection is lost; start a new RpcEndpoint")


def _printable(text: str, limit: int = 50) -> str:
    """Peer-controlled text, shortened and without control characters, for echoing."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])
