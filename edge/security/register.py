"""The register of the certificates the site CA issued to chargers (`certificates.json`).

One tinydb document per certificate, keyed by its serial number (lowercase hex):

    {"serial", "chargerId", "subject", "issuer", "notBefore", "notAfter",
     "fingerprint" (SHA-256 of the DER, hex), "key" ("RSA 2048", "EC 256"),
     "status", "issuedAt", "statusAt", and as they apply: "supersededBy",
     "revokedAt", "reason", "delivery" (why CertificateSigned did not get an answer)}

Statuses: `issued` (signed, sent or being sent), `installed` (the charger answered
CertificateSigned Accepted), `rejected` (it answered Rejected), `superseded` (a newer
certificate of the same charger was installed), `revoked` (listed in the CRL).
Revocation is final: no other status replaces it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from tinydb import Query

from edge.store import DocumentStore
from edge.times import format_time, parse_time

__all__ = ["STATUSES", "CertificateRegister", "expiring"]

Json = dict[str, Any]

STATUSES = ("issued", "installed", "rejected", "superseded", "revoked")
# Certificates a charger may still be using: the ones expiry warnings are about.
LIVE = frozenset({"issued", "installed"})
EXPIRY_WARNING = timedelta(days=30)


def expiring(entry: Json, now: datetime, within: timedelta = EXPIRY_WARNING) -> bool:
    """Whether a live certificate ends within `within` of `now` (or has ended)."""
    return entry.get("status") in LIVE and parse_time(entry["notAfter"]) - now <= within


class CertificateRegister:
    """The issued certificates, in a `DocumentStore` the app flushes with the others."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self._table = store.table("issued")

    def __len__(self) -> int:
        return len(self._table)

    def __iter__(self) -> Iterator[Json]:
        return (dict(doc) for doc in self._table.all())

    def get(self, serial: str) -> Json | None:
        doc = self._table.get(Query().serial == serial)
        return dict(doc) if isinstance(doc, dict) else None

    def add(self, entry: Json) -> None:
        self._table.upsert(entry, Query().serial == entry["serial"])

    def remove(self, serial: str) -> None:
        self._table.remove(Query().serial == serial)

    def entries(self, *, charger_id: str | None = None, status: str | None = None) -> list[Json]:
        """Matching certificates, newest first."""
        found = [
            e
            for e in self
            if (charger_id is None or e.get("chargerId") == charger_id)
            and (status is None or e.get("status") == status)
        ]
        return sorted(found, key=lambda e: e.get("issuedAt", ""), reverse=True)

    def set_status(self, serial: str, status: str, at: datetime, **fields: Any) -> Json | None:
        """Change one certificate's status (never a revoked one's); the entry, or None."""
        entry = self.get(serial)
        if entry is None:
            return None
        if entry["status"] == "revoked" and status != "revoked":
            return entry
        changes = {"status": status, "statusAt": format_time(at), **fields}
        self._table.update(changes, Query().serial == serial)
        return {**entry, **changes}

    def update(self, serial: str, **fields: Any) -> None:
        self._table.update(fields, Query().serial == serial)

    def supersede(self, charger_id: str, newer: str, at: datetime) -> list[str]:
        """Mark the charger's other live certificates superseded by `newer`."""
        older = [
            e["serial"]
            for e in self.entries(charger_id=charger_id)
            if e["serial"] != newer and e["status"] in LIVE
        ]
        for serial in older:
            self.set_status(serial, "superseded", at, supersededBy=newer)
        return older

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for entry in self:
            counts[entry.get("status", "issued")] = counts.get(entry.get("status", ""), 0) + 1
        return counts
