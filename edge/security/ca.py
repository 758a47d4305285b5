"""The site CA: its files, and the certificates and revocation lists it signs.

Files, in `<data_dir>/ca/` (mode 0700):

- `ca.pem`: the issuing CA's certificate, then its own issuers if it is an operator's
  intermediate (what `[ocpp.tls] client_ca` defaults to, and the tail of every chain
  sent in CertificateSigned);
- `ca.key`: its private key, PKCS#8 PEM, mode 0600 (unencrypted: the service signs
  unattended). Absent when the key stays where `[security] ca_private_key` points;
- `crl.pem`: the revocation list of the issuing CA, always present once the CA exists,
  rewritten whole on every revocation and before it runs out (`next_update`).

Every file is replaced atomically (`edge.store.atomic`): a crash leaves the old
version or the new one. Signatures are SHA256withRSA with PKCS#1 v1.5 padding (not PSS:
OCTT and many chargers refuse RSA-PSS), so the CA key must be RSA.

Pure functions take the time (`now`); only the `*_files` functions touch the disk.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge.store.atomic import write_atomic

__all__ = [
    "CA_DAYS",
    "CRL_DAYS",
    "CaError",
    "CaFiles",
    "SiteCa",
    "build_crl",
    "cert_pem",
    "create_ca",
    "fingerprint",
    "import_ca",
    "issue_client_certificate",
    "issue_server_certificate",
    "key_pem",
    "load_ca",
    "read_crl",
    "serial_hex",
    "validate_ca",
    "write_crl",
]

log = logging.getLogger(__name__)

CA_DAYS = 20 * 365 + 5  # a site root outlives the chargers it certifies
CRL_DAYS = 30  # a CRL's next_update; rewritten when half of it is gone
MIN_RSA_BITS = 2048
# Chargers and servers may run a little behind: certificates start this much earlier.
BACKDATE = timedelta(minutes=10)

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class CaError(Exception):
    """The CA cannot be created, imported or used; the message says why, for an operator."""


@dataclass(frozen=True, slots=True)
class CaFiles:
    """Where the site CA's files are (see the module docstring)."""

    directory: Path

    @classmethod
    def of(cls, data_dir: Path) -> CaFiles:
        return cls(data_dir / "ca")

    @property
    def cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def crl(self) -> Path:
        return self.directory / "crl.pem"

    def ensure_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(self.directory, 0o700)


@dataclass(frozen=True, slots=True)
class SiteCa:
    """The issuing CA: its certificate chain (issuing certificate first) and its key."""

    chain: tuple[x509.Certificate, ...]
    key: rsa.RSAPrivateKey
    files: CaFiles

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    def chain_pem(self) -> str:
        """The CA's certificates as `ca.pem` holds them (PEM, `\\n` line ends)."""
        return "".join(cert_pem(c) for c in self.chain)


# --- encoding --------------------------------------------------------------------------


def cert_pem(cert: x509.Certificate) -> str:
    """PEM with `\\n` line ends only (OCTT cannot parse `\\r\\n`)."""
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii").replace("\r\n", "\n")


def key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def serial_hex(serial: int) -> str:
    """A serial number as the register and the command line spell it: lowercase hex."""
    return format(serial, "x")


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, lowercase hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def _sign(builder: x509.CertificateBuilder, ca_key: rsa.RSAPrivateKey) -> x509.Certificate:
    # PKCS#1 v1.5 stated, not left to a default: SHA256withRSA is the contract.
    return builder.sign(ca_key, hashes.SHA256(), rsa_padding=padding.PKCS1v15())


def _aki(ca: SiteCa) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)


def _not_after(ca: SiteCa, now: datetime, days: int) -> datetime:
    # A certificate must not outlive its issuer: a verifier would refuse it from then on.
    return min(now + timedelta(days=days), ca.certificate.not_valid_after_utc)


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_key_usage(public_key: PublicKey) -> x509.KeyUsage:
    is_rsa = isinstance(public_key, rsa.RSAPublicKey)
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=is_rsa,
        data_encipherment=False,
        key_agreement=not is_rsa,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


# --- the CA itself ---------------------------------------------------------------------


def ca_subject(site_name: str | None, organization: str | None, key_id: str) -> x509.Name:
    """`CN=<site> site CA <key id>`: the key id tells apart the CAs of two sites (or a
    re-created one) that would otherwise share a name."""
    label = site_name or "edge-csms"
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, f"{label} site CA {key_id}"[:64])]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization[:64]))
    attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "edge-csms"))
    return x509.Name(attrs)


