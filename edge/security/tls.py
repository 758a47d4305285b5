"""The wss listener's TLS: the server certificate's checks, the context, revocation, reload.

Security profiles 2 and 3 (OCPP 1.6 Security Whitepaper, A00.FR.305-313, 403-407):

- TLS 1.2 or newer only, with the Whitepaper's suites (TLS_ECDHE_ECDSA_WITH_AES_128/256_GCM,
  TLS_RSA_WITH_AES_128/256_GCM) plus the forward-secret ECDHE_RSA GCM suites for RSA
  certificates, and TLS 1.3's. An ECDSA suite needs an EC certificate and a TLS_RSA one an
  RSA certificate: `[ocpp.tls] additional_certificate` holds the second key type, so
  both families can be negotiated (OCTT's TC_086 checks all four).
- Client certificates are requested but optional (CERT_OPTIONAL): profile 2 chargers have
  none. A certificate that is presented must verify against the client CA, or OpenSSL
  ends the handshake; which profile a connection satisfies is decided after it
  (`edge.security.profiles`).
- Revocation: the CRLs of `<data_dir>/ca/crl.pem` (or `[ocpp.tls] crl`). OpenSSL's
  VERIFY_CRL_CHECK_LEAF wants a CRL for *every* issuer, so it is switched on only when
  each client CA has a current CRL signed by it; a revoked leaf is then refused in the
  TLS handshake. The revoked serials are also checked at the HTTP upgrade
  (`TlsState.revoked`), which covers the other cases (a CA without CRL beside one with,
  an expired CRL that OpenSSL would turn into "refuse everyone").

Reload without a restart: every connection is created from one *base* SSLContext. Its
`sni_callback` swaps each new connection onto the current context, so a reload only
builds a new context; a reload that fails keeps the current one. OpenSSL copies the
verify mode and flags into a connection when it is created, from the base: they are
copied onto the base at each reload.

The listener is a plain TCP one, and `TlsListenerContext.accept` puts the loop's own TLS
layer (asyncio's or uvloop's SSLProtocol, as `create_server(ssl=…)` would) in front of
each accepted connection: so a refused handshake is known with the peer's address,
which the loop's TLS server drops unseen.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import importlib
import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge.times import parse_time

if TYPE_CHECKING:
    from edge.config import TlsConfig

__all__ = [
    "TLS12_CIPHERS",
    "CertProblem",
    "PeerCertificate",
    "TlsError",
    "TlsFiles",
    "TlsListenerContext",
    "TlsState",
    "build_tls",
    "check_server_certificate",
    "check_tls_files",
    "expiry",
    "peer_certificate",
]

log = logging.getLogger("edge.security")

# The Whitepaper's four (OpenSSL names), the ECDHE_RSA ones for forward secrecy with an
# RSA certificate, forward-secret suites first (the server's order wins).
TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",  # TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        "ECDHE-ECDSA-AES256-GCM-SHA384",  # TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "AES128-GCM-SHA256",  # TLS_RSA_WITH_AES_128_GCM_SHA256
        "AES256-GCM-SHA384",  # TLS_RSA_WITH_AES_256_GCM_SHA384
    )
)
MIN_RSA_BITS = 2048
MIN_EC_BITS = 224
EXPIRY_WARNING = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class CertProblem:
    """One finding about the TLS material.

    severity: "fatal" (the listener cannot run safely: the service refuses to start, a
    reload keeps the old context), "error" (works badly or not for chargers: expired,
    not yet valid; the service starts so the site and profile 0/1 chargers keep running
    — a Pi without a clock may boot in the past) or "warning".
    """

    severity: str
    text: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.text}"


class TlsError(Exception):
    """The TLS material cannot be used; `problems` says why."""

    def __init__(self, problems: Sequence[CertProblem]) -> None:
        super().__init__("; ".join(p.text for p in problems))
        self.problems = list(problems)


# --- the server certificate's checks (pure) ------------------------------------------------


def load_pem_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM file, in file order (ValueError if there is none)."""
    certs = x509.load_pem_x509_certificates(data)
    if not certs:
        raise ValueError("no PEM certificate")
    return certs


