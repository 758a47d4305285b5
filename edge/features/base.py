"""What a feature module provides: handlers for charger CALLs, recorders for our CALLs' results."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from edge.chargers import Charger
from edge.ocppj import format_datetime, parse_datetime
from edge.services import Services

__all__ = ["Check", "Handler", "Recorder", "normalise_time"]

Payload = dict[str, Any]

# Serves one CALL from a charger: the payload is already schema-valid; the return value
# is the CALLRESULT payload. Raising an OcppError answers with that CALLERROR.
Handler = Callable[[Services, Charger, Payload], Awaitable[Payload]]

# Records the effect of a CSMS→charger CALL the charger answered (request, response).
Recorder = Callable[[Services, Charger, Payload, Payload], None]

# Checks an operator's CSMS→charger request against rules a schema cannot express;
# returns the problems as {"field", "message"} (empty: fine to send).
Check = Callable[[Services, Charger, Payload], list[dict[str, str]]]


def normalise_time(value: str) -> str:
    """A charger's timestamp as ISO 8601 UTC with milliseconds and Z (naive counts as UTC)."""
    try:
        return format_datetime(parse_datetime(value))
    except ValueError:
        return value
