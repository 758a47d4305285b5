"""OCPP 1.6 Security Whitepaper: the messages a charger sends.

Charger → CSMS: SecurityEventNotification, LogStatusNotification,
SignedFirmwareStatusNotification, SignCertificate.

Security events are the charger's audit trail and SHALL be confirmed (WP
A04.FR.02): each is journalled before the answer. SignCertificate is answered
Rejected while no certificate authority is configured for this site: the CSMS
must not promise a certificate it cannot issue (WP A02.FR.02).
"""

from __future__ import annotations

import logging
from typing import cast

from edge.chargers import Charger
from edge.chargers.document import StatusReport
from edge.events import SecurityEventReceived
from edge.features.base import Handler, Payload
from edge.features.firmware import record_firmware_status
from edge.services import Services

__all__ = ["HANDLERS"]

log = logging.getLogger(__name__)


async def security_event_notification(svc: Services, charger: Charger, req: Payload) -> Payload:
    log.info("charger %s security event %s", charger.id, req["type"])
    outbox = svc.for_cloud(charger.id, "SecurityEventNotification", req)
    await svc.journal.add_event(
        charger_id=charger.id,
        kind="SecurityEventNotification",
        data=req,
        at=svc.now_text(),
        outbox=outbox,
    )
    svc.publish(
        SecurityEventReceived(
            charger_id=charger.id, at=svc.now(), type=req["type"], tech_info=req.get("techInfo")
        )
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
