"""OCPP 1.6 Remote Trigger profile (and the Security Whitepaper's ExtendedTriggerMessage).

CSMS → charger (through the API): TriggerMessage, ExtendedTriggerMessage.

The charger answers Accepted, Rejected or NotImplemented, then sends the requested
message, which the core and firmware handlers serve like any other (the session lets a
not-yet-accepted charger send it: `ChargerSession.expect_triggered`). Triggered
DiagnosticsStatusNotification / FirmwareStatusNotification may carry `Idle`.

The last answer per requested message is kept in the charger document as `triggers`:
`{requestedMessage: {"action", "status", "connectorId", "at"}}`. No check blocks an
unknown connectorId (TC_055 sends NumberOfConnectors+1); the only check refuses
BootNotification once the charger is Accepted.
"""

from __future__ import annotations

from edge.chargers import Charger
from edge.features.base import Check, Handler, Payload, Recorder
from edge.operations import Problem
from edge.services import Services

__all__ = ["CHECKS", "HANDLERS", "RECORDERS", "subscribe"]


def check_trigger(svc: Services, charger: Charger, req: Payload) -> list[Problem]:
    if req.get("requestedMessage") == "BootNotification" and charger.boot_accepted:
        # "the Central System SHALL NOT send a TriggerMessage.req for a BootNotification
        # after it has accepted the Charge Point, until a new boot" (1.6 errata 3.40).
        return [
            {
                "field": "requestedMessage",
                "message": "BootNotification must not be triggered once the charger is "
                "Accepted, until it boots again",
            }
        ]
    return []


def _recorder(action: str) -> Recorder:
    def record(svc: Services, charger: Charger, req: Payload, res: Payload) -> None:
        triggers = dict(charger.doc.get("triggers", {}))
        triggers[str(req.get("requestedMessage"))] = {
            "action": action,
            "status": res.get("status"),
            "connectorId": req.get("connectorId"),
            "at": svc.now_text(),
        }
        svc.chargers.update(charger, triggers=triggers)

    return record


HANDLERS: dict[str, Handler] = {}
RECORDERS: dict[str, Recorder] = {
    "ExtendedTriggerMessage": _recorder("ExtendedTriggerMessage"),
    "TriggerMessage": _recorder("TriggerMessage"),
}
CHECKS: dict[str, Check] = {
    "ExtendedTriggerMessage": check_trigger,
    "TriggerMessage": check_trigger,
}


def subscribe(svc: Services) -> None:
    """Nothing to follow: the triggered messages are served by the core/firmware handlers."""
