"""A charger as the CSMS holds it: its persisted document and its runtime state.

Connector status is not part of the document: its history is journalled and the
latest state is rebuilt from the journal at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from edge.chargers.document import ChargerDoc
from edge.times import epoch_text

__all__ = ["BOOT_FIELDS", "Charger", "ConnectorState", "Registration"]


class Registration(StrEnum):
    """RegistrationStatus of BootNotification.conf, and the operator's decision on a charger."""

    ACCEPTED = "Accepted"
    """The charger may use the CSMS."""
    PENDING = "Pending"
    """Known but not yet approved: it may boot, and the CSMS may configure it, nothing else."""
    REJECTED = "Rejected"
    """Refused: its BootNotifications are answered Rejected."""


# BootNotification.req field → charger document field. Explicit, no case conversion.
BOOT_FIELDS: dict[str, str] = {
    "chargePointVendor": "vendor",
    "chargePointModel": "model",
    "chargePointSerialNumber": "serialNumber",
    "chargeBoxSerialNumber": "chargeBoxSerialNumber",
    "firmwareVersion": "firmwareVersion",
    "iccid": "iccid",
    "imsi": "imsi",
    "meterType": "meterType",
    "meterSerialNumber": "meterSerialNumber",
}


@dataclass(slots=True)
class ConnectorState:
    """What the charger last reported for one connector (0 is the charger as a whole)."""

    connector_id: int
    status: str = "Unknown"
    error_code: str = "NoError"
    info: str | None = None
    vendor_error_code: str | None = None
    timestamp: str | None = None
    transaction_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "connectorId": self.connector_id,
            "status": self.status,
            "errorCode": self.error_code,
            "info": self.info,
            "vendorErrorCode": self.vendor_error_code,
            "timestamp": self.timestamp,
            "transactionId": self.transaction_id,
        }


@dataclass(slots=True)
class Charger:
    """One charge point. `doc` holds the persisted fields (read it freely; change it only
    through `ChargerRegistry`, by the field's owner); the rest is runtime state."""

    id: str
    doc: ChargerDoc
    connected: bool = False
    last_seen: float | None = None  # epoch seconds; formatted only when shown
    connectors: dict[int, ConnectorState] = field(default_factory=dict)

    @property
    def registration(self) -> Registration:
        return Registration(self.doc.get("registration", Registration.PENDING))

    @property
    def boot_accepted(self) -> bool:
        """True once a BootNotification was answered Accepted under the current registration."""
        return bool(self.doc.get("bootAccepted", False))

    @property
    def accepted(self) -> bool:
        """Whether CALLs other than BootNotification are served (OCPP-J errata 3.10)."""
        return self.registration is Registration.ACCEPTED and self.boot_accepted

    def reported(self, key: str) -> str | None:
        """A configuration key's value as the charger last reported it, if known."""
        entry = self.doc.get("configuration", {}).get(key)
        return entry.get("value") if isinstance(entry, dict) else None

    def reported_int(self, key: str) -> int | None:
        """An integer configuration key as the charger last reported it, if known."""
        try:
            return int(self.reported(key))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None

    def connector(self, connector_id: int) -> ConnectorState:
        state = self.connectors.get(connector_id)
        if state is None:
            state = self.connectors[connector_id] = ConnectorState(connector_id)
        return state

    def last_seen_text(self) -> str | None:
        if self.last_seen is None:
            return self.doc.get("lastSeen")
        return epoch_text(self.last_seen)

    def to_json(self) -> dict[str, Any]:
        doc = self.doc
        return {
            "id": self.id,
            "connected": self.connected,
            "registration": str(self.registration),
            "vendor": doc.get("vendor"),
            "model": doc.get("model"),
            "serialNumber": doc.get("serialNumber"),
            "chargeBoxSerialNumber": doc.get("chargeBoxSerialNumber"),
            "firmwareVersion": doc.get("firmwareVersion"),
            "iccid": doc.get("iccid"),
            "imsi": doc.get("imsi"),
            "meterType": doc.get("meterType"),
            "meterSerialNumber": doc.get("meterSerialNumber"),
            "firstSeen": doc.get("firstSeen"),
            "lastBoot": doc.get("lastBoot"),
            "lastSeen": self.last_seen_text(),
            "connectors": [c.to_json() for _, c in sorted(self.connectors.items())],
            "localListVersion": doc.get("localListVersion"),
        }

    def to_detail_json(self) -> dict[str, Any]:
        data = self.to_json()
        data["configuration"] = self.doc.get("configuration", {})
        data["availability"] = self.doc.get("availability", {})
        data["chargingProfiles"] = list(self.doc.get("chargingProfiles", []))
        data["reservations"] = self.doc.get("reservations", [])
        return data
