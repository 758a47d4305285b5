"""The authorization list: id tags with status, expiry date and parent (group) tag.

IdToken is a CiString20: compared case-insensitively (OCPP 1.6 §3.9, errata
3.58), stored with the spelling the operator gave. Lookups are served from
memory; the list is persisted in its own small tinydb file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from tinydb import Query

from edge.store import DocumentStore
from edge.times import format_time, parse_time

__all__ = ["AuthorizationStatus", "CloudVerdicts", "IdTag", "IdTagList", "id_tag_info"]

MAX_ID_TAG_LENGTH = 20


class AuthorizationStatus(StrEnum):
    """AuthorizationStatus of IdTagInfo (OCPP 1.6 §7.2)."""

    ACCEPTED = "Accepted"
    """Identifier is allowed for charging."""
    BLOCKED = "Blocked"
    """Identifier has been blocked. Not allowed for charging."""
    EXPIRED = "Expired"
    """Identifier has expired. Not allowed for charging."""
    INVALID = "Invalid"
    """Identifier is unknown. Not allowed for charging."""
    CONCURRENT_TX = "ConcurrentTx"
    """Identifier is already involved in another transaction and multiple transactions are not
    allowed. (Only relevant for a StartTransaction.req.)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class IdTag:
    id_tag: str
    status: AuthorizationStatus
    expiry_date: datetime | None = None
    parent_id_tag: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "idTag": self.id_tag,
            "status": str(self.status),
            "expiryDate": format_time(self.expiry_date) if self.expiry_date else None,
            "parentIdTag": self.parent_id_tag,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IdTag:
        expiry = data.get("expiryDate")
        return cls(
            id_tag=data["idTag"],
            status=AuthorizationStatus(data["status"]),
            expiry_date=parse_time(expiry) if expiry else None,
            parent_id_tag=data.get("parentIdTag"),
        )


def id_tag_info(entry: IdTag | None, now: datetime) -> dict[str, Any]:
    """The IdTagInfo for a tag as of `now`: unknown → Invalid, past expiry → Expired.

    `parentIdTag` is returned whenever the tag has one, so a charger can match
    group members against a reservation (TC_053) and let them stop each other's
    transactions (OCPP 1.6 §3.10).
    """
    if entry is None:
        return {"status": str(AuthorizationStatus.INVALID)}
    status = entry.status
    if status is AuthorizationStatus.ACCEPTED and entry.expiry_date and entry.expiry_date <= now:
        status = AuthorizationStatus.EXPIRED
    info: dict[str, Any] = {"status": str(status)}
    if entry.expiry_date is not None:
        info["expiryDate"] = format_time(entry.expiry_date)
    if entry.parent_id_tag:
        info["parentIdTag"] = entry.parent_id_tag
    return info


class IdTagList:
    """The id tags the CSMS authorizes, keyed case-insensitively."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store
        self._table = store.table("id_tags")
        self._tags: dict[str, IdTag] = {}
        for doc in self._table.all():
            try:
                tag = IdTag.from_json(dict(doc))
            except (KeyError, ValueError):
                continue
            self._tags[tag.id_tag.casefold()] = tag

    def __iter__(self) -> Iterator[IdTag]:
        return iter(sorted(self._tags.values(), key=lambda t: t.id_tag.casefold()))

    def __len__(self) -> int:
        return len(self._tags)

    def get(self, id_tag: str) -> IdTag | None:
        return self._tags.get(id_tag.casefold())

    def put(self, tag: IdTag) -> None:
        """Add or replace a tag; `persist()` makes it durable."""
        key = tag.id_tag.casefold()
        old = self._tags.get(key)
        if old is not None:
            self._table.remove(Query().key == key)
        self._tags[key] = tag
        self._table.insert({"key": key, **tag.to_json()})

    def delete(self, id_tag: str) -> bool:
        key = id_tag.casefold()
        if self._tags.pop(key, None) is None:
            return False
        self._table.remove(Query().key == key)
        return True

    async def persist(self) -> None:
        """Return once every change made before the call is on disk (written off the loop)."""
        await self._store.flush_async()


class CloudVerdicts:
    """The cloud's recent verdicts on id tags (its Authorize and StartTransaction answers),
    for when the cloud cannot answer in time (DESIGN §7). Bounded: the `MAX_ENTRIES` most
    recent, each trusted for `MAX_AGE` at most (its own expiryDate first); persisted with
    the id tags, written in the background (a verdict lost in a crash is asked again)."""

    MAX_ENTRIES = 2000
    MAX_AGE = timedelta(days=7)

    def __init__(self, store: DocumentStore) -> None:
        self._table = store.table("cloud_verdicts")
        self._verdicts: dict[str, tuple[dict[str, Any], datetime]] = {}
        for doc in self._table.all():
            with contextlib.suppress(KeyError, ValueError, TypeError):
                self._verdicts[str(doc["key"])] = (dict(doc["idTagInfo"]), parse_time(doc["at"]))

    def __len__(self) -> int:
        return len(self._verdicts)

    def put(self, id_tag: str, info: dict[str, Any], now: datetime) -> None:
        key = id_tag.casefold()
        if key in self._verdicts:
            self._table.remove(Query().key == key)
        self._verdicts[key] = (dict(info), now)
        self._table.insert({"key": key, "idTagInfo": dict(info), "at": format_time(now)})
        if len(self._verdicts) > self.MAX_ENTRIES:
            oldest = min(self._verdicts, key=lambda k: self._verdicts[k][1])
            del self._verdicts[oldest]
            self._table.remove(Query().key == oldest)

    def get(self, id_tag: str, now: datetime) -> dict[str, Any] | None:
        """The cloud's last verdict as of `now` (an Accepted one past its expiryDate is
        Expired); None when there is none younger than MAX_AGE."""
        found = self._verdicts.get(id_tag.casefold())
        if found is None or now - found[1] > self.MAX_AGE:
            return None
        info = dict(found[0])
        expiry = info.get("expiryDate")
        if info.get("status") == AuthorizationStatus.ACCEPTED and isinstance(expiry, str):
            with contextlib.suppress(ValueError):
                if parse_time(expiry) <= now:
                    info["status"] = str(AuthorizationStatus.EXPIRED)
        return info
