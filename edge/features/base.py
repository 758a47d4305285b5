"""What a feature module provides: handlers for charger CALLs, recorders for our CALLs' results."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from edge.chargers import Charger
from edge.operations.model import Problem
from edge.services import Services

__all__ = ["Check", "Handler", "Payload", "Problem", "Recorder"]

Payload = dict[str, Any]


# Serves one CALL from a charger: the payload is already schema-valid; the return value
# is the CALLRESULT payload. Raising an OcppError answers with that CALLERROR.
Handler = Callable[[Services, Charger, Payload], Awaitable[Payload]]

# Records the effect of a CSMS→charger CALL the charger answered (request, response).
Recorder = Callable[[Services, Charger, Payload, Payload], None]

# Checks a CSMS→charger request against rules a schema cannot express; returns the
# problems found (empty: fine to send). See `edge.operations` for what refuses a call.
Check = Callable[[Services, Charger, Payload], list[Problem]]
