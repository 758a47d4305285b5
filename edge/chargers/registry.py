"""The chargers this CSMS knows, by identity, persisted as one tinydb document each.

Reads never touch the disk; a change marks the document dirty and the store's
periodic flush writes it, so a reconnect storm of a whole site costs a few file
rewrites. Changes an operator makes are flushed before the API answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Unpack, cast

from edge.chargers.document import BootFields, ChargerDoc
from edge.chargers.model import Charger, Registration
from edge.store import DocumentStore

__all__ = ["ChargerRegistry"]

Json = dict[str, Any]


class ChargerRegistry:
    """Every charger the CSMS has accepted, pended or rejected, by identity."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store
        self._table = store.table("chargers")
        self._chargers: dict[str, Charger] = {}
        # tinydb doc ids, so a save is a keyed update rather than a scan of every charger.
        self._doc_ids: dict[str, int] = {}
        for document in self._table.all():
            doc = cast(ChargerDoc, dict(document))
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
        doc: ChargerDoc = {
            "id": charger_id,
            "registration": str(registration),
            "bootAccepted": False,
            "firstSeen": now,
        }
        charger = self._chargers[charger_id] = Charger(charger_id, doc)
        self.save(charger)
        return charger

    def remove(self, charger_id: str) -> Charger | None:
        """Forget a charger (its document goes with the next flush); the removed one, or
        None if there was none. The caller checks it is neither connected nor charging."""
        charger = self._chargers.pop(charger_id, None)
        doc_id = self._doc_ids.pop(charger_id, None)
        if doc_id is not None:
            self._table.remove(doc_ids=[doc_id])
        return charger

    def save(self, charger: Charger) -> None:
        """Mark the charger's document for the next flush."""
        doc_id = self._doc_ids.get(charger.id)
        if doc_id is None:
            self._doc_ids[charger.id] = self._table.insert(dict(charger.doc))
        else:
            self._table.update(dict(charger.doc), doc_ids=[doc_id])

    def update(self, charger: Charger, **fields: Unpack[ChargerDoc]) -> bool:
        """Set document fields; save only when something changed. Returns whether it did.

        Only the owner of a field writes it (`edge.chargers.document.FIELD_OWNERS`).
        """
        doc = cast(dict[str, Any], charger.doc)
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

    def record_boot(self, charger: Charger, *, accepted: bool, boot: Json, now: str) -> bool:
        """A BootNotification answered (`accepted` or not) with its fields (`BOOT_FIELDS`);
        returns whether the document changed and must be on disk before the answer.

        `lastBoot` alone is not worth a write: a reboot that changes nothing else is
        kept in memory and written with the next change or at shutdown.
        """
        changed = self.update(charger, bootAccepted=accepted, **cast(BootFields, boot))
        charger.doc["lastBoot"] = now
        return changed

    def note_disconnected(self, charger: Charger) -> None:
        """Keep when the charger was last heard of (written with the next flush)."""
        last_seen = charger.last_seen_text()
        if last_seen is not None:
            charger.doc["lastSeen"] = last_seen

    def save_last_seen(self) -> None:
        """Mark every charger's last frame time for writing (at shutdown)."""
        for charger in self:
            last_seen = charger.last_seen_text() if charger.last_seen is not None else None
            if last_seen is not None:
                self.update(charger, lastSeen=last_seen)

    def flush(self) -> None:
        """Write pending changes now, blocking (start-up, shutdown)."""
        self._store.flush()

    async def persist(self) -> None:
        """Return once every change made before the call is on disk.

        The file is written off the event loop; concurrent callers share writes,
        so a whole site booting at once costs a few rewrites, not one per charger.
        """
        await self._store.flush_async()