def _key_problem(key: Any, what: str) -> CertProblem | None:
    if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey) and key.key_size < MIN_RSA_BITS:
        return CertProblem("fatal", f"{what}: {key.key_size}-bit key, at least 2048 needed")
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < MIN_EC_BITS:
        return CertProblem("fatal", f"{what}: {key.curve.key_size}-bit EC key, at least 224 needed")
    if not isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey | ec.EllipticCurvePublicKey):
        return CertProblem("fatal", f"{what}: {type(key).__name__} keys are not a Whitepaper suite")
    return None


def _public_der(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def check_server_certificate(
    chain: Sequence[x509.Certificate], private_key: Any, now: datetime, *, name: str = "certificate"
) -> list[CertProblem]:
    """What is wrong with a server certificate chain (leaf first) and its private key."""
    problems: list[CertProblem] = []
    leaf = chain[0]
    if _public_der(leaf.public_key()) != _public_der(private_key.public_key()):
        problems.append(CertProblem("fatal", f"{name}: the private key does not match it"))
    key_problem = _key_problem(leaf.public_key(), name)
    if key_problem is not None:
        problems.append(key_problem)
    if leaf.serial_number <= 0:
        problems.append(CertProblem("fatal", f"{name}: no (positive) serial number"))
    basic = _extension(leaf, x509.BasicConstraints)
    if basic is not None and basic.ca:
        problems.append(
            CertProblem("fatal", f"{name}: the first certificate is a CA; put the server's first")
        )
    for i in range(len(chain) - 1):
        child, parent = chain[i], chain[i + 1]
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            problems.append(
                CertProblem(
                    "fatal",
                    f"{name}: chain order: certificate {i + 2} ({_cn(parent)}) did not issue "
                    f"certificate {i + 1} ({_cn(child)}); the file must hold the server's "
                    "certificate first, then each issuer",
                )
            )
    for i, cert in enumerate(chain):
        which = name if i == 0 else f"{name}: chain certificate {i + 1} ({_cn(cert)})"
        if cert.not_valid_before_utc > now:
            problems.append(
                CertProblem(
                    "error",
                    f"{which}: not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC "
                    "(is the clock right?)",
                )
            )
        elif cert.not_valid_after_utc < now:
            problems.append(
                CertProblem(
                    "error", f"{which}: expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
                )
            )
        elif cert.not_valid_after_utc < now + EXPIRY_WARNING:
            problems.append(
                CertProblem(
                    "warning",
                    f"{which}: expires on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
                )
            )
    usage = _extension(leaf, x509.ExtendedKeyUsage)
    if usage is not None and ExtendedKeyUsageOID.SERVER_AUTH not in usage:
        problems.append(CertProblem("warning", f"{name}: its extended key usage lacks serverAuth"))
    if not _cn(leaf, default=""):
        problems.append(
            CertProblem("warning", f"{name}: no subject CN (OCTT wants the server's name there)")
        )
    return problems


def _extension(cert: x509.Certificate, kind: type[Any]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _cn(cert: x509.Certificate, default: str = "no CN") -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else default
    return value if isinstance(value, str) else value.decode(errors="replace")


# --- files -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsFiles:
    """The files a TLS context is built from; paths absolute or relative to the cwd."""

    certificate: Path
    private_key: Path
    additional_certificate: Path | None = None
    additional_private_key: Path | None = None
    client_ca: Path | None = None
    crl: Path | None = None

    @classmethod
    def resolve(
        cls,
        *,
        certificate: Path,
        private_key: Path,
        additional_certificate: Path | None,
        additional_private_key: Path | None,
        client_ca: Path | None,
        crl: Path | None,
        data_dir: Path,
    ) -> TlsFiles:
        """The configured files; the site CA's `ca.pem` and `crl.pem` when no client CA /
        CRL is configured and they exist (so profile 3 needs no more configuration)."""
        site_ca = data_dir / "ca" / "ca.pem"
        site_crl = data_dir / "ca" / "crl.pem"
        if client_ca is None and site_ca.exists():
            client_ca = site_ca
        if crl is None and site_crl.exists():
            crl = site_crl
        return cls(
            certificate=certificate,
            private_key=private_key,
            additional_certificate=additional_certificate,
            additional_private_key=additional_private_key,
            client_ca=client_ca,
            crl=crl,
        )

    @classmethod
    def configured(cls, tls: TlsConfig, data_dir: Path) -> TlsFiles:
        """The files of `[ocpp.tls]`, resolved as `resolve` does (the service and
        `edge-csms check` must judge the same files)."""
        return cls.resolve(
            certificate=tls.certificate,
            private_key=tls.private_key,
            additional_certificate=tls.additional_certificate,
            additional_private_key=tls.additional_private_key,
            client_ca=tls.client_ca,
            crl=tls.crl,
            data_dir=data_dir,
        )


def _read(path: Path, what: str, problems: list[CertProblem]) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError as err:
        problems.append(CertProblem("fatal", f"{what} {path}: cannot read ({err.strerror})"))
        return None


def _check_pair(
    cert_path: Path, key_path: Path, what: str, now: datetime, problems: list[CertProblem]
) -> tuple[list[x509.Certificate], Any] | None:
    cert_data = _read(cert_path, f"{what} certificate", problems)
    key_data = _read(key_path, f"{what} private key", problems)
    if cert_data is None or key_data is None:
        return None
    try:
        loose = key_path.stat().st_mode & 0o077
    except OSError:
        loose = 0
    if loose:
        problems.append(
            CertProblem(
                "warning",
                f"{what} private key {key_path}: readable by others than its owner (chmod 600)",
            )
        )
    try:
        chain = load_pem_certificates(cert_data)
    except ValueError:
        problems.append(
            CertProblem("fatal", f"{what} certificate {cert_path}: not a PEM certificate")
        )
        return None
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except (ValueError, TypeError):
        problems.append(
            CertProblem(
                "fatal",
                f"{what} private key {key_path}: not an unencrypted PEM private key",
            )
        )
        return None
    problems.extend(check_server_certificate(chain, key, now, name=f"{what} certificate"))
    return chain, key


def _load_crls(
    files: TlsFiles, cas: list[x509.Certificate], now: datetime, problems: list[CertProblem]
) -> tuple[frozenset[tuple[bytes, int]], bool]:
    """The revoked (issuer DER, serial) pairs of the CRL file's CRLs signed by a client CA,
    and whether OpenSSL can check them in the handshake (every CA has a current CRL)."""
    if files.crl is None:
        return frozenset(), False
    data = _read(files.crl, "CRL", problems)
    if data is None:
        return frozenset(), False
    try:
        crls = _load_pem_crls(data)
    except ValueError:
        problems.append(CertProblem("fatal", f"CRL {files.crl}: not a PEM CRL"))
        return frozenset(), False
    revoked: set[tuple[bytes, int]] = set()
    covered: set[bytes] = set()
    all_usable = True
    for crl in crls:
        issuer = next(
            (
                ca
                for ca in cas
                if ca.subject == crl.issuer and crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
            ),
            None,
        )
        if issuer is None:
            problems.append(
                CertProblem(
                    "warning",
                    f"CRL {files.crl}: the CRL of {crl.issuer.rfc4514_string()} is not signed by "
                    "a client CA; ignored",
                )
            )
            all_usable = False
            continue
        issuer_der = crl.issuer.public_bytes()
        revoked.update((issuer_der, entry.serial_number) for entry in crl)
        next_update = crl.next_update_utc
        if next_update is not None and next_update < now:
            problems.append(
                CertProblem(
                    "warning",
                    f"CRL {files.crl}: expired on {next_update:%Y-%m-%d %H:%M} UTC; its "
                    "revocations are still refused, at the upgrade instead of the handshake",
                )
            )
            all_usable = False
            continue
        covered.add(issuer_der)
    in_handshake = all_usable and all(ca.subject.public_bytes() in covered for ca in cas)
    return frozenset(revoked), in_handshake and bool(cas)


def _load_pem_crls(data: bytes) -> list[x509.CertificateRevocationList]:
    marker = b"-----BEGIN X509 CRL-----"
    parts = [marker + part for part in data.split(marker)[1:]]
    if not parts:
        raise ValueError("no PEM CRL")
    return [x509.load_pem_x509_crl(part) for part in parts]


def check_tls_files(files: TlsFiles, now: datetime) -> list[CertProblem]:
    """Every problem of the TLS material, without building a context (`edge-csms check`)."""
    try:
        return build_tls(files, now).problems
    except TlsError as err:
        return err.problems


# --- the context ---------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class TlsState:
    """One built TLS context and what it was built from."""

    context: ssl.SSLContext
    files: TlsFiles
    problems: list[CertProblem]
    certificates: list[dict[str, Any]]
    """The server certificates' subject, serial, expiry (for the API and the log)."""
    client_cas: int
    revoked: frozenset[tuple[bytes, int]] = field(default_factory=frozenset)
    crl_in_handshake: bool = False

    def describe(self, now: datetime | None = None) -> dict[str, Any]:
        """What the API shows: nothing secret. With `now`, each certificate also says
        how many whole days it has left and whether that is within EXPIRY_WARNING."""
        certificates = self.certificates
        if now is not None:
            certificates = [{**c, **expiry(parse_time(c["notAfter"]), now)} for c in certificates]
        return {
            "certificates": certificates,
            "certificateFile": str(self.files.certificate),
            "clientCa": str(self.files.client_ca) if self.files.client_ca else None,
            "clientCas": self.client_cas,
            "crl": str(self.files.crl) if self.files.crl else None,
            "revokedCertificates": len(self.revoked),
            "crlCheckedInHandshake": self.crl_in_handshake,
            "problems": [{"severity": p.severity, "text": p.text} for p in self.problems],
        }


def expiry(not_after: datetime, now: datetime) -> dict[str, Any]:
    """`expiresInDays` (whole days left, negative once expired) and `expiringSoon`
    (within EXPIRY_WARNING, or expired): what the API adds to a certificate's end."""
    return {
        "expiresInDays": int((not_after - now).total_seconds() // 86400),
        "expiringSoon": not_after - now <= EXPIRY_WARNING,
    }


def build_tls(files: TlsFiles, now: datetime) -> TlsState:
    """Check the material and build a server context from it.

    Raises:
        TlsError: a "fatal" problem (listed with every other one found).
    """
    problems: list[CertProblem] = []
    pairs = [(files.certificate, files.private_key, "server")]
    if files.additional_certificate is not None and files.additional_private_key is not None:
        pairs.append((files.additional_certificate, files.additional_private_key, "additional"))
    loaded = [_check_pair(c, k, what, now, problems) for c, k, what in pairs]
    if (
        len(loaded) == 2
        and loaded[0] is not None
        and loaded[1] is not None
        and isinstance(loaded[0][1], rsa.RSAPrivateKey)
        == isinstance(loaded[1][1], rsa.RSAPrivateKey)
    ):
        problems.append(
            CertProblem(
                "fatal", "additional certificate: must have the other key type (one RSA, one EC)"
            )
        )
    cas: list[x509.Certificate] = []
    if files.client_ca is not None:
        data = _read(files.client_ca, "client CA", problems)
        if data is not None:
            try:
                cas = load_pem_certificates(data)
            except ValueError:
                problems.append(
                    CertProblem("fatal", f"client CA {files.client_ca}: not a PEM certificate")
                )
    revoked, in_handshake = _load_crls(files, cas, now, problems) if cas else (frozenset(), False)
    if any(p.severity == "fatal" for p in problems):
        raise TlsError(problems)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_COMPRESSION
    ctx.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    # One TLS 1.3 session ticket, not OpenSSL's two: a charger that resumes needs one,
    # and each costs the server an encryption per handshake.
    ctx.num_tickets = 1
    try:
        for cert_path, key_path, _ in pairs:
            ctx.load_cert_chain(cert_path, key_path)
        if files.client_ca is not None and cas:
            ctx.load_verify_locations(cafile=files.client_ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
            if in_handshake and files.crl is not None:
                ctx.load_verify_locations(cafile=files.crl)
                ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        else:
            ctx.verify_mode = ssl.CERT_NONE
    except (ssl.SSLError, OSError) as err:
        problems.append(CertProblem("fatal", f"OpenSSL refused the material: {err}"))
        raise TlsError(problems) from None
    certificates = [
        {
            "subject": pair[0][0].subject.rfc4514_string(),
            "serialNumber": format(pair[0][0].serial_number, "X"),
            "notAfter": pair[0][0].not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "keyType": "RSA" if isinstance(pair[1], rsa.RSAPrivateKey) else "EC",
        }
        for pair in loaded
        if pair is not None
    ]
    return TlsState(
        context=ctx,
        files=files,
        problems=problems,
        certificates=certificates,
        client_cas=len(cas),
        revoked=revoked,
        crl_in_handshake=in_handshake,
    )


# --- the peer ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    """The verified client certificate of a connection, as far as profile 3 needs it."""

    common_name: str
    serial_number: int
    issuer: bytes
    """The issuer's name, DER (to look the serial up among the revoked)."""
    subject: str = ""
    """The subject, RFC 4514 (what the page and the API show)."""
    not_after: datetime | None = None
    """The end of its validity, UTC (what the page warns about)."""

    def revoked_in(self, revoked: frozenset[tuple[bytes, int]]) -> bool:
        return (self.issuer, self.serial_number) in revoked


def peer_certificate(ssl_object: Any) -> PeerCertificate | None:
    """The client certificate OpenSSL verified on this connection, if one was presented."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    cert = x509.load_der_x509_certificate(der)
    return PeerCertificate(
        common_name=_cn(cert, default=""),
        serial_number=cert.serial_number,
        issuer=cert.issuer.public_bytes(),
        subject=cert.subject.rfc4514_string(),
        not_after=cert.not_valid_after_utc,
    )


# --- the listener's context, reloadable ----------------------------------------------------


def _tls_layer_class(loop: asyncio.AbstractEventLoop) -> Any:
    """The SSLProtocol class the loop uses for its own TLS servers: uvloop's on uvloop
    (its transports have a fast path for it), asyncio's otherwise."""
    if type(loop).__module__.startswith("uvloop"):
        return importlib.import_module("uvloop.loop").SSLProtocol
    return asyncio.sslproto.SSLProtocol


def _address(peer: Any) -> str | None:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer) if peer else None


class TlsListenerContext:
    """The base context a listener's connections are made from, and the current one they
    get.

    `on_refused(reason, peer)` hears of every handshake OpenSSL ends (an unknown, expired
    or revoked client certificate, TLS below 1.2, no common suite), with the peer's
    "address:port": asyncio drops them silently, and they are security events.
    """

    def __init__(self, state: TlsState, on_refused: Callable[[str, str | None], None]) -> None:
        self.current = state
        self.on_refused = on_refused
        # The first context stays the base for good; later ones are swapped in.
        base = self.base = state.context
        base.sni_callback = self._select
        base.sslobject_class = self._watched_class()
        # The peer of the connection whose TLS layer `accept` is setting up (the loop is
        # one thread: its SSLObject is made and starts its handshake within that call).
        self._accepting: str | None = None

    def _select(self, ssl_object: ssl.SSLObject, server_name: str | None, _: Any) -> None:
        current = self.current.context
        if ssl_object.context is not current:
            ssl_object.context = current

    def replace(self, state: TlsState) -> None:
        """Serve new connections from `state` (reload)."""
        self.base.verify_mode = state.context.verify_mode
        self.base.verify_flags = state.context.verify_flags
        self.current = state

    def accept(
        self,
        app_protocol: asyncio.BaseProtocol,
        transport: asyncio.BaseTransport,
        *,
        handshake_timeout: float,
        shutdown_timeout: float,
    ) -> None:
        """Run the TLS handshake of a TCP connection just accepted (`transport`, called
        from its protocol's `connection_made`) in front of `app_protocol`, whose
        `connection_made` is called again, with the TLS transport, once it succeeds; a
        handshake that fails never reaches it."""
        loop = asyncio.get_running_loop()
        self._accepting = _address(transport.get_extra_info("peername"))
        try:
            layer = _tls_layer_class(loop)(
                loop,
                app_protocol,
                self.base,
                None,  # no waiter: app_protocol hears of the outcome
                server_side=True,
                ssl_handshake_timeout=handshake_timeout,
                ssl_shutdown_timeout=shutdown_timeout,
            )
            transport.set_protocol(layer)
            layer.connection_made(transport)  # the handshake starts: the ServerHello waits
        finally:
            self._accepting = None

    def _watched_class(self) -> type[ssl.SSLObject]:
        listener = self

        class WatchedSSLObject(ssl.SSLObject):
            peer: str | None = None
            started = False

            def do_handshake(self) -> None:
                if not self.started:
                    # First called within `accept`, which knows the peer.
                    self.started = True
                    self.peer = listener._accepting
                try:
                    super().do_handshake()
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, ssl.SSLEOFError):
                    raise
                except ssl.SSLCertVerificationError as err:
                    listener.on_refused(f"client certificate: {err.verify_message}", self.peer)
                    raise
                except ssl.SSLError as err:
                    listener.on_refused(err.reason or str(err), self.peer)
                    raise

        return WatchedSSLObject
