"""The site CA at work in the service: signing chargers' CSRs, the register, revocation.

`CertificateAuthority` is what the SignCertificate handler, the CertificateSigned
recorder (`edge.features.certificates`) and the operator API (`edge.web.ca`) share; the
app makes one and hangs it on `Services.certificates`.

The CA is loaded at start when it exists and created on the first SignCertificate that
needs it (DESIGN §8: no configuration needed). Key generation and file writes run in a
worker thread; a lock keeps two chargers asking at once from making two CAs.

Revocations are kept in the CRL (`crl.pem`) first and in the register second: the CRL is
what the TLS listener enforces, and `edge-csms ca revoke` may write it while the service
runs; the service then reads the new revocations from it (`sync_revocations`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from edge.chargers import Charger
from edge.config import Config
from edge.metrics import Metrics
from edge.security import ca as site_ca
from edge.security.csr import check_csr
from edge.security.register import CertificateRegister, expiring
from edge.store import DocumentStore
from edge.times import format_time, parse_time

__all__ = ["CertificateAuthority", "UnknownSerial", "normalise_serial"]

log = logging.getLogger(__name__)

Json = dict[str, Any]
MAX_CHAIN_CHARS = 10_000  # CertificateSigned.req certificateChain maxLength
REFRESH_INTERVAL = 3600.0  # s between checks of the CRL's age and of outside revocations

# (charger, PEM chain, serial): sends CertificateSigned after the answer; set by
# `edge.features.certificates.subscribe`.
Deliver = Callable[[Charger, str, str], None]


class UnknownSerial(LookupError):
    """No certificate with that serial number in the register."""


def normalise_serial(text: str) -> str:
    """A serial number as typed (hex, with or without `0x`, colons, upper case) in the
    register's spelling.

    Raises:
        ValueError: not a hexadecimal number.
    """
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "")
    return site_ca.serial_hex(int(cleaned, 16))


def key_label(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    return f"EC {key.curve.key_size}"


class CertificateAuthority:
    """See the module docstring."""

    def __init__(
        self,
        config: Config,
        store: DocumentStore,
        *,
        clock: Callable[[], datetime],
        record: Callable[[str | None, str, Json], None],
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.settings = config.security
        self.files = site_ca.CaFiles.of(config.storage.data_dir)
        self.register = CertificateRegister(store)
        self.clock = clock
        self._record = record
        self._ca: site_ca.SiteCa | None = None
        self._lock = asyncio.Lock()
        self._crl_seen: float | None = None
        self.deliver: Deliver | None = None
        # Called after every CRL rewrite: the TLS listener reloads it (CONN's hook,
        # `services.security_changed()`); until that is wired, it reads the new CRL on
        # its own reload (SIGHUP, a restart).
        self.crl_changed: Callable[[], None] = lambda: log.info(
            "CRL rewritten: %s (the TLS listener reads it on its next reload)", self.files.crl
        )
        self._metrics = metrics
        if metrics is not None:
            self._register_metrics(metrics)

    # --- the CA -------------------------------------------------------------------------

    @property
    def ca(self) -> site_ca.SiteCa | None:
        """The CA if loaded (it may exist on disk and not be loaded yet)."""
        return self._ca

    def _open(self, create: bool) -> site_ca.SiteCa | None:
        s = self.settings
        now = self.clock()
        ca = site_ca.load_ca(
            self.files, now, certificate=s.ca_certificate, private_key=s.ca_private_key
        )
        if ca is None and create:
            log.info("creating the site CA in %s (RSA %d)", self.files.directory, s.ca_key_size)
            ca = site_ca.create_ca(
                self.files,
                now,
                site_name=s.site_name,
                organization=s.cpo_name,
                key_size=s.ca_key_size,
            )
        return ca

    def load(self) -> site_ca.SiteCa | None:
        """Load the CA at start if it exists (never creates one); a broken CA is logged,
        and SignCertificate is then answered Rejected until it is fixed."""
        try:
            self._ca = self._open(create=False)
        except site_ca.CaError as err:
            log.error("site CA unusable: %s", err)
        except OSError as err:
            log.error("site CA unreadable: %s", err)
        if self._ca is not None:
            self._note_crl()
        return self._ca

    async def authority(self) -> site_ca.SiteCa:
        """The CA, created on first use.

        Raises:
            CaError, OSError: it cannot be loaded or created.
        """
        if self._ca is not None:
            return self._ca
        async with self._lock:
            if self._ca is None:
                existed = self.files.cert.exists() or self.settings.ca_certificate is not None
                self._ca = await asyncio.to_thread(self._open, True)
                self._note_crl()
                if not existed:
                    self._record(None, "SiteCaCreated", self.describe_ca())
            assert self._ca is not None
            return self._ca

    def describe_ca(self, ca: site_ca.SiteCa | None = None) -> Json:
        ca = ca or self._ca
        if ca is None:
            return {"exists": False}
        cert = ca.certificate
        return {
            "exists": True,
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "serial": site_ca.serial_hex(cert.serial_number),
            "notBefore": format_time(cert.not_valid_before_utc),
            "notAfter": format_time(cert.not_valid_after_utc),
            "fingerprint": site_ca.fingerprint(cert),
            "expiresInDays": int(
                (cert.not_valid_after_utc - self.clock()).total_seconds() // 86400
            ),
            "chainLength": len(ca.chain),
            "operatorCa": self.settings.ca_certificate is not None or len(ca.chain) > 1,
        }

    # --- SignCertificate ----------------------------------------------------------------

    async def sign(self, charger: Charger, csr: str) -> str:
        """Serve a charger's SignCertificate: "Accepted" once a certificate is signed,
        registered and handed to `deliver` (sent after this answer), else "Rejected"."""
        if self.deliver is None:
            return self._refuse(charger, ["no certificate delivery is wired"])
        serials = [
            s for s in (charger.doc.get("serialNumber"), charger.doc.get("chargeBoxSerialNumber"))
            if isinstance(s, str)
        ]  # fmt: skip
        verdict = check_csr(
            csr,
            identity=charger.id,
            serial_numbers=serials,
            cpo_name=self.settings.cpo_name,
            relaxed=self.settings.relaxed_subject_checks,
        )
        if not verdict.ok:
            return self._refuse(charger, verdict.refusals)
        for why in verdict.relaxed:
            log.info("charger %s: CSR accepted with relaxed subject checks: %s", charger.id, why)
        try:
            ca = await self.authority()
        except (site_ca.CaError, OSError) as err:
            log.error("charger %s: cannot sign, the site CA is unusable: %s", charger.id, err)
            return self._refuse(charger, [f"site CA unusable: {err}"])
        assert verdict.public_key is not None and verdict.subject is not None
        now = self.clock()
        cert = site_ca.issue_client_certificate(
            ca, verdict.public_key, verdict.subject, now, days=self.settings.certificate_days
        )
        chain = site_ca.cert_pem(cert) + ca.chain_pem()
        if len(chain) > MAX_CHAIN_CHARS:
            return self._refuse(charger, [f"the chain has {len(chain)} characters, over 10000"])
        serial = site_ca.serial_hex(cert.serial_number)
        entry = {
            "serial": serial,
            "chargerId": charger.id,
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "notBefore": format_time(cert.not_valid_before_utc),
            "notAfter": format_time(cert.not_valid_after_utc),
            "fingerprint": site_ca.fingerprint(cert),
            "key": key_label(verdict.public_key),
            "status": "issued",
            "issuedAt": format_time(now),
            "statusAt": format_time(now),
        }
        self.register.add(entry)
        # On disk before the charger hears Accepted: a restart must know what it issued.
        try:
            await self.register.store.flush_async()
        except OSError as err:
            self.register.remove(serial)
            log.error("charger %s: the register cannot be written: %s", charger.id, err)
            return self._refuse(charger, [f"the register cannot be written: {err}"])
        self._record(charger.id, "CertificateIssued", {k: entry[k] for k in
                     ("serial", "subject", "notAfter", "fingerprint")})  # fmt: skip
        log.info("charger %s: issued certificate %s (%s) until %s", charger.id, serial,
                 entry["subject"], entry["notAfter"])  # fmt: skip
        self._count("accepted")
        # The last step, with no await after it: the CALLRESULT is queued before the
        # delivery task can run, so CertificateSigned follows the answer on the wire.
        self.deliver(charger, chain, serial)
        return "Accepted"

    def _refuse(self, charger: Charger, reasons: list[str]) -> str:
        log.warning("charger %s: SignCertificate rejected: %s", charger.id, "; ".join(reasons))
        self._record(charger.id, "SignCertificate", {"status": "Rejected", "reasons": reasons})
        self._count("rejected")
        return "Rejected"

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.inc("edge_ca_sign_requests_total", outcome=outcome)

    # --- CertificateSigned answers ------------------------------------------------------

    def chain_answered(self, charger_id: str, chain: str, status: str) -> Json | None:
        """Record a charger's answer to CertificateSigned (ours, or an operator's carrying
        a certificate of ours): installed (older ones superseded) or rejected."""
        try:
            leaf = x509.load_pem_x509_certificates(chain.encode())[0]
        except (ValueError, IndexError):
            return None
        serial = site_ca.serial_hex(leaf.serial_number)
        entry = self.register.get(serial)
        if entry is None or entry["chargerId"] != charger_id:
            return None
        now = self.clock()
        if status == "Accepted":
            updated = self.register.set_status(serial, "installed", now)
            older = self.register.supersede(charger_id, serial, now)
            self._record(charger_id, "CertificateInstalled", {"serial": serial,
                         "superseded": older})  # fmt: skip
            log.info("charger %s installed certificate %s", charger_id, serial)
        else:
            updated = self.register.set_status(serial, "rejected", now)
            self._record(charger_id, "CertificateRefused", {"serial": serial, "status": status})
            log.warning("charger %s refused certificate %s (%s)", charger_id, serial, status)
        return updated

    def delivery_failed(self, serial: str, why: str) -> None:
        self.register.update(serial, delivery=why)

    # --- revocation ---------------------------------------------------------------------

    async def revoke(self, serial_text: str, reason: str | None = None) -> Json:
        """Revoke a registered certificate: into the CRL (rewritten atomically), then the
        register; the TLS side is told (`crl_changed`).

        Raises:
            ValueError: `serial_text` is not a hex serial number.
            UnknownSerial: the register has no such certificate.
            CaError, OSError: no usable CA, or the CRL cannot be written.
        """
        serial = normalise_serial(serial_text)
        entry = self.register.get(serial)
        if entry is None:
            raise UnknownSerial(serial)
        ca = await self.authority()
        now = self.clock()
        async with self._lock:
            revoked = site_ca.revoked_serials(site_ca.read_crl(ca))
            if int(serial, 16) not in revoked:
                revoked[int(serial, 16)] = now
                await asyncio.to_thread(site_ca.write_crl, ca, revoked, now)
                self._note_crl()
        fields: Json = {"revokedAt": format_time(revoked[int(serial, 16)])}
        if reason:
            fields["reason"] = reason[:200]
        updated = self.register.set_status(serial, "revoked", now, **fields) or entry
        await self.register.store.flush_async()
        self._record(entry["chargerId"], "CertificateRevoked", {"serial": serial, **fields})
        log.warning("certificate %s of charger %s revoked", serial, entry["chargerId"])
        self.crl_changed()
        return updated

    def revoked(self, issuer: bytes, serial: int) -> bool:
        """Whether the register lists this certificate of the site CA (`issuer`: its
        subject, DER) as revoked: true from the moment `revoke` answers, before the TLS
        listener has read the new CRL."""
        ca = self._ca
        if ca is None or ca.certificate.subject.public_bytes() != issuer:
            return False
        entry = self.register.get(site_ca.serial_hex(serial))
        return entry is not None and entry["status"] == "revoked"

    def _note_crl(self) -> None:
        try:
            self._crl_seen = self.files.crl.stat().st_mtime
        except OSError:
            self._crl_seen = None

    def sync_revocations(self) -> int:
        """Take revocations written to the CRL by `edge-csms ca revoke` while the service
        ran into the register; how many were new."""
        ca = self._ca
        if ca is None:
            return 0
        try:
            mtime = self.files.crl.stat().st_mtime
        except OSError:
            return 0
        if mtime == self._crl_seen:
            return 0
        self._crl_seen = mtime
        changed = 0
        for serial, at in site_ca.revoked_serials(site_ca.read_crl(ca)).items():
            entry = self.register.get(site_ca.serial_hex(serial))
            if entry is not None and entry["status"] != "revoked":
                self.register.set_status(
                    entry["serial"], "revoked", self.clock(), revokedAt=format_time(at)
                )
                changed += 1
        if changed:
            self.crl_changed()
        return changed

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the CRL fresh (a TLS stack refuses all clients past its next_update) and
        follow revocations made from the command line."""
        while True:
            try:
                await asyncio.wait_for(stop.wait(), REFRESH_INTERVAL)
                return
            except TimeoutError:
                pass
            try:
                await self.refresh()
            except Exception:
                log.exception("site CA: CRL refresh failed")

    async def refresh(self) -> bool:
        """Rewrite the CRL if past half its life; whether it was rewritten."""
        ca = self._ca
        if ca is None:
            return False
        self.sync_revocations()
        now = self.clock()
        async with self._lock:
            crl = site_ca.read_crl(ca)
            if not site_ca.crl_needs_refresh(crl, now):
                return False
            await asyncio.to_thread(site_ca.write_crl, ca, site_ca.revoked_serials(crl), now)
            self._note_crl()
        self.crl_changed()
        return True

    # --- views --------------------------------------------------------------------------

    def entry_json(self, entry: Json, now: datetime | None = None) -> Json:
        now = now or self.clock()
        left = parse_time(entry["notAfter"]) - now
        return {
            **entry,
            "expiresInDays": int(left.total_seconds() // 86400),
            "expiringSoon": expiring(entry, now),
        }

    def entries_json(self, **filters: Any) -> list[Json]:
        self.sync_revocations()
        now = self.clock()
        return [self.entry_json(e, now) for e in self.register.entries(**filters)]

    # --- metrics ------------------------------------------------------------------------

    def _register_metrics(self, m: Metrics) -> None:
        m.describe_counter("edge_ca_sign_requests_total", "SignCertificate requests by answer")
        m.gauge(
            "edge_ca_certificates",
            "Charger certificates in the site CA's register, by status",
            lambda: [((("status", s),), float(n)) for s, n in self.register.counts().items()],
        )
        m.gauge(
            "edge_ca_certificates_expiring",
            "Charger certificates in use that expire within 30 days (or have expired)",
            lambda: [((), float(sum(expiring(e, self.clock()) for e in self.register)))],
        )
