"""OCPP 1.6 Security Whitepaper: the messages a charger sends.

Charger → CSMS: SecurityEventNotification, LogStatusNotification,
SignedFirmwareStatusNotification, SignCertificate.

Security events are the charger's audit trail and SHALL be confirmed (WP
A04.FR.02): each is journalled before the answer, then logged, counted and published
like the edge's own (`edge.security.events`). SignCertificate is answered
Rejected while no certificate authority is configured for this site: the CSMS
must not promise a certificate it cannot issue (WP A02.FR.02).
"""

from __future__ import annotations

import logging
from typing import cast

from edge.chargers import Charger
from edge.chargers.document import StatusReport
from edge.features.base import Handler, Payload
from edge.features.firmware import record_firmware_status
from edge.security import events
from edge.security.events import is_critical, note_security_event
from edge.services import Services

__all__ = ["HANDLERS"]

log = logging.getLogger(__name__)


async def security_event_notification(svc: Services, charger: Charger, req: Payload) -> Payload:
    critical = is_critical(req["type"])
    outbox = svc.for_cloud(charger.id, "SecurityEventNotification", req)
    await svc.journal.add_event(
        charger_id=charger.id,
        kind=events.CHARGER_KIND,
        data={**req, "critical": critical},
        at=svc.now_text(),
        outbox=outbox,
    )
    if outbox is not None:
        svc.outbox_written(charger.id)
    note_security_event(
        svc, charger.id, req["type"], req.get("techInfo"), critical, source="charger"
    )
    return {}


async def log_status_notification(svc: Services, charger: Charger, req: Payload) -> Payload:
    svc.chargers.update(charger, logStatus=cast(StatusReport, {**req, "at": svc.now_text()}))
    await svc.record_for_cloud(charger.id, "LogStatusNotification", req)
    return {}


async def signed_firmware_status_notification(
    svc: Services, charger: Charger, req: Payload
) -> Payload:
    record_firmware_status(svc, charger, req, signed=True)
    await svc.record_for_cloud(charger.id, "SignedFirmwareStatusNotification", req)
    return {}


async def sign_certificate(svc: Services, charger: Charger, req: Payload) -> Payload:
    log.warning("charger %s asked to sign a certificate; no CA is configured", charger.id)
    svc.record(charger.id, "SignCertificate", {"status": "Rejected", "reason": "no CA configured"})
    return {"status": "Rejected"}


HANDLERS: dict[str, Handler] = {
    "LogStatusNotification": log_status_notification,
    "SecurityEventNotification": security_event_notification,
    "SignCertificate": sign_certificate,
    "SignedFirmwareStatusNotification": signed_firmware_status_notification,
}
