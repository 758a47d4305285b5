"""What a feature module provides: handlers for charger CALLs, recorders for our CALLs' results."""

from __future__ import annotations

from typing import Any

from edge.operations.model import Check, Problem, Recorder
from edge.session import Handler

__all__ = ["Check", "Handler", "Payload", "Problem", "Recorder"]

Payload = dict[str, Any]


# Handler (what serves a charger's CALL) is defined by the session that calls it.

# Check and Recorder (what a feature gives the operation pipeline) are defined with the
# pipeline, `edge.operations.model`.
