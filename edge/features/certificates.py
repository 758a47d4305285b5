"""Charger certificates from the site CA (OCPP 1.6 Security Whitepaper, use case A02/A03).

SignCertificate (charger → CSMS) is answered by `Services.certificates`
(`edge.security.authority`): Accepted only once a certificate is signed and registered.
CertificateSigned (CSMS → charger) then goes through the operation pipeline, like an
operator's, with origin "system", after the answer is on the wire. The charger's answer
is recorded by the recorder here, for ours and for an operator's CertificateSigned that
carries a certificate of ours: Accepted → installed (the charger's older certificates
superseded), Rejected → rejected (the charger then raises InvalidChargePointCertificate,
recorded as every SecurityEventNotification).

Renewal on request: ExtendedTriggerMessage(SignChargePointCertificate) from the operator
(`renew`), the charger sends a new SignCertificate, and so on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from edge.chargers import Charger
from edge.features.base import Handler, Payload, Recorder
from edge.operations import OperationError, Origin, Outcome, Sender
from edge.services import Services

__all__ = ["HANDLERS", "RECORDERS", "renew", "subscribe"]

log = logging.getLogger(__name__)

Spawner = Callable[[Coroutine[Any, Any, None]], None]


async def sign_certificate(svc: Services, charger: Charger, req: Payload) -> Payload:
    authority = svc.certificates
    if authority is None:
        log.warning("charger %s asked to sign a certificate; no site CA service", charger.id)
        svc.record(charger.id, "SignCertificate", {"status": "Rejected", "reason": "no CA"})
        return {"status": "Rejected"}
    return {"status": await authority.sign(charger, req["csr"])}


def record_certificate_signed(svc: Services, charger: Charger, req: Payload, res: Payload) -> None:
    if svc.certificates is not None:
        svc.certificates.chain_answered(
            charger.id, str(req.get("certificateChain", "")), str(res.get("status"))
        )


async def deliver(ops: Sender, charger: Charger, chain: str, serial: str) -> None:
    """Send CertificateSigned; the recorder keeps the answer. A background job: an
    error here is logged and noted in the register, never raised."""
    authority = ops.services.certificates
    try:
        await ops.send(
            charger, "CertificateSigned", {"certificateChain": chain}, origin=Origin.SYSTEM
        )
    except OperationError as err:
        log.warning("charger %s: CertificateSigned for %s not answered: %s", charger.id,
                    serial, err.code)  # fmt: skip
        if authority is not None:
            authority.delivery_failed(serial, err.code)
    except Exception:
        log.exception("charger %s: sending CertificateSigned failed", charger.id)


async def renew(ops: Sender, charger: Charger, origin: Origin = Origin.OPERATOR) -> Outcome:
    """Ask the charger for a new CSR: ExtendedTriggerMessage(SignChargePointCertificate).

    Raises:
        OperationError: as `Operations.send`.
    """
    return await ops.send(
        charger,
        "ExtendedTriggerMessage",
        {"requestedMessage": "SignChargePointCertificate"},
        origin=origin,
    )


def subscribe(svc: Services, spawn: Spawner, ops: Sender) -> None:
    """Wire the CA's delivery of signed certificates to the pipeline."""
    if svc.certificates is None:
        return

    def send_later(charger: Charger, chain: str, serial: str) -> None:
        spawn(deliver(ops, charger, chain, serial))

    svc.certificates.deliver = send_later


HANDLERS: dict[str, Handler] = {"SignCertificate": sign_certificate}
RECORDERS: dict[str, Recorder] = {"CertificateSigned": record_certificate_signed}