def make_root(
    now: datetime,
    *,
    site_name: str | None = None,
    organization: str | None = None,
    key_size: int = 3072,
    days: int = CA_DAYS,
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A self-signed RSA root for the site (path length 0: it signs leaves only)."""
    if key_size not in (3072, 4096):
        raise CaError("the site CA key must be RSA 3072 or 4096 bits")
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    subject = ca_subject(site_name, organization, ski.digest[:4].hex())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(ski, critical=False)
    )
    return _sign(builder, key), key


def validate_ca(chain: Sequence[x509.Certificate], key: object, now: datetime) -> rsa.RSAPrivateKey:
    """Check that `chain[0]` with `key` can be the site's issuing CA; the key.

    Raises:
        CaError: saying what is wrong (every check an operator can act on).
    """
    if not chain:
        raise CaError("no certificate in the CA certificate file")
    cert = chain[0]
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CaError(
            "the CA key must be RSA: chargers and OCTT expect certificates signed SHA256withRSA"
        )
    if key.key_size < MIN_RSA_BITS:
        raise CaError(f"the CA key has {key.key_size} bits; at least {MIN_RSA_BITS} needed")
    cert_key = cert.public_key()
    if (
        not isinstance(cert_key, rsa.RSAPublicKey)
        or cert_key.public_numbers() != key.public_key().public_numbers()
    ):
        raise CaError("the CA private key does not belong to the CA certificate")
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None
    if basic is None or not basic.ca:
        raise CaError("the certificate is not a CA certificate (basicConstraints CA:TRUE)")
    with contextlib.suppress(x509.ExtensionNotFound):
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.key_cert_sign or not usage.crl_sign:
            raise CaError("the CA certificate's key usage lacks keyCertSign or cRLSign")
    if cert.not_valid_after_utc <= now:
        raise CaError(f"the CA certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    for child, parent in itertools.pairwise(chain):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            raise CaError(
                f"the CA file's certificates are not a chain: {child.subject.rfc4514_string()} "
                f"is not issued by {parent.subject.rfc4514_string()}"
            ) from None
    return key


def parse_chain(data: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CaError("not a PEM certificate file") from None


def parse_key(data: bytes) -> object:
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise CaError("the CA private key is encrypted; give it unencrypted (mode 0600)") from None
    except ValueError:
        raise CaError("not a PEM private key file") from None


# --- revocation lists ------------------------------------------------------------------


def build_crl(
    ca: SiteCa, revoked: Mapping[int, datetime], now: datetime, *, days: int = CRL_DAYS
) -> x509.CertificateRevocationList:
    """The CA's CRL listing `revoked` (serial → revocation time), valid `days`."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(now - BACKDATE)
        .next_update(now + timedelta(days=days))
        .add_extension(_aki(ca), critical=False)
    )
    for serial, at in sorted(revoked.items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(at).build()
        )
    return builder.sign(ca.key, hashes.SHA256(), rsa_padding=padding.PKCS1v15())


