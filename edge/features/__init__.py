"""One module per OCPP feature profile, and the dispatch tables built from them.

Named *features*, not profiles, so they are never confused with charging profiles.
The tables are built explicitly here: no decorator-filled global registry.
"""

from __future__ import annotations

from edge.features import core, firmware, security
from edge.features.base import Handler, Recorder

__all__ = ["HANDLERS", "RECORDERS", "Handler", "Recorder"]

HANDLERS: dict[str, Handler] = {**core.HANDLERS, **firmware.HANDLERS, **security.HANDLERS}
RECORDERS: dict[str, Recorder] = {**core.RECORDERS}
