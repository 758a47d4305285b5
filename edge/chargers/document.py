"""The persisted shape of a charger: one declared field per key, one owning module per field.

A charger's document is what survives a restart (one tinydb document per charger,
`edge.chargers.registry`). Every key is declared here with its type, and
`ChargerRegistry.update(charger, **fields)` takes only these keys with these types
(checked by mypy). Each field has one owner, the only module that writes it
(`FIELD_OWNERS`; `tests/edge/test_charger_document.py` holds the code to it); every
other module reads it, or asks the owner to change it.

Connector status and runtime state (connection, last frame, the site's lease) are not
part of the document: see `edge.chargers.model.Charger`.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

__all__ = [
    "FIELD_OWNERS",
    "AvailabilityEntry",
    "BootFields",
    "ChargerDoc",
    "ConfigurationEntry",
    "StatusReport",
]

Json = dict[str, Any]


class ConfigurationEntry(TypedDict):
    """One configuration key as the charger last reported or accepted it."""

    value: str | None
    readonly: bool
    rebootRequired: NotRequired[bool]


class AvailabilityEntry(TypedDict):
    """The last ChangeAvailability a connector (key "0": the charger) accepted."""

    type: str
    status: str
    at: str


class StatusReport(TypedDict, total=False):
    """A status notification's fields as received, with when (`at`) and, for the
    Security Whitepaper's signed firmware, `signed`."""

    status: str
    at: str
    requestId: int
    signed: bool


class BootFields(TypedDict, total=False):
    """The BootNotification.req fields as the charger last sent them (`BOOT_FIELDS`)."""

    vendor: str | None
    model: str | None
    serialNumber: str | None
    chargeBoxSerialNumber: str | None
    firmwareVersion: str | None
    iccid: str | None
    imsi: str | None
    meterType: str | None
    meterSerialNumber: str | None


class ChargerDoc(BootFields, total=False):
    """Every persisted field of a charger. Times are ISO 8601 UTC text with Z."""

    # --- identity and registration (edge.chargers.registry)
    id: str
    registration: str
    """`Registration`: the operator's decision, or the unknown-charger policy."""
    bootAccepted: bool
    """A BootNotification was answered Accepted under the current registration."""
    firstSeen: str
    lastBoot: str
    lastSeen: str
    # ... and the boot fields (`BootFields`).
    # --- Core (edge.features.core)
    configuration: dict[str, ConfigurationEntry]
    unknownConfigurationKeys: list[str]
    availability: dict[str, AvailabilityEntry]
    lastReset: Json
    # --- Firmware Management (edge.features.firmware)
    firmwareStatus: StatusReport
    diagnosticsStatus: StatusReport
    # --- Security Whitepaper (edge.features.security)
    logStatus: StatusReport
    installedCertificates: dict[str, list[Json]]
    """What the CSMS knows the charger holds, per certificate type (`edge.security.installed`)."""
    certificateHistory: list[Json]
    """The charger's last answers to InstallCertificate, DeleteCertificate and
    GetInstalledCertificateIds."""
    logRequests: dict[str, Json]
    """GetLog requests by requestId, with their LogStatusNotifications."""
    signedFirmwareRequests: dict[str, Json]
    """SignedUpdateFirmware requests by requestId, with their status notifications."""
    securityRequestIdHigh: int
    """The highest requestId of GetLog / SignedUpdateFirmware sent to the charger."""
    # --- Local Authorization List Management (edge.features.local_auth)
    localList: Json
    """`LocalListState.to_json()`: the list the CSMS believes the charger holds."""
    localListVersion: int | None
    # --- Remote Trigger (edge.features.remote_trigger)
    triggers: dict[str, Json]
    # --- Reservation (edge.features.reservation)
    reservations: list[Json]
    reservationIdHigh: int
    # --- Smart Charging (edge.features.smart_charging)
    chargingProfiles: list[Json]
    """`InstalledProfiles.to_json()` without the site's lease (kept in memory)."""
    pendingTxProfiles: list[Json]
    compositeSchedules: dict[str, Json]
    # --- site load balancing (edge.site)
    siteCap: Json | None
    cloudMaxProfiles: list[Json]
    """ChargePointMaxProfiles from the cloud, kept as caps (`edge.site.caps`)."""
    siteControl: Json
    """What the site controller learned of the charger (`ChargerControl.learned`)."""


_OWNED_BY: dict[str, tuple[str, ...]] = {
    "edge.chargers.registry": (
        "id", "registration", "bootAccepted", "firstSeen", "lastBoot", "lastSeen",
        "vendor", "model", "serialNumber", "chargeBoxSerialNumber", "firmwareVersion",
        "iccid", "imsi", "meterType", "meterSerialNumber",
    ),
    "edge.features.core": (
        "configuration", "unknownConfigurationKeys", "availability", "lastReset",
    ),
    "edge.features.firmware": ("firmwareStatus", "diagnosticsStatus"),
    "edge.features.security": (
        "logStatus", "installedCertificates", "certificateHistory", "logRequests",
        "signedFirmwareRequests", "securityRequestIdHigh",
    ),
    "edge.features.local_auth": ("localList", "localListVersion"),
    "edge.features.remote_trigger": ("triggers",),
    "edge.features.reservation": ("reservations", "reservationIdHigh"),
    "edge.features.smart_charging": (
        "chargingProfiles", "pendingTxProfiles", "compositeSchedules",
    ),
    "edge.site.caps": ("siteCap", "cloudMaxProfiles"),
    "edge.site.controller": ("siteControl",),
}  # fmt: skip

FIELD_OWNERS: dict[str, str] = {
    field: module for module, fields in _OWNED_BY.items() for field in fields
}
"""Field → the one module that writes it."""
