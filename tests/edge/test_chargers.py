"""The charger registry."""

from __future__ import annotations

from pathlib import Path

from edge.chargers import ChargerRegistry, Registration
from edge.store import DocumentStore


def test_registration_and_boot_acceptance(tmp_path: Path) -> None:
    """A charger is accepted only when registered Accepted and its boot was answered so."""
    registry = ChargerRegistry(DocumentStore(tmp_path / "c.json"))
    charger = registry.create("CP1", Registration.PENDING, now="2026-01-01T00:00:00.000Z")
    assert not charger.accepted
    registry.set_registration(charger, Registration.ACCEPTED)
    assert not charger.accepted  # needs a BootNotification answered Accepted
    registry.update(charger, bootAccepted=True)
    assert charger.accepted
    registry.set_registration(charger, Registration.REJECTED)
    assert not charger.accepted and not charger.boot_accepted


def test_documents_survive_reopen(tmp_path: Path) -> None:
    """Flushed charger documents are read back, with their registration and boot data."""
    store = DocumentStore(tmp_path / "c.json")
    registry = ChargerRegistry(store)
    charger = registry.create("CP 1", Registration.ACCEPTED, now="2026-01-01T00:00:00.000Z")
    assert registry.update(charger, vendor="V", model="M", bootAccepted=True)
    assert not registry.update(charger, vendor="V")  # unchanged: nothing to save
    registry.flush()
    again = ChargerRegistry(DocumentStore(tmp_path / "c.json")).get("CP 1")
    assert again is not None
    assert again.accepted and again.to_json()["vendor"] == "V"
    assert again.to_json()["connected"] is False


def test_connector_json_shape(tmp_path: Path) -> None:
    """Connectors are listed in order with the fields the API promises."""
    registry = ChargerRegistry(DocumentStore(tmp_path / "c.json"))
    charger = registry.create("CP1", Registration.ACCEPTED, now="t")
    charger.connector(2).status = "Charging"
    charger.connector(1)
    connectors = charger.to_json()["connectors"]
    assert [c["connectorId"] for c in connectors] == [1, 2]
    assert set(connectors[0]) >= {"connectorId", "status", "errorCode", "transactionId"}
