"""Errors raised by meter drivers.

pymodbus exceptions never leave this package: the reader translates them at the
boundary with ``raise ... from err``, so callers catch only these::

    MeterError
    ├── MeterConnectionError   no link to the meter (refused, closed, tty missing)
    │   └── MeterTimeout       connected, but no answer within the timeout
    ├── MeterProtocolError     the meter answered with a Modbus exception or garbage
    └── MeterConfigError       unknown model, inconsistent register map, bad settings

What the caller does next: a ``MeterConnectionError`` or ``MeterProtocolError``
means "no valid reading this cycle" (keep the last one until it goes stale); a
``MeterConfigError`` will not heal by retrying and should stop start-up.
"""

from __future__ import annotations


class MeterError(Exception):
    """Base class of every error raised by ``drivers``."""


class MeterConnectionError(MeterError):
    """The meter cannot be reached; retry on the next poll."""


class MeterTimeout(MeterConnectionError):
    """The meter did not answer within the configured timeout."""


class MeterProtocolError(MeterError):
    """The meter answered, but not with usable data.

    Attributes:
        exception_code: the Modbus exception code (2 = illegal data address,
            4 = device failure / unknown device id, …), or None when the answer
            was malformed rather than a Modbus exception response.
    """

    def __init__(self, message: str, exception_code: int | None = None) -> None:
        super().__init__(message)
        self.exception_code = exception_code


class MeterConfigError(MeterError):
    """The configuration or register map is wrong; fix it, retrying will not help."""
