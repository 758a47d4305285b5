"""OCPP-J 1.6 frames: the three message types, parsed from and dumped to JSON text.

.. code-block:: text

    CALL        [2, "<UniqueId>", "<Action>", {<Payload>}]
    CALLRESULT  [3, "<UniqueId>", {<Payload>}]
    CALLERROR   [4, "<UniqueId>", "<errorCode>", "<errorDescription>", {<errorDetails>}]

Parsing checks the frame structure only (OCPP-J 1.6 §4); payloads are checked against
the schemas by :mod:`edge.ocppj.validation`. Objects that exist are well-formed frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .errors import FormationViolation, FrameError, ProtocolError

__all__ = [
    "CALL",
    "CALLERROR",
    "CALLRESULT",
    "MAX_UNIQUE_ID_LENGTH",
    "Call",
    "CallError",
    "CallResult",
    "Message",
    "dump_call",
    "dump_error",
    "dump_message",
    "dump_result",
    "parse_frame",
]

CALL = 2
CALLRESULT = 3
CALLERROR = 4

# J §4.1.4: "The message ID ... SHALL NOT exceed 36 characters".
MAX_UNIQUE_ID_LENGTH = 36


@dataclass(frozen=True, slots=True)
class Call:
    """A request: ``[2, unique_id, action, payload]``."""

    unique_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallResult:
    """A successful answer: ``[3, unique_id, payload]``."""

    unique_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallError:
    """A failed answer: ``[4, unique_id, error_code, error_description, error_details]``."""

    unique_id: str
    error_code: str
    error_description: str
    error_details: dict[str, Any]


Message = Call | CallResult | CallError


def _reject(description: str, unique_id: str | None, type_id: int | None) -> FrameError:
    return FrameError(FormationViolation(description), unique_id, type_id)


def parse_frame(data: bytes | str) -> Message | None:
    """Parse one WebSocket text frame.

    Returns:
        The message, or ``None`` when the frame is a JSON array whose MessageTypeId is
        an integer other than 2, 3 or 4: "the server SHALL ignore" it (J §4.1.3).

    Raises:
        FrameError: the frame is malformed. ``.error`` is the OcppError to report and
            ``.unique_id`` the message id to answer with when it could be read.
            ``.message_type_id`` tells whether it claimed to be a CALL (only a CALL may
            be answered; a broken CALLRESULT/CALLERROR is only logged).
    """
    try:
        frame = orjson.loads(data)
    except orjson.JSONDecodeError:
        # J §4.1.2: the whole frame must be valid JSON encoded in UTF-8.
        raise _reject("frame is not valid JSON in UTF-8", None, None) from None
    if type(frame) is not list or not frame:
        raise _reject("frame must be a non-empty JSON array", None, None)
    type_id = frame[0]
    if type(type_id) is not int:  # bool and float are not a MessageTypeId
        raise _reject("MessageTypeId must be an integer", None, None)
    if type_id != CALL and type_id != CALLRESULT and type_id != CALLERROR:
        return None

    size = len(frame)
    unique_id = frame[1] if size > 1 else None
    if type(unique_id) is not str or not unique_id or len(unique_id) > MAX_UNIQUE_ID_LENGTH:
        if unique_id is None and size < 2:
            reason = "UniqueId missing"
        elif type(unique_id) is not str:
            reason = "UniqueId must be a string"
        elif not unique_id:
            reason = "UniqueId must not be empty"
        else:
            reason = f"UniqueId must be at most {MAX_UNIQUE_ID_LENGTH} characters"
        readable = unique_id if type(unique_id) is str and unique_id else None
        raise _reject(reason, readable, type_id)

    if type_id == CALL:
        if size < 3:
            raise _reject("CALL must have 4 elements", unique_id, type_id)
        action = frame[2]
        if type(action) is not str:
            raise _reject("Action must be a string", unique_id, type_id)
        if size == 3:
            # "ProtocolError: Payload for Action is incomplete" (J Table 7).
            raise FrameError(ProtocolError("CALL is incomplete: payload missing"), unique_id, CALL)
        if size > 4:
            raise _reject("CALL must have 4 elements", unique_id, type_id)
        payload = frame[3]
        if type(payload) is not dict:
            # J §4.2.1: an empty payload is {} (never null).
            raise _reject("CALL payload must be a JSON object", unique_id, type_id)
        return Call(unique_id, action, payload)

    if type_id == CALLRESULT:
        if size != 3:
            raise _reject("CALLRESULT must have 3 elements", unique_id, type_id)
        payload = frame[2]
        if type(payload) is not dict:
            raise _reject("CALLRESULT payload must be a JSON object", unique_id, type_id)
        return CallResult(unique_id, payload)

    # CALLERROR. Tolerate a missing or null errorDetails: some peers omit it, and
    # nothing is lost by reading it as {} (J errata 3.9: "{}" if there are none).
    if size != 5 and size != 4:
        raise _reject("CALLERROR must have 5 elements", unique_id, type_id)
    code, description = frame[2], frame[3]
    if type(code) is not str:
        raise _reject("errorCode must be a string", unique_id, type_id)
    if type(description) is not str:
        raise _reject("errorDescription must be a string", unique_id, type_id)
    details = frame[4] if size == 5 else None
    if details is None:
        details = {}
    elif type(details) is not dict:
        raise _reject("errorDetails must be a JSON object", unique_id, type_id)
    return CallError(unique_id, code, description, details)


def dump_call(unique_id: str, action: str, payload: dict[str, Any]) -> bytes:
    """Serialise a CALL frame. Raises ``orjson.JSONEncodeError`` for unserialisable data."""
    return orjson.dumps([CALL, unique_id, action, payload])


def dump_result(unique_id: str, payload: dict[str, Any]) -> bytes:
    """Serialise a CALLRESULT frame. Raises ``orjson.JSONEncodeError`` likewise."""
    return orjson.dumps([CALLRESULT, unique_id, payload])


def dump_error(
    unique_id: str,
    error_code: str,
    error_description: str = "",
    error_details: dict[str, Any] | None = None,
) -> bytes:
    """Serialise a CALLERROR frame; ``error_details`` becomes ``{}`` when None.

    J errata 3.9: "errorDescription ... '' if nothing to say; errorDetails MUST be {}
    if none".
    """
    details = {} if error_details is None else error_details
    return orjson.dumps([CALLERROR, unique_id, error_code, error_description, details])


def dump_message(message: Message) -> bytes:
    """Serialise any of the three message dataclasses."""
    if isinstance(message, Call):
        return dump_call(message.unique_id, message.action, message.payload)
    if isinstance(message, CallResult):
        return dump_result(message.unique_id, message.payload)
    return dump_error(
        message.unique_id, message.error_code, message.error_description, message.error_details
    )
