"""Who may connect as which charger: profiles, passwords and their changes, per charger.

The state lives in `<data_dir>/charger_security.json` (a tinydb document per charger,
`SecurityStore`): the stored profile and a pending upgrade, the key's hash and a pending
one, and a fingerprint of the configured password it was imported from. No secret is
stored in clear, logged, journalled or shown (`describe`).

- Start-up (`import_config`): `[chargers.<id>] security_profile` raises the stored
  profile (never lowers it); a `password` is hashed into the store, and replaces the
  stored key only when it differs from the one last imported (a key rotated since
  survives restarts with an unchanged file).
- The handshake (`admit`, the rules in `edge.security.profiles`); what the connection
  proved (a pending profile or key used) takes effect once its WebSocket is open
  (`connected`).
- ChangeConfiguration results (`change_accepted`, called by the pipeline's recorder in
  `edge.security.operations` wherever the call came from: the generic operator endpoint,
  the rotation, the cloud): SecurityProfile
  Accepted → a pending upgrade; AuthorizationKey Accepted → a pending key, hashed off the
  loop; the old key stays valid until the charger has connected with the new one
  (TC_073), then only the new one is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from edge.security import profiles
from edge.security.credentials import KeyHash, Verifier, key_bytes, parse_basic, password_key
from edge.security.profiles import Refusal
from edge.security.tls import PeerCertificate, expiry
from edge.store import DocumentStore
from edge.times import format_time

if TYPE_CHECKING:
    from edge.config import Config
    from edge.metrics import Metrics

__all__ = [
    "Admission",
    "ConnectionSecurity",
    "SecurityEventRecorder",
    "SecurityStore",
    "ServiceSite",
]

log = logging.getLogger("edge.security")

Json = dict[str, Any]


class ServiceSite(Protocol):
    """What of `edge.services.Services` this module uses (it cannot import it: Services
    holds a ConnectionSecurity)."""

    @property
    def config(self) -> Config: ...

    @property
    def metrics(self) -> Metrics: ...

    def record(self, charger_id: str | None, kind: str, data: dict[str, Any]) -> None: ...

    def now(self) -> datetime: ...

    def now_text(self) -> str: ...


# record_security_event(svc, charger_id, type, tech_info): `edge.security.events`'s, passed
# in (this module cannot import Services, which holds a ConnectionSecurity).
SecurityEventRecorder = Callable[[Any, "str | None", str, "str | None"], Any]


class SecurityStore:
    """One document per charger in its own small tinydb file."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self._table = store.table("chargers")
        self._docs: dict[str, Json] = {}
        self._doc_ids: dict[str, int] = {}
        for document in self._table.all():
            charger_id = document.get("id")
            if isinstance(charger_id, str):
                self._docs[charger_id] = dict(document)
                self._doc_ids[charger_id] = document.doc_id

    def peek(self, charger_id: str) -> Json:
        """The charger's document to read (an empty one, kept nowhere, for a charger
        never stored: refused identities must not fill memory)."""
        return self._docs.get(charger_id) or {"id": charger_id, "profile": 0}

    def get(self, charger_id: str) -> Json:
        """The charger's document to change (created for a charger never stored); `save`
        after changing it."""
        doc = self._docs.get(charger_id)
        if doc is None:
            doc = self._docs[charger_id] = {"id": charger_id, "profile": 0}
        return doc

    def known(self, charger_id: str) -> bool:
        return charger_id in self._doc_ids

    def save(self, charger_id: str) -> None:
        doc = dict(self._docs[charger_id])
        doc_id = self._doc_ids.get(charger_id)
        if doc_id is None:
            self._doc_ids[charger_id] = self._table.insert(doc)
        else:
            self._table.update(doc, doc_ids=[doc_id])

    def remove(self, charger_id: str) -> bool:
        """Forget the charger's document; whether there was one stored."""
        self._docs.pop(charger_id, None)
        doc_id = self._doc_ids.pop(charger_id, None)
        if doc_id is None:
            return False
        self._table.remove(doc_ids=[doc_id])
        return True

    async def persist(self) -> None:
        await self.store.flush_async()


