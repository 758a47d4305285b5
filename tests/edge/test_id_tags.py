"""The authorization list and IdTagInfo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.id_tags import AuthorizationStatus, IdTag, IdTagList, id_tag_info
from edge.store import DocumentStore

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_unknown_tag_is_invalid() -> None:
    """A tag the CSMS does not know is Invalid (OCPP 1.6 §7.2)."""
    assert id_tag_info(None, NOW) == {"status": "Invalid"}


def test_expiry_date_turns_accepted_into_expired() -> None:
    """An Accepted tag past its expiry date is answered Expired, with the date."""
    tag = IdTag(id_tag="A", status=AuthorizationStatus.ACCEPTED, expiry_date=NOW - timedelta(1))
    info = id_tag_info(tag, NOW)
    assert info["status"] == "Expired"
    assert info["expiryDate"] == "2025-12-31T12:00:00.000Z"
    later = IdTag(id_tag="A", status=AuthorizationStatus.ACCEPTED, expiry_date=NOW + timedelta(1))
    assert id_tag_info(later, NOW)["status"] == "Accepted"


def test_parent_id_tag_is_returned() -> None:
    """The group (parentIdTag) is returned so chargers can match reservations and stops."""
    tag = IdTag(id_tag="A", status=AuthorizationStatus.BLOCKED, parent_id_tag="FLEET")
    assert id_tag_info(tag, NOW) == {"status": "Blocked", "parentIdTag": "FLEET"}


def test_list_is_case_insensitive_and_persistent(tmp_path: Path) -> None:
    """Tags are found regardless of case and survive reopening the store."""
    store = DocumentStore(tmp_path / "tags.json")
    tags = IdTagList(store)
    tags.put(IdTag(id_tag="AbC123", status=AuthorizationStatus.ACCEPTED, parent_id_tag="P"))
    tags.put(IdTag(id_tag="abc123", status=AuthorizationStatus.BLOCKED))  # replaces
    assert len(tags) == 1
    store.close()
    reopened = IdTagList(DocumentStore(tmp_path / "tags.json"))
    tag = reopened.get("ABC123")
    assert tag is not None and tag.status is AuthorizationStatus.BLOCKED
    assert reopened.delete("abc123") and reopened.get("abc123") is None
    assert not reopened.delete("abc123")
