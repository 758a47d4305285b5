"""What can go wrong with an operation on a charger, for every caller to map once.

The web layer turns each into one HTTP status (`edge.web.common`); the cloud relay
into an OCPP answer. `code` names the error for machines, `detail` explains it to
people, `extra` carries fields the answer adds (e.g. the charger's errorCode).

OperationError
├── UnknownCharger       no such charger
├── NotFound             something else the request names does not exist
├── NotConnected         not connected, or it dropped before answering
├── NotAccepted          its registration forbids the action
├── InvalidPayload       the payload fails the action's JSON schema
├── InvalidRequest       a higher-level request that makes no sense
├── CheckFailed          the payload breaks a rule of the specification
├── Conflict             the charger's state forbids it now (a sync running, …)
├── Busy                 too many calls waiting for this charger
├── Timeout              no answer within call_timeout
└── ChargerCallError     the charger answered with a CALLERROR or an invalid result
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Busy",
    "ChargerCallError",
    "CheckFailed",
    "Conflict",
    "InvalidPayload",
    "InvalidRequest",
    "NotAccepted",
    "NotConnected",
    "NotFound",
    "OperationError",
    "Timeout",
    "UnknownCharger",
]


class OperationError(Exception):
    """An operation that could not be sent or answered. `code` names it for machines,
    `detail` explains it to people, `extra` carries fields the answer adds."""

    code = "operation_failed"

    def __init__(self, detail: Any = None, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail if isinstance(detail, str) else (code or self.code))
        if code is not None:
            self.code = code
        self.detail = detail
        self.extra = extra


class UnknownCharger(OperationError):
    code = "unknown_charger"


class NotFound(OperationError):
    code = "not_found"


class NotConnected(OperationError):
    code = "not_connected"


class NotAccepted(OperationError):
    code = "not_accepted"


class InvalidPayload(OperationError):
    code = "invalid_payload"


class InvalidRequest(OperationError):
    code = "invalid_request"


class CheckFailed(OperationError):
    code = "invalid_request"


class Conflict(OperationError):
    code = "conflict"


class Busy(OperationError):
    code = "busy"


class Timeout(OperationError):
    code = "timeout"


class ChargerCallError(OperationError):
    code = "CallError"