def read_crl(ca: SiteCa) -> x509.CertificateRevocationList | None:
    """The CA's `crl.pem`, or None when absent, unreadable or signed by another CA (a
    CA replaced since: its revocations are of no use for the new issuer)."""
    try:
        crl = x509.load_pem_x509_crl(ca.files.crl.read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    if crl.issuer != ca.certificate.subject or not crl.is_signature_valid(ca.key.public_key()):
        return None
    return crl


def revoked_serials(crl: x509.CertificateRevocationList | None) -> dict[int, datetime]:
    if crl is None:
        return {}
    return {r.serial_number: r.revocation_date_utc for r in crl}


def write_crl(ca: SiteCa, revoked: Mapping[int, datetime], now: datetime) -> None:
    crl = build_crl(ca, revoked, now)
    pem = crl.public_bytes(serialization.Encoding.PEM)
    write_atomic(ca.files.crl, pem, mode=0o644)


def crl_needs_refresh(crl: x509.CertificateRevocationList | None, now: datetime) -> bool:
    """Whether the CRL is missing or past half its life (a TLS stack that checks CRLs
    refuses every client once next_update has passed)."""
    if crl is None or crl.next_update_utc is None:
        return True
    return now >= crl.last_update_utc + (crl.next_update_utc - crl.last_update_utc) / 2


# --- the files -------------------------------------------------------------------------


def load_ca(
    files: CaFiles,
    now: datetime,
    *,
    certificate: Path | None = None,
    private_key: Path | None = None,
) -> SiteCa | None:
    """The site CA: the operator's (`certificate` and `private_key`, the `[security]`
    keys) or the data dir's; None when the data dir holds none yet.

    An operator's CA certificate file is copied to `ca.pem` (so the TLS listener and
    `ca list` find it where they always do); its key stays where the operator put it.
    A missing CRL is written.

    Raises:
        CaError: the files exist but cannot be the CA.
    """
    if certificate is not None or private_key is not None:
        if certificate is None or private_key is None:
            raise CaError("[security] ca_certificate and ca_private_key go together")
        try:
            chain_data, key_data = certificate.read_bytes(), private_key.read_bytes()
        except OSError as err:
            raise CaError(f"cannot read the operator's CA: {err}") from None
        chain = parse_chain(chain_data)
        ca = SiteCa(tuple(chain), validate_ca(chain, parse_key(key_data), now), files)
        files.ensure_directory()
        pem = ca.chain_pem().encode()
        if not files.cert.exists() or files.cert.read_bytes() != pem:
            write_atomic(files.cert, pem, mode=0o644)
    else:
        if not files.cert.exists() or not files.key.exists():
            return None
        chain = parse_chain(files.cert.read_bytes())
        ca = SiteCa(tuple(chain), validate_ca(chain, parse_key(files.key.read_bytes()), now), files)
    crl = read_crl(ca)
    if crl_needs_refresh(crl, now):
        write_crl(ca, revoked_serials(crl), now)
    return ca


def create_ca(
    files: CaFiles,
    now: datetime,
    *,
    site_name: str | None = None,
    organization: str | None = None,
    key_size: int = 3072,
    days: int = CA_DAYS,
) -> SiteCa:
    """Make the site root in `files` (key, then certificate, then an empty CRL).

    A crash before the certificate is written leaves a key without a certificate,
    which `load_ca` ignores and the next creation replaces.
    """
    cert, key = make_root(
        now, site_name=site_name, organization=organization, key_size=key_size, days=days
    )
    return _install(files, (cert,), key, now)


def import_ca(files: CaFiles, cert_data: bytes, key_data: bytes, now: datetime) -> SiteCa:
    """Take an operator's CA or intermediate (PEM: the certificate, then optionally its
    issuers; its unencrypted RSA key) as the site CA, copied into `files`.

    Raises:
        CaError: it cannot be the site's issuing CA.
    """
    chain = parse_chain(cert_data)
    key = validate_ca(chain, parse_key(key_data), now)
    return _install(files, tuple(chain), key, now)


def _install(
    files: CaFiles, chain: tuple[x509.Certificate, ...], key: rsa.RSAPrivateKey, now: datetime
) -> SiteCa:
    files.ensure_directory()
    write_atomic(files.key, key_pem(key), mode=0o600)
    ca = SiteCa(chain, key, files)
    write_atomic(files.cert, ca.chain_pem().encode(), mode=0o644)
    write_crl(ca, {}, now)
    log.info("site CA %s in %s", ca.certificate.subject.rfc4514_string(), files.directory)
    return ca


# --- issuing ---------------------------------------------------------------------------


def issue_client_certificate(
    ca: SiteCa, public_key: PublicKey, subject: x509.Name, now: datetime, *, days: int
) -> x509.Certificate:
    """A charger certificate (clientAuth) for `public_key` with `subject`, signed
    SHA256withRSA, with a random 159-bit serial number."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(_not_after(ca, now, days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(public_key), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_aki(ca), critical=False)
    )
    return _sign(builder, ca.key)


def issue_server_certificate(
    ca: SiteCa,
    host: str,
    now: datetime,
    *,
    ips: Iterable[str] = (),
    dns: Iterable[str] = (),
    days: int = 825,
    key_size: int = 2048,
    key_type: str = "rsa",
) -> tuple[x509.Certificate, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey]:
    """The wss listener's certificate: CN = `host` (the FQDN chargers connect to, as
    OCTT checks), SAN = `host`, `dns` and `ips`, serverAuth, a fresh key: RSA of
    `key_size` bits, or with `key_type="ec"` ECDSA P-256 (for the TLS_ECDHE_ECDSA suites
    the Whitepaper lists beside the RSA ones). Signed SHA256withRSA by the CA either way.

    Raises:
        CaError: an address in `ips` is not an IP address, or the key is too small.
    """
    if key_type == "rsa" and key_size < MIN_RSA_BITS:
        raise CaError(f"server keys need at least {MIN_RSA_BITS} bits")
    names: list[x509.GeneralName] = []
    for name in (host, *dns):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    for ip in ips:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(ip)))
        except ValueError:
            raise CaError(f"{ip!r} is not an IP address") from None
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if key_type == "ec":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(_not_after(ca, now, days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(key.public_key()), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_aki(ca), critical=False)
    )
    return _sign(builder, ca.key), key
