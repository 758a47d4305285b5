"""Events emitted by :class:`edge.ocppj.rpc.RpcEndpoint`, drained with ``events_received()``.

Incoming CALLs end in exactly one of :class:`CallReceived` (the owner must answer) or
:class:`CallRejected` (already answered with a CALLERROR by the core). Our own CALLs end
in exactly one of :class:`ResultReceived`, :class:`ResultInvalid`, :class:`ErrorReceived`,
:class:`CallTimedOut` or :class:`CallAborted`. :class:`FrameRejected` and
:class:`FrameIgnored` report frames that belong to no call; log them.

:class:`RpcStatistics` (from ``statistics()``) is not an event but a snapshot of the same
kind: frozen, for the status page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import OcppError, error_for_code

__all__ = [
    "CallAborted",
    "CallReceived",
    "CallRejected",
    "CallTimedOut",
    "ErrorReceived",
    "Event",
    "FrameIgnored",
    "FrameRejected",
    "ResultInvalid",
    "ResultReceived",
    "RpcStatistics",
]


@dataclass(frozen=True, slots=True)
class CallReceived:
    """The peer sent a valid CALL. Answer it with ``send_result`` or ``send_error``."""

    unique_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallRejected:
    """The peer sent a CALL that the core answered with a CALLERROR already.

    Causes: duplicate open id, unknown or unsupported action, payload failing its schema.
    """

    unique_id: str
    action: str
    error: OcppError


@dataclass(frozen=True, slots=True)
class ResultReceived:
    """Our CALL ``unique_id`` was answered with a CALLRESULT that passed its schema."""

    unique_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResultInvalid:
    """Our CALL was answered with a CALLRESULT that fails its schema.

    The payload is given as received; use it only for logging or best-effort reading.
    """

    unique_id: str
    action: str
    payload: dict[str, Any]
    error: OcppError


@dataclass(frozen=True, slots=True)
class ErrorReceived:
    """Our CALL was answered with a CALLERROR.

    ``error_code`` is the peer's string as sent (it may be an alias such as
    ``FormatViolation``, or not a 1.6 code at all); :attr:`error` normalises it.
    """

    unique_id: str
    action: str
    error_code: str
    description: str
    details: dict[str, Any]

    @property
    def error(self) -> OcppError:
        """The received error as the matching :class:`OcppError` subclass."""
        return error_for_code(self.error_code)(self.description, self.details)


@dataclass(frozen=True, slots=True)
class CallTimedOut:
    """Our CALL got no answer in time (``sent=True``), or waited in the queue for a
    whole ``call_timeout`` and was dropped without being sent (``sent=False``)."""

    unique_id: str
    action: str
    sent: bool


@dataclass(frozen=True, slots=True)
class CallAborted:
    """The connection was lost before our CALL was answered.

    ``sent=True`` means the peer may have acted on it; ``sent=False`` means it never left.
    """

    unique_id: str
    action: str
    sent: bool


@dataclass(frozen=True, slots=True)
class FrameRejected:
    """The peer sent a malformed frame.

    A malformed CALL was answered with a CALLERROR (with its id, or ``"-1"`` when no id
    could be read); a malformed CALLRESULT/CALLERROR was not answered (J §4.2.3).
    """

    error: OcppError
    unique_id: str | None = None


@dataclass(frozen=True, slots=True)
class FrameIgnored:
    """The peer sent a well-formed frame the core drops: an unknown MessageTypeId, or an
    answer whose id is not our outstanding CALL (e.g. one that arrived after its timeout)."""

    reason: str
    unique_id: str | None = None


Event = (
    CallReceived
    | CallRejected
    | ResultReceived
    | ResultInvalid
    | ErrorReceived
    | CallTimedOut
    | CallAborted
    | FrameRejected
    | FrameIgnored
)


@dataclass(frozen=True, slots=True)
class RpcStatistics:
    """A snapshot of one endpoint's counters, for the status page."""

    calls_received: int
    calls_rejected: int
    results_sent: int
    errors_sent: int
    calls_sent: int
    results_received: int
    results_invalid: int
    errors_received: int
    calls_timed_out: int
    calls_aborted: int
    frames_rejected: int
    frames_ignored: int
    open_incoming: int
    outstanding_call: str | None
    queued_calls: int
    closed: bool
