"""The operation pipeline's entries for connection security: what a ChangeConfiguration
of SecurityProfile or AuthorizationKey means for who may connect as the charger."""

from __future__ import annotations

from typing import Any

from edge.chargers import Charger
from edge.security import profiles
from edge.security.credentials import key_bytes
from edge.services import Services

__all__ = ["check_change_configuration", "record_change_configuration"]

Json = dict[str, Any]


def record_change_configuration(svc: Services, charger: Charger, req: Json, res: Json) -> None:
    """Recorder: SecurityProfile and AuthorizationKey changes the charger took."""
    if svc.security is None or res.get("status") not in ("Accepted", "RebootRequired"):
        return
    svc.security.change_accepted(charger.id, str(req.get("key", "")), str(req.get("value", "")))


def check_change_configuration(svc: Services, charger: Charger, req: Json) -> list[Any]:
    """Check: no SecurityProfile downgrade, nor an upgrade the charger could not use."""
    security = svc.security
    key = str(req.get("key", "")).casefold()
    if security is None:
        return []
    if key == "securityprofile":
        doc = security.store.peek(charger.id)
        found = profiles.upgrade_problems(
            security.profile(charger.id),
            str(req.get("value", "")),
            tls_listener=security.tls_available(),
            client_ca=security.client_ca_available(),
            has_password=doc.get("key") is not None,
        )
        return [{"field": "value", "message": m, "severity": s} for s, m in found]
    if key == "authorizationkey":
        value = str(req.get("value", ""))
        if not (32 <= len(value) <= 40 and key_bytes(value) != value.encode()):
            return [
                {
                    "field": "value",
                    "message": "the Whitepaper's AuthorizationKey is 16-20 bytes as 32-40 hex "
                    "digits",
                    "severity": "warning",
                }
            ]
    return []
