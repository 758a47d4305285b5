"""The chargers this CSMS knows: registration, boot data, connectors, reported configuration.

The registry is an in-memory model persisted as one tinydb document per charger.
Reads never touch the disk; a change marks the document dirty and the store's
periodic flush writes it, so a reconnect storm of a whole site costs a few file
rewrites. Changes an operator makes are flushed before the API answers.

Connector status is not part of the document: its history is journalled and the
latest state is rebuilt from the journal at start-up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from edge.store import DocumentStore
from edge.times import epoch_text

__all__ = [
    "BOOT_FIELDS",
    "Charger",
    "ChargerRegistry",
    "ConnectorState",
    "Registration",
]


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
    """One charge point. `doc` holds the persisted fields; the rest is runtime state."""

    id: str
    doc: dict[str, Any]
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

    def reported_int(self, key: str) -> int | None:
        """An integer configuration key as the charger last reported it, if known."""
        reported = self.doc.get("configuration", {}).get(key, {})
        try:
            return int(reported.get("value"))
        except (AttributeError, TypeError, ValueError):
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


class ChargerRegistry:
    """Every charger the CSMS has accepted, pended or rejected, by identity."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store
        self._table = store.table("chargers")
        self._chargers: dict[str, Charger] = {}
        # tinydb doc ids, so a save is a keyed update rather than a scan of every charger.
        self._doc_ids: dict[str, int] = {}
        for document in self._table.all():
            doc = dict(document)
            charger_id = doc.get("id")
            if isinstance(charger_id, str):
                self._chargers[charger_id] = Charger(charger_id, doc)
                self._doc_ids[charger_id] = document.doc_id

    def __iter__(self) -> Iterator[Charger]:
        return iter(self._chargers.values())

    def __len__(self) -> int:
        return len(self._chargers)

    def get(self, charger_id: str) -> Charger | None:
        return self._chargers.get(charger_id)

    def create(self, charger_id: str, registration: Registration, *, now: str) -> Charger:
        """Add a charger; the caller decides its registration (policy or operator)."""
        doc: dict[str, Any] = {
            "id": charger_id,
            "registration": str(registration),
            "bootAccepted": False,
            "firstSeen": now,
        }
        charger = self._chargers[charger_id] = Charger(charger_id, doc)
        self.save(charger)
        return charger

    def save(self, charger: Charger) -> None:
        """Mark the charger's document for the next flush."""
        doc_id = self._doc_ids.get(charger.id)
        if doc_id is None:
            self._doc_ids[charger.id] = self._table.insert(dict(charger.doc))
        else:
            self._table.update(dict(charger.doc), doc_ids=[doc_id])

    def update(self, charger: Charger, **fields: Any) -> bool:
        """Set document fields; save only when something changed. Returns whether it did."""
        doc = charger.doc
        changed = False
        for key, value in fields.items():
            if doc.get(key) != value:
                doc[key] = value
                changed = True
        if changed:
            self.save(charger)
        return changed

    def set_registration(self, charger: Charger, registration: Registration) -> None:
        # A new decision needs a new boot to take effect: the charger learns its
        # status only from a BootNotification.conf.
        if charger.registration is not registration:
            self.update(charger, registration=str(registration), bootAccepted=False)

    def flush(self) -> None:
        """Write pending changes now, blocking (start-up, shutdown)."""
        self._store.flush()

    async def persist(self) -> None:
        """Return once every change made before the call is on disk.

        The file is written off the event loop; concurrent callers share writes,
        so a whole site booting at once costs a few rewrites, not one per charger.
        """
        await self._store.flush_async()
