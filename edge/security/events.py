"""Security events: the ones chargers report (SecurityEventNotification) and the ones the
edge raises itself (failed authentication, lockouts, downgrade attempts, a revoked
certificate, a key rotated).

Every security event is, in this order: journalled (the audit trail; a charger's with
the cloud's outbox, before its answer), logged on the logger ``edge.security`` (WARNING
for the critical ones, which a technician must see with ``journalctl -p warning``;
INFO for the rest), counted in ``edge_security_events_total{type,critical}`` and
published on the event bus (`edge.events.SecurityEventReceived`) for the page.

Critical or not: the OCPP 1.6 Security Whitepaper (edition 2, §8 "Security events")
marks seven of its eighteen events critical — those a charger must push to the central
system with guaranteed delivery. Anything else (the rest of the table, vendors' own
events, the edge's) is not critical unless its raiser says so.

Journal kinds: ``SecurityEventNotification`` (a charger's: its payload plus
``critical``) and ``SecurityEvent`` (the edge's: type, techInfo, critical).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from edge.events import SecurityEventReceived
from edge.services import Services

__all__ = [
    "CHARGER_KIND",
    "CRITICAL_EVENTS",
    "EDGE_KIND",
    "METRIC",
    "STANDARD_EVENTS",
    "is_critical",
    "note_security_event",
    "record_security_event",
    "security_events",
]

log = logging.getLogger("edge.security")

CHARGER_KIND = "SecurityEventNotification"
"""Journal kind of a charger's security event."""
EDGE_KIND = "SecurityEvent"
"""Journal kind of a security event the edge raised."""
METRIC = "edge_security_events_total"

CRITICAL_EVENTS: frozenset[str] = frozenset(
    {
        "FirmwareUpdated",
        "SettingSystemTime",
        "StartupOfTheDevice",
        "ResetOrReboot",
        "SecurityLogWasCleared",
        "MemoryExhaustion",
        "TamperDetectionActivated",
    }
)
"""The Whitepaper's events marked Critical = Yes."""

STANDARD_EVENTS: frozenset[str] = CRITICAL_EVENTS | {
    "FailedToAuthenticateAtCentralSystem",
    "CentralSystemFailedToAuthenticate",
    "ReconfigurationOfSecurityParameters",
    "InvalidMessages",
    "AttemptedReplayAttacks",
    "InvalidFirmwareSignature",
    "InvalidFirmwareSigningCertificate",
    "InvalidCentralSystemCertificate",
    "InvalidChargePointCertificate",
    "InvalidTLSVersion",
    "InvalidTLSCipherSuite",
}
"""Every event type of the Whitepaper's table."""

# The metric's `type` label takes the standard types and the first few others seen; a
# charger inventing a new type per message must not grow the metrics without bound.
MAX_OTHER_TYPE_LABELS = 32
OTHER_TYPE_LABEL = "other"

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,49}")


def is_critical(event_type: str) -> bool:
    """Whether the Whitepaper marks this event type critical."""
    return event_type in CRITICAL_EVENTS


def _printable(text: str, limit: int = 255) -> str:
    # A charger's text goes into the log: no line breaks or terminal controls from it.
    return _UNPRINTABLE.sub("?", text[:limit])


def _type_label(svc: Services, event_type: str) -> str:
    if event_type in STANDARD_EVENTS:
        return event_type
    if not _NAME.fullmatch(event_type):
        return OTHER_TYPE_LABEL  # /metrics needs no login: only name-like text goes there
    seen = svc.metrics.labels_seen(METRIC, "type")
    others = seen - STANDARD_EVENTS - {OTHER_TYPE_LABEL}
    if event_type in others or len(others) < MAX_OTHER_TYPE_LABELS:
        return event_type
    return OTHER_TYPE_LABEL


def note_security_event(
    svc: Services,
    charger_id: str | None,
    event_type: str,
    tech_info: str | None,
    critical: bool,
    *,
    source: str,
) -> None:
    """Log, count and publish a security event that is already journalled."""
    level = logging.WARNING if critical else logging.INFO
    log.log(
        level,
        "%ssecurity event %s from %s%s%s",
        "critical " if critical else "",
        _printable(event_type, 50),
        f"charger {_printable(charger_id, 100)}" if charger_id else "the site",
        " (raised by the edge)" if source == "edge" else "",
        f": {_printable(tech_info)}" if tech_info else "",
    )
    svc.metrics.describe_counter(METRIC, "Security events, by type and criticality")
    svc.metrics.inc(
        METRIC, type=_type_label(svc, event_type), critical="true" if critical else "false"
    )
    svc.publish(
        SecurityEventReceived(
            charger_id=charger_id or "",
            at=svc.now(),
            type=event_type,
            tech_info=tech_info,
            critical=critical,
            source=source,
        )
    )


def record_security_event(
    svc: Services,
    charger_id: str | None,
    type: str,  # the Whitepaper's name for it
    tech_info: str | None = None,
    *,
    critical: bool | None = None,
) -> dict[str, Any]:
    """A security event the edge raises itself, about a charger (or the site: None).

    Journalled without waiting for the disk (an audit record, nothing a charger waits
    for), logged, counted and published; `critical` defaults to the Whitepaper's
    verdict for `type`. Returns the journalled record. Never put a secret in
    `tech_info`: it is logged and shown.
    """
    is_crit = is_critical(type) if critical is None else critical
    entry: dict[str, Any] = {"type": type, "critical": is_crit}
    if tech_info is not None:
        entry["techInfo"] = tech_info
    svc.record(charger_id, EDGE_KIND, entry)
    note_security_event(svc, charger_id, type, tech_info, is_crit, source="edge")
    return entry


def _as_event(row: dict[str, Any]) -> dict[str, Any]:
    data = row["data"] if isinstance(row.get("data"), dict) else {}
    event_type = str(data.get("type", ""))
    critical = data.get("critical")
    source = "charger" if row["kind"] == CHARGER_KIND else "edge"
    return {
        "chargerId": row["charger_id"],
        "type": event_type,
        "critical": is_critical(event_type) if not isinstance(critical, bool) else critical,
        "techInfo": data.get("techInfo"),
        "timestamp": data.get("timestamp", row["at"]),
        "receivedAt": row["at"],
        "source": source,
    }


def security_events(
    svc: Services,
    *,
    charger_id: str | None = None,
    critical: bool | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The newest security events, chargers' and the edge's, newest first:
    ``{chargerId, type, critical, techInfo, timestamp, receivedAt, source}``
    (`timestamp` is the charger's time of the event, `receivedAt` the edge's)."""
    # Filtering on criticality happens after the read: read deeper for it.
    depth = limit if critical is None else min(limit * 20, 5000)
    rows = [
        row
        for kind in (CHARGER_KIND, EDGE_KIND)
        for row in svc.journal.events(charger_id=charger_id, kind=kind, limit=depth)
    ]
    events = [_as_event(row) for row in rows]
    if critical is not None:
        events = [e for e in events if e["critical"] is critical]
    events.sort(key=lambda e: e["receivedAt"], reverse=True)
    return events[:limit]
