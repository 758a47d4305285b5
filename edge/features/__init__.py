"""One module per OCPP feature profile, and the dispatch tables built from them.

Named *features*, not profiles, so they are never confused with charging profiles.
The tables are built explicitly here: no decorator-filled global registry.
"""

from __future__ import annotations

from edge.chargers import Charger
from edge.features import (
    certificates,
    core,
    firmware,
    local_auth,
    remote_trigger,
    reservation,
    security,
    smart_charging,
)
from edge.features.base import Check, Handler, Payload, Recorder
from edge.security import operations as connection_security
from edge.services import Services

__all__ = ["CHECKS", "HANDLERS", "RECORDERS", "Check", "Handler", "Recorder"]

# Charger → CSMS calls.
HANDLERS: dict[str, Handler] = {
    **core.HANDLERS,
    **firmware.HANDLERS,
    **security.HANDLERS,
    **certificates.HANDLERS,
    **reservation.HANDLERS,
    **local_auth.HANDLERS,
    **remote_trigger.HANDLERS,
}
# Effects of CSMS → charger calls the charger answered.
RECORDERS: dict[str, Recorder] = {
    **core.RECORDERS,
    **smart_charging.RECORDERS,
    **reservation.RECORDERS,
    **local_auth.RECORDERS,
    **remote_trigger.RECORDERS,
    **security.RECORDERS,
    **certificates.RECORDERS,
}


def _record_change_configuration(
    svc: Services, charger: Charger, req: Payload, res: Payload
) -> None:
    # The configuration the charger took (core), and what it means for who may connect
    # as it: a pending security profile or AuthorizationKey (edge.security.connection).
    core.record_change_configuration(svc, charger, req, res)
    connection_security.record_change_configuration(svc, charger, req, res)


RECORDERS["ChangeConfiguration"] = _record_change_configuration
# Spec rules checked before an operator's call is sent (skipped with force).
CHECKS: dict[str, Check] = {
    "ChangeConfiguration": connection_security.check_change_configuration,
    **smart_charging.CHECKS,
    **reservation.CHECKS,
    **local_auth.CHECKS,
    **remote_trigger.CHECKS,
}
