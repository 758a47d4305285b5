"""Exceptions of the OCPP-J RPC core.

Two families, split the way h11 splits remote and local protocol errors:

* :class:`OcppError` is something that travels on the wire as a CALLERROR. Its
  subclasses carry the exact OCPP-J 1.6 ``errorCode`` spellings (J Table 7, kept
  unchanged by the J errata: ``FormationViolation``, ``OccurenceConstraintViolation``).
* :class:`RpcUsageError` is a bug in *our* code (answering an id that is not open,
  sending an invalid response, overfilling the queue). It is never sent to a peer.

.. code-block:: text

    Exception
     ├── OcppError                        code = "GenericError" (base; prefer a subclass)
     │    ├── OcppNotImplemented          "NotImplemented"
     │    ├── NotSupported                "NotSupported"
     │    ├── InternalError               "InternalError"
     │    ├── ProtocolError               "ProtocolError"
     │    ├── SecurityError               "SecurityError"
     │    ├── FormationViolation          "FormationViolation"
     │    ├── PropertyConstraintViolation "PropertyConstraintViolation"
     │    ├── OccurenceConstraintViolation "OccurenceConstraintViolation"
     │    ├── TypeConstraintViolation     "TypeConstraintViolation"
     │    └── GenericError                "GenericError"
     ├── FrameError                       a malformed incoming frame; wraps an OcppError
     └── RpcUsageError                    misuse by our own code; never on the wire
          └── QueueFull                   too many outgoing CALLs waiting
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ERROR_CODES",
    "FormationViolation",
    "FrameError",
    "GenericError",
    "InternalError",
    "NotSupported",
    "OccurenceConstraintViolation",
    "OcppError",
    "OcppNotImplemented",
    "PropertyConstraintViolation",
    "ProtocolError",
    "QueueFull",
    "RpcUsageError",
    "SecurityError",
    "TypeConstraintViolation",
    "error_for_code",
]


class OcppError(Exception):
    """An error that is reported to the peer as a CALLERROR.

    Raise a subclass; the class decides the ``errorCode``. The description is sent
    verbatim, so it must be readable by a technician and must not contain internal
    details (exception text, file paths, stack traces).

    Args:
        description: the ``errorDescription``; "" when there is nothing to say.
        details: the ``errorDetails`` object; ``{}`` when omitted, as the J errata 3.9
            requires ("errorDetails ... MUST be {} if none").
    """

    code: ClassVar[str] = "GenericError"

    def __init__(self, description: str = "", details: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.details: dict[str, Any] = {} if details is None else details

    def __str__(self) -> str:
        return f"{self.code}: {self.description}" if self.description else self.code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class OcppNotImplemented(OcppError):
    """Requested Action is not known by receiver."""

    code = "NotImplemented"


class NotSupported(OcppError):
    """Requested Action is recognized but not supported by the receiver."""

    code = "NotSupported"


class InternalError(OcppError):
    """An internal error occurred and the receiver was not able to process the Action."""

    code = "InternalError"


class ProtocolError(OcppError):
    """Payload for Action is incomplete."""

    code = "ProtocolError"


class SecurityError(OcppError):
    """A security issue prevented the receiver from completing the Action."""

    code = "SecurityError"


class FormationViolation(OcppError):
    """Payload is syntactically incorrect or does not conform to the PDU structure."""

    code = "FormationViolation"


class PropertyConstraintViolation(OcppError):
    """Payload is syntactically correct but a field contains an invalid value."""

    code = "PropertyConstraintViolation"


class OccurenceConstraintViolation(OcppError):
    """Payload is syntactically correct but a field violates occurrence constraints."""

    code = "OccurenceConstraintViolation"


class TypeConstraintViolation(OcppError):
    """Payload is syntactically correct but a field violates data type constraints."""

    code = "TypeConstraintViolation"


class GenericError(OcppError):
    """Any other error not covered by the previous ones."""

    code = "GenericError"


_CLASSES: tuple[type[OcppError], ...] = (
    OcppNotImplemented,
    NotSupported,
    InternalError,
    ProtocolError,
    SecurityError,
    FormationViolation,
    PropertyConstraintViolation,
    OccurenceConstraintViolation,
    TypeConstraintViolation,
    GenericError,
)

ERROR_CODES: frozenset[str] = frozenset(cls.code for cls in _CLASSES)
"""The ten valid OCPP-J 1.6 ``errorCode`` values, exact spelling."""

_BY_CODE: dict[str, type[OcppError]] = {cls.code: cls for cls in _CLASSES}
# Spellings peers send that are not 1.6 codes but mean one: the OCPP 2.0.1 name
# (which mobilityhouse/ocpp emits on its 1.6 path) and the dictionary spelling.
_BY_CODE["FormatViolation"] = FormationViolation
_BY_CODE["OccurrenceConstraintViolation"] = OccurenceConstraintViolation


def error_for_code(code: str) -> type[OcppError]:
    """Return the exception class for a received ``errorCode``.

    Accepts the 1.6 codes and the common aliases (``FormatViolation``,
    ``OccurrenceConstraintViolation``); any other string maps to :class:`GenericError`.
    """
    return _BY_CODE.get(code, GenericError)


class FrameError(Exception):
    """A malformed incoming frame, raised by :func:`edge.ocppj.messages.parse_frame`.

    Attributes:
        error: the :class:`OcppError` to report (its code and description).
        unique_id: the frame's message id when it could be read, so a CALL can still be
            answered; ``None`` otherwise.
        message_type_id: 2, 3 or 4 when the frame declared one of those, else ``None``.
    """

    def __init__(
        self,
        error: OcppError,
        unique_id: str | None = None,
        message_type_id: int | None = None,
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.unique_id = unique_id
        self.message_type_id = message_type_id


class RpcUsageError(Exception):
    """Our own code used the RPC core wrongly (a bug: fix the caller), or asked for more
    than it allows (:class:`QueueFull`)."""


class QueueFull(RpcUsageError):
    """``send_call`` was refused because ``max_queued_calls`` CALLs already wait.

    The caller should report "busy" upward (e.g. HTTP 503) rather than retry at once.
    """
