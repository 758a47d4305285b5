"""Security events the edge raises about connections, in the shape the plan's shared
`edge.security.events.record_security_event` gives them (the lead swaps this module for
it at merge: same arguments, same journal kind, data and metric).

Journalled as kind ``SecurityEvent`` with ``{"type", "critical", "techInfo"}``, logged on
``edge.security`` and counted in ``edge_security_events_total{type, critical}``.
"""

from __future__ import annotations

import logging
from typing import Any

from edge.services import Services

__all__ = ["EDGE_KIND", "METRIC", "record_security_event"]

log = logging.getLogger("edge.security")

EDGE_KIND = "SecurityEvent"
METRIC = "edge_security_events_total"


def record_security_event(
    svc: Services,
    charger_id: str | None,
    type: str,
    tech_info: str | None = None,
) -> dict[str, Any]:
    """Journal, log and count a security event about a charger (or the site: None).
    Never put a secret in `tech_info`: it is logged and shown."""
    entry: dict[str, Any] = {"type": type, "critical": False}
    if tech_info is not None:
        entry["techInfo"] = tech_info
    svc.record(charger_id, EDGE_KIND, entry)
    log.info(
        "security event %s from %s (raised by the edge)%s",
        type,
        f"charger {charger_id}" if charger_id else "the site",
        f": {tech_info}" if tech_info else "",
    )
    svc.metrics.describe_counter(METRIC, "Security events, by type and criticality")
    svc.metrics.inc(METRIC, type=type, critical="false")
    return entry