@dataclass(frozen=True, slots=True)
class Admission:
    """A connection let in, at `profile`. What it proves (a pending profile used, a
    pending key used) takes effect once the WebSocket is open (`connected`): a handshake
    that fails after the check changes nothing."""

    profile: int
    upgrade_from: int | None = None
    """The charger's profile before this connection: it is at a pending, higher one."""
    new_key: KeyHash | None = None
    """The pending key this connection presented."""
    certificate: PeerCertificate | None = None
    """The client certificate it presented (verified by OpenSSL), at any profile."""


def _hash(doc: Json, key: str) -> KeyHash | None:
    value = doc.get(key)
    return KeyHash.from_json(value) if value is not None else None


class ConnectionSecurity:
    """The per-charger security state and the decisions on it; see the module docstring."""

    def __init__(
        self,
        services: ServiceSite,
        store: DocumentStore,
        *,
        record_event: SecurityEventRecorder,
        tls_available: Callable[[], bool] = lambda: False,
        client_ca_available: Callable[[], bool] = lambda: False,
    ) -> None:
        self.svc = services
        self._record_event = record_event
        self.store = SecurityStore(store)
        self.verifier = Verifier()
        self.tls_available = tls_available
        self.client_ca_available = client_ca_available
        # Keys the charger Accepted that are still being hashed (a reconnect waits for them).
        self._hashing: dict[str, asyncio.Future[None]] = {}
        # The profile each connected charger came in at (memory: changes on every connect),
        # and the client certificate it presented, if it did.
        self.connected_at: dict[str, Json] = {}
        self._peers: dict[str, PeerCertificate] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Set by the app when there is a wss listener: rebuild its TLS context (the
        # answer says whether it did, and why not), and describe the current one.
        self.reload_tls: Callable[[], Awaitable[Json]] | None = None
        self.describe_tls: Callable[[], Json] | None = None
        # Set by the app: whether a client certificate is revoked now (the listener's
        # CRLs, the site CA's register), for a connection that came in before that.
        self.revoked: Callable[[PeerCertificate], bool] = lambda peer: False

    @property
    def config(self) -> Config:
        return self.svc.config

    def close(self) -> None:
        self.verifier.close()

    def _event(self, charger_id: str | None, kind: str, tech_info: str | None) -> None:
        self._record_event(self.svc, charger_id, kind, tech_info)

    # --- the state -----------------------------------------------------------------------

    def profile(self, charger_id: str) -> int:
        """The profile the charger must connect at."""
        doc = self.store.peek(charger_id)
        settings = self.config.chargers.get(charger_id)
        configured = settings.security_profile if settings is not None else 0
        return profiles.effective_profile(
            int(doc.get("profile", 0)), configured, doc.get("key") is not None
        )

    def _set_profile(self, charger_id: str, profile: int, why: str) -> None:
        doc = self.store.get(charger_id)
        previous = int(doc.get("profile", 0))
        if profile <= previous:
            return
        doc["profile"] = profile
        doc["profileChangedAt"] = self.svc.now_text()
        doc["profileChange"] = why
        if doc.get("pendingProfile") is not None and doc["pendingProfile"] <= profile:
            doc["pendingProfile"] = None
            doc["pendingProfileSince"] = None
        self.store.save(charger_id)

    def _set_key(self, charger_id: str, key: KeyHash, source: str) -> None:
        doc = self.store.get(charger_id)
        doc["key"] = key.to_json()
        doc["keySetAt"] = self.svc.now_text()
        doc["keySource"] = source
        doc["pendingKey"] = None
        doc["pendingKeySince"] = None
        self.verifier.forget(charger_id)
        # A password means Basic auth from now on (profile 1 at least).
        self._set_profile(charger_id, max(1, int(doc.get("profile", 0))), source)
        self.store.save(charger_id)

    async def import_config(self) -> None:
        """Configured profiles and passwords into the store (start-up).

        One scrypt per configured password and start: whether it changed since it was
        imported. They run in the default executor's threads side by side (a site's
        worth takes seconds on a Pi), not in the connection checks' single thread.
        """
        for charger_id, settings in self.config.chargers.items():
            if settings.security_profile > int(self.store.peek(charger_id).get("profile", 0)):
                self._set_profile(charger_id, settings.security_profile, "configuration")

        def changed(charger_id: str, key: bytes) -> KeyHash | None:
            """The new hash of a configured password that changed (None: unchanged)."""
            fingerprint = _hash(self.store.peek(charger_id), "configKey")
            if fingerprint is not None and fingerprint.matches(key):
                return None  # unchanged since it was imported: a key rotated since stays
            return KeyHash.of(key)

        configured = [
            (charger_id, password_key(settings.password))
            for charger_id, settings in self.config.chargers.items()
            if settings.password is not None
        ]
        results = await asyncio.gather(
            *(asyncio.to_thread(changed, charger_id, key) for charger_id, key in configured)
        )
        for (charger_id, _), new in zip(configured, results, strict=True):
            if new is None:
                continue
            self._set_key(charger_id, new, "configuration")
            # The same hash is the fingerprint of what was imported: no weaker for being
            # kept twice, and it stays when a rotation replaces the key.
            self.store.get(charger_id)["configKey"] = new.to_json()
            self.store.save(charger_id)
            log.info("charger %s: password from the configuration stored (hashed)", charger_id)
        self.store.store.flush()

    async def forget(self, charger_id: str) -> None:
        """The charger left the registry (`DELETE /api/chargers/{id}`): its profile, its
        password and its last connection go, on disk before the return. A charger
        configured in `[chargers.*]` keeps its stored state: the configuration still
        names its profile and password, and it comes back at its next connection."""
        hashing = self._hashing.get(charger_id)
        if hashing is not None:
            # A key it accepted before it left is still being stored: it would come back.
            await asyncio.shield(hashing)
        self.connected_at.pop(charger_id, None)
        self._peers.pop(charger_id, None)
        self.verifier.forget(charger_id)
        if charger_id in self.config.chargers:
            return
        if self.store.remove(charger_id):
            await self.store.persist()

    async def set_password(self, charger_id: str, password: str) -> None:
        """The operator set the charger's password (`PUT /api/chargers/{id}`)."""
        new = await self.verifier.run(KeyHash.of, password_key(password), bounded=False)
        self._set_key(charger_id, new, "operator")
        await self.store.persist()
        self._event(charger_id, "PasswordSet", "set by the operator")

    async def settled(self, charger_id: str) -> None:
        """Return once a key the charger accepted is hashed and stored."""
        pending = self._hashing.get(charger_id)
        if pending is not None:
            await asyncio.shield(pending)
        await self.store.persist()

    # --- the handshake -------------------------------------------------------------------

    async def admit(
        self,
        charger_id: str,
        *,
        tls: bool,
        peer: PeerCertificate | None,
        authorization: str | None,
        serial_numbers: tuple[str | None, ...] = (),
    ) -> Admission | Refusal:
        """Whether a connection may be this charger, and at which profile.

        Raises:
            Busy: too many password checks are waiting.
        """
        stored = self.profile(charger_id)
        pending = self.store.peek(charger_id).get("pendingProfile")
        names = peer is not None and profiles.certificate_names_charger(
            peer.common_name,
            charger_id,
            serial_numbers,
            relaxed=self.config.security.relaxed_subject_checks,
        )
        level = profiles.connection_level(tls=tls, certificate_names_charger=names)
        found = profiles.candidates(stored, pending, level)
        if not found:
            return profiles.refusal_for(stored, level, tls=tls, has_certificate=peer is not None)
        checked: tuple[bool, KeyHash | None] | None = None
        for profile in found:
            new_key = None
            if profiles.needs_password(profile):
                if checked is None:
                    checked = await self._check_password(charger_id, authorization)
                ok, new_key = checked
                if not ok:
                    continue
            elif profile == 0 and authorization is not None and self._key_pending(charger_id):
                # A charger without a password took one (AuthorizationKey): its first
                # connection with it makes it profile 1; until then it needs none.
                ok, new_key = await self._check_password(charger_id, authorization)
                if ok and new_key is not None:
                    return Admission(1, upgrade_from=0, new_key=new_key)
            return Admission(
                profile, upgrade_from=stored if profile > stored else None, new_key=new_key
            )
        return Refusal("credentials", "missing or wrong HTTP Basic credentials")

    async def connected(
        self, charger_id: str, admission: Admission, tls_version: str | None
    ) -> None:
        """The WebSocket of an admitted connection is open: a pending profile or key it
        used becomes the only one from now on."""
        self.connected_at[charger_id] = {
            "profile": admission.profile,
            "transport": "wss" if tls_version is not None else "ws",
            "tls": tls_version,
            "at": self.svc.now_text(),
        }
        if admission.certificate is not None:
            self._peers[charger_id] = admission.certificate
        else:
            self._peers.pop(charger_id, None)
        doc = self.store.peek(charger_id)
        changed = False
        if admission.new_key is not None and _hash(doc, "pendingKey") == admission.new_key:
            self._set_key(
                charger_id, admission.new_key, doc.get("pendingKeySource") or "AuthorizationKey"
            )
            changed = True
            self._event(
                charger_id,
                "AuthorizationKeyConfirmed",
                "the charger connected with its new key; the old one is no longer valid",
            )
        if admission.upgrade_from is not None and admission.profile > self.profile(charger_id):
            self._set_profile(charger_id, admission.profile, "SecurityProfile")
            changed = True
            self._event(
                charger_id,
                "SecurityProfileUpgraded",
                f"from {admission.upgrade_from} to {admission.profile}; "
                f"profile {admission.upgrade_from} is refused from now on",
            )
        if changed:
            try:
                await self.store.persist()
            except OSError:  # written by the next periodic flush; the connection goes on
                log.exception("charger %s: writing its security state failed", charger_id)

    def _key_pending(self, charger_id: str) -> bool:
        return (
            charger_id in self._hashing or self.store.peek(charger_id).get("pendingKey") is not None
        )

    async def _check_password(
        self, charger_id: str, authorization: str | None
    ) -> tuple[bool, KeyHash | None]:
        """Whether the Basic credentials are right, and the pending key if it was that."""
        credentials = parse_basic(authorization)
        if credentials is None or credentials[0] != charger_id:
            return False, None
        hashing = self._hashing.get(charger_id)
        if hashing is not None:
            await asyncio.shield(hashing)
        doc = self.store.peek(charger_id)
        current, pending = _hash(doc, "key"), _hash(doc, "pendingKey")
        hashes = [h for h in (pending, current) if h is not None]
        matched = await self.verifier.find(charger_id, credentials[1], hashes)
        if matched is None:
            return False, None
        return True, matched if matched == pending else None

    # --- results of ChangeConfiguration --------------------------------------------------

    def change_accepted(self, charger_id: str, key: str, value: str) -> None:
        """The charger Accepted (or RebootRequired) ChangeConfiguration(key, value)."""
        folded = key.casefold()
        if folded == "securityprofile":
            try:
                target = int(value)
            except ValueError:
                return
            current = self.profile(charger_id)
            if target <= current:
                self._event(
                    charger_id,
                    "SecurityProfileNotLowered",
                    f"the charger accepted SecurityProfile {target}; it stays at {current}",
                )
                return
            doc = self.store.get(charger_id)
            doc["pendingProfile"] = target
            doc["pendingProfileSince"] = self.svc.now_text()
            self.store.save(charger_id)
            log.info(
                "charger %s: security profile %d pending (now %d) until it connects at it",
                charger_id,
                target,
                current,
            )
        elif folded == "authorizationkey":
            self._key_accepted(charger_id, key_bytes(value), "AuthorizationKey")

    def new_key_accepted(self, charger_id: str, hashed: KeyHash, source: str) -> None:
        """A key hashed before it was sent was Accepted: it is pending from now on (the
        caller persists)."""
        doc = self.store.get(charger_id)
        doc["pendingKey"] = hashed.to_json()
        doc["pendingKeySince"] = self.svc.now_text()
        doc["pendingKeySource"] = source
        self.store.save(charger_id)
        self._event(
            charger_id,
            "AuthorizationKeyChanged",
            f"{source}: the charger accepted a new key; the old one is valid until it uses it",
        )

    def _key_accepted(self, charger_id: str, key: bytes, source: str) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        previous = self._hashing.get(charger_id)
        self._hashing[charger_id] = done

        async def store() -> None:
            try:
                if previous is not None:
                    await asyncio.shield(previous)
                hashed = await self.verifier.run(KeyHash.of, key, bounded=False)
                self.new_key_accepted(charger_id, hashed, source)
                await self.store.persist()
            except Exception:
                log.exception("charger %s: storing its new key failed", charger_id)
            finally:
                done.set_result(None)
                if self._hashing.get(charger_id) is done:
                    del self._hashing[charger_id]

        self._tasks.add(task := loop.create_task(store()))
        task.add_done_callback(self._tasks.discard)

    # --- what the API shows --------------------------------------------------------------

    def describe(self, charger_id: str) -> Json:
        """The charger's security state, nothing secret."""
        doc = self.store.peek(charger_id)
        settings = self.config.chargers.get(charger_id)
        return {
            "profile": self.profile(charger_id),
            "configuredProfile": settings.security_profile if settings is not None else None,
            "pendingProfile": doc.get("pendingProfile"),
            "pendingProfileSince": doc.get("pendingProfileSince"),
            "profileChangedAt": doc.get("profileChangedAt"),
            "profileChange": doc.get("profileChange"),
            "password": doc.get("key") is not None,
            "passwordSetAt": doc.get("keySetAt"),
            "passwordSource": doc.get("keySource"),
            "newKeyPending": doc.get("pendingKey") is not None or charger_id in self._hashing,
            "newKeyAcceptedAt": doc.get("pendingKeySince"),
            "connectedAt": self.connection(charger_id),
        }

    def summary(self, charger_id: str) -> Json:
        """What the charger list and the live page show: `profile`, `pendingProfile`,
        `connectedAt` (as in `describe`)."""
        return {
            "profile": self.profile(charger_id),
            "pendingProfile": self.store.peek(charger_id).get("pendingProfile"),
            "connectedAt": self.connection(charger_id),
        }

    def connection(self, charger_id: str) -> Json | None:
        """The charger's current (or last) connection: `profile`, `transport` ("ws",
        "wss"), `tls` (its version), `at`, and `certificate`, the client certificate it
        presented (`serial` as the register spells it, `subject`, `notAfter`,
        `expiresInDays`, `expiringSoon`, `revoked`), or None."""
        connected = self.connected_at.get(charger_id)
        if connected is None:
            return None
        peer = self._peers.get(charger_id)
        certificate: Json | None = None
        if peer is not None:
            certificate = {
                "serial": format(peer.serial_number, "x"),  # the register's spelling
                "subject": peer.subject,
                "notAfter": None,
                "revoked": self.revoked(peer),
            }
            if peer.not_after is not None:
                certificate["notAfter"] = format_time(peer.not_after)
                certificate.update(expiry(peer.not_after, self.svc.now()))
        return {**connected, "certificate": certificate}
