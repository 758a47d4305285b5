"""Sans-I/O OCPP-J 1.6 RPC core: framing, schema validation, pending-call state.

Typical use by the I/O layer (one :class:`RpcEndpoint` per WebSocket connection)::

    endpoint = RpcEndpoint(role="csms")
    endpoint.receive_text(frame, now=loop.time())
    for event in endpoint.events_received():
        ...                                   # dispatch; answer CallReceived
    for data in endpoint.data_to_send():
        await ws.send(data, text=True)
"""

from .actions import ALL_ACTIONS, CP_TO_CSMS_ACTIONS, CSMS_TO_CP_ACTIONS, WRITE_ONLY_KEYS
from .errors import (
    ERROR_CODES,
    FormationViolation,
    FrameError,
    GenericError,
    InternalError,
    NotSupported,
    OccurenceConstraintViolation,
    OcppError,
    OcppNotImplemented,
    PropertyConstraintViolation,
    ProtocolError,
    QueueFull,
    RpcUsageError,
    SecurityError,
    TypeConstraintViolation,
    error_for_code,
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
    Call,
    CallError,
    CallResult,
    Message,
    dump_call,
    dump_error,
    dump_message,
    dump_result,
    parse_frame,
)
from .rpc import NO_ID, RpcEndpoint
from .validation import (
    compile_all_validators,
    validate_request,
    validate_response,
)

__all__ = [
    "ALL_ACTIONS",
    "CP_TO_CSMS_ACTIONS",
    "CSMS_TO_CP_ACTIONS",
    "ERROR_CODES",
    "NO_ID",
    "WRITE_ONLY_KEYS",
    "Call",
    "CallAborted",
    "CallError",
    "CallReceived",
    "CallRejected",
    "CallResult",
    "CallTimedOut",
    "ErrorReceived",
    "Event",
    "FormationViolation",
    "FrameError",
    "FrameIgnored",
    "FrameRejected",
    "GenericError",
    "InternalError",
    "Message",
    "NotSupported",
    "OccurenceConstraintViolation",
    "OcppError",
    "OcppNotImplemented",
    "PropertyConstraintViolation",
    "ProtocolError",
    "QueueFull",
    "ResultInvalid",
    "ResultReceived",
    "RpcEndpoint",
    "RpcStatistics",
    "RpcUsageError",
    "SecurityError",
    "TypeConstraintViolation",
    "compile_all_validators",
    "dump_call",
    "dump_error",
    "dump_message",
    "dump_result",
    "error_for_code",
    "parse_frame",
    "validate_request",
    "validate_response",
]
