"""The OCPP 1.6 action names, by the direction their CALL travels.

Names are case-sensitive and equal the SOAP action without the slash (OCPP-J 1.6
§4.2.1). The sets cover the 28 actions of OCPP 1.6 (§3.3 feature profiles) and the 11
actions of the OCPP 1.6 Security Whitepaper; each has ``schemas/<Action>.json`` and
``schemas/<Action>Response.json``.
"""

from __future__ import annotations

__all__ = ["ALL_ACTIONS", "CP_TO_CSMS_ACTIONS", "CSMS_TO_CP_ACTIONS", "WRITE_ONLY_KEYS"]

CP_TO_CSMS_ACTIONS: frozenset[str] = frozenset(
    {
        "Authorize",
        "BootNotification",
        "DataTransfer",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
        # Security Whitepaper
        "LogStatusNotification",
        "SecurityEventNotification",
        "SignCertificate",
        "SignedFirmwareStatusNotification",
    }
)
"""CALLs a charge point sends to the central system."""

CSMS_TO_CP_ACTIONS: frozenset[str] = frozenset(
    {
        "CancelReservation",
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearCache",
        "ClearChargingProfile",
        "DataTransfer",
        "GetCompositeSchedule",
        "GetConfiguration",
        "GetDiagnostics",
        "GetLocalListVersion",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "TriggerMessage",
        "UnlockConnector",
        "UpdateFirmware",
        # Security Whitepaper
        "CertificateSigned",
        "DeleteCertificate",
        "ExtendedTriggerMessage",
        "GetInstalledCertificateIds",
        "GetLog",
        "InstallCertificate",
        "SignedUpdateFirmware",
    }
)
"""CALLs the central system sends to a charge point."""

ALL_ACTIONS: frozenset[str] = CP_TO_CSMS_ACTIONS | CSMS_TO_CP_ACTIONS
"""Every OCPP 1.6 (+ Security Whitepaper) action. DataTransfer travels both ways."""

# Write-only configuration keys, casefolded: their values are never stored, shown or
# logged (OCPP 1.6 §9.1 AuthorizationKey, Security Whitepaper A01.FR.08).
WRITE_ONLY_KEYS: frozenset[str] = frozenset({"authorizationkey"})
