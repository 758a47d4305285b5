"""OCPP 1.6J facts the integration tests check against, written out from the spec.

Spelled out here rather than imported from edge.ocppj, so the tests do not
grade the product against its own constants.
"""

# OCPP-J 1.6 Table 7, with the 1.6 spellings the errata keep.
ERROR_CODES = frozenset(
    {
        "NotImplemented",
        "NotSupported",
        "InternalError",
        "ProtocolError",
        "SecurityError",
        "FormationViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",
        "TypeConstraintViolation",
        "GenericError",
    }
)

# CALLs a charge point sends: OCPP 1.6 and the Security Whitepaper.
CP_ACTIONS = (
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
    "LogStatusNotification",
    "SecurityEventNotification",
    "SignCertificate",
    "SignedFirmwareStatusNotification",
)
