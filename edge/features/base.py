"""What a feature module provides: handlers for charger CALLs, recorders for our CALLs' results."""

from __future__ import annotations

from typing import Any

from edge.ocppj import format_datetime, parse_datetime
from edge.operations.model import Check, Problem, Recorder
from edge.session import Handler

__all__ = ["Check", "Handler", "Payload", "Problem", "Recorder", "normalise_time"]

Payload = dict[str, Any]


# Handler (what serves a charger's CALL) is defined by the session that calls it.

# Check and Recorder (what a feature gives the operation pipeline) are defined with the
# pipeline, `edge.operations.model`.


def normalise_time(value: str) -> str:
    """A charger's timestamp as ISO 8601 UTC with milliseconds and Z (naive counts as UTC)."""
    try:
        return format_datetime(parse_datetime(value))
    except ValueError:
        return value
