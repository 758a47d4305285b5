"""OCPP 1.6 Firmware Management profile: the charger's status notifications.

Charger → CSMS: FirmwareStatusNotification, DiagnosticsStatusNotification.
CSMS → charger (through the API): UpdateFirmware, GetDiagnostics.

The charger reports each step of a firmware update or diagnostics upload; the
current state is kept on the charger and every step is journalled as history.
`Idle` is legal only in answer to a TriggerMessage (OCPP 1.6 §5.17).
"""

from __future__ import annotations

from edge.chargers import Charger
from edge.features.base import Handler, Payload
from edge.services import Services

__all__ = ["HANDLERS"]


def _record_status(svc: Services, charger: Charger, field: str, kind: str, req: Payload) -> None:
    status = {**req, "at": svc.now_text()}
    svc.chargers.update(charger, **{field: status})
    svc.record(charger.id, kind, req)
    svc.publish(charger.id, kind, req)


async def firmware_status_notification(svc: Services, charger: Charger, req: Payload) -> Payload:
    _record_status(svc, charger, "firmwareStatus", "FirmwareStatusNotification", req)
    return {}


async def diagnostics_status_notification(svc: Services, charger: Charger, req: Payload) -> Payload:
    _record_status(svc, charger, "diagnosticsStatus", "DiagnosticsStatusNotification", req)
    return {}


HANDLERS: dict[str, Handler] = {
    "DiagnosticsStatusNotification": diagnostics_status_notification,
    "FirmwareStatusNotification": firmware_status_notification,
}
