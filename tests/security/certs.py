"""Certificates for the security tests, made with the `cryptography` package.

Everything here is test material: small RSA keys where the size does not matter to the
test (2048), validity counted from now, no files unless asked (`write`).

    ca = make_ca("Test Root")
    inter = make_intermediate(ca, "Test Intermediate")
    server = make_server_cert(ca)                      # 127.0.0.1 and localhost
    client = make_client_cert(ca, "CP-1")              # clientAuth, CN = CP-1
    old = make_client_cert(ca, "CP-1", expired=True)
    csr, key = make_csr("CP-1", org="ACME")           # RSA 2048; key_type="ec" / key_size=1024
    crl = make_crl(ca, [client.cert.serial_number])
    paths = write(tmp_path, "server", server, chain=[ca])   # -> Paths(cert, key)
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def cert_pem(self) -> str:
        return cert_pem(self.cert)

    @property
    def key_pem(self) -> str:
        return key_pem(self.key)

    @property
    def serial(self) -> int:
        return self.cert.serial_number


@dataclass(frozen=True)
class Paths:
    cert: Path
    key: Path


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _validity(
    builder: x509.CertificateBuilder, days: int, expired: bool
) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    if expired:
        return builder.not_valid_before(now - timedelta(days=days + 2)).not_valid_after(
            now - timedelta(days=1)
        )
    return builder.not_valid_before(now - timedelta(minutes=5)).not_valid_after(
        now + timedelta(days=days)
    )


def _ski_aki(
    builder: x509.CertificateBuilder, key: PrivateKey, issuer: Issued | None
) -> x509.CertificateBuilder:
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    return builder


def _ca_cert(
    subject: x509.Name,
    key: PrivateKey,
    issuer: Issued | None,
    *,
    path_length: int | None,
    days: int,
    expired: bool,
) -> Issued:
    """A CA certificate for `key`: self-signed without `issuer`, signed SHA-256."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    builder = _ski_aki(_validity(builder, days, expired), key, issuer)
    signer = issuer.key if issuer is not None else key
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def make_ca(
    cn: str = "Test Root CA",
    *,
    org: str | None = "edge-csms tests",
    key: PrivateKey | None = None,
    days: int = 3650,
    expired: bool = False,
) -> Issued:
    """A self-signed root CA (RSA 2048 unless `key` is given), signed SHA-256."""
    return _ca_cert(
        name(cn, org), key or rsa_key(), None, path_length=None, days=days, expired=expired
    )


def make_intermediate(
    issuer: Issued,
    cn: str = "Test Intermediate CA",
    *,
    org: str | None = "edge-csms tests",
    days: int = 1825,
) -> Issued:
    """An intermediate CA signed by `issuer` (path length 0: it issues leaves only)."""
    return _ca_cert(name(cn, org), rsa_key(), issuer, path_length=0, days=days, expired=False)


def _leaf(
    issuer: Issued,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    *,
    key: PrivateKey | None,
    days: int,
    expired: bool,
    san: Sequence[x509.GeneralName] = (),
) -> Issued:
    key = key or rsa_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    builder = _ski_aki(_validity(builder, days, expired), key, issuer)
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def make_server_cert(
    issuer: Issued,
    hosts: Iterable[str] = ("127.0.0.1", "localhost"),
    *,
    cn: str | None = None,
    key: PrivateKey | None = None,
    days: int = 365,
    expired: bool = False,
) -> Issued:
    """A serverAuth certificate for `hosts` (IP addresses and DNS names in the SAN)."""
    hosts = list(hosts)
    san: list[x509.GeneralName] = []
    for host in hosts:
        try:
            san.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            san.append(x509.DNSName(host))
    return _leaf(
        issuer,
        name(cn or hosts[0]),
        ExtendedKeyUsageOID.SERVER_AUTH,
        key=key,
        days=days,
        expired=expired,
        san=san,
    )


def make_client_cert(
    issuer: Issued,
    cn: str,
    *,
    org: str | None = None,
    key: PrivateKey | None = None,
    days: int = 365,
    expired: bool = False,
) -> Issued:
    """A clientAuth certificate with subject CN = `cn` (a charger's identity or serial)."""
    return _leaf(
        issuer,
        name(cn, org),
        ExtendedKeyUsageOID.CLIENT_AUTH,
        key=key,
        days=days,
        expired=expired,
    )


def make_csr(
    cn: str,
    *,
    org: str | None = None,
    key_type: str = "rsa",
    key_size: int = 2048,
    curve: ec.EllipticCurve | None = None,
    bad_signature: bool = False,
) -> tuple[str, PrivateKey]:
    """A PEM CSR (with `\\n` line ends) and its key, as a charger makes for SignCertificate.

    `key_type` "rsa" (of `key_size` bits, 1024 allowed to test refusals) or "ec" (`curve`,
    P-256 by default); `bad_signature` flips a bit of the signature so it parses but does
    not verify.
    """
    key: PrivateKey = ec_key(curve) if key_type == "ec" else rsa_key(key_size)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name(cn, org))
        .sign(key, hashes.SHA256())
    )
    if not bad_signature:
        return csr.public_bytes(serialization.Encoding.PEM).decode(), key
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    # The signature BIT STRING ends the DER: its last byte is signature bits.
    der[-1] ^= 0x01
    broken = x509.load_der_x509_csr(bytes(der))
    return broken.public_bytes(serialization.Encoding.PEM).decode(), key


def make_crl(
    issuer: Issued, revoked_serials: Iterable[int] = (), *, days: int = 7, expired: bool = False
) -> x509.CertificateRevocationList:
    """A CRL signed by `issuer` that lists `revoked_serials`, current for `days` (or,
    `expired`, issued three days ago and past its next update since yesterday)."""
    now = datetime.now(UTC)
    if expired:
        last_update, next_update = now - timedelta(days=3), now - timedelta(days=1)
    else:
        last_update, next_update = now - timedelta(minutes=5), now + timedelta(days=days)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(last_update)
        .next_update(next_update)
    )
    for serial in revoked_serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(last_update)
            .build()
        )
    return builder.sign(issuer.key, hashes.SHA256())


def crl_pem(crl: x509.CertificateRevocationList) -> str:
    return crl.public_bytes(serialization.Encoding.PEM).decode()


def write(directory: Path, stem: str, issued: Issued, *, chain: Sequence[Issued] = ()) -> Paths:
    """Write `<stem>.pem` (the certificate, then `chain`) and `<stem>.key` (mode 0600)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / f"{stem}.pem"
    key_path = directory / f"{stem}.key"
    cert_path.write_text(issued.cert_pem + "".join(c.cert_pem for c in chain))
    key_path.write_text(issued.key_pem)
    key_path.chmod(0o600)
    return Paths(cert_path, key_path)


def write_pem(path: Path, *certs: Issued) -> Path:
    """Write the certificates (a CA file, a chain) to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(c.cert_pem for c in certs))
    return path


def client_context(
    ca_file: Path | None = None, client: Paths | None = None, *, check_hostname: bool = True
) -> ssl.SSLContext:
    """A client-side TLS context trusting `ca_file`, presenting `client` if given."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    ctx.check_hostname = check_hostname
    if client is not None:
        ctx.load_cert_chain(client.cert, client.key)
    return ctx


def load_key(data: bytes) -> PrivateKey:
    """A PEM private key (unencrypted), e.g. the site CA's `ca.key`, to issue with it."""
    key = serialization.load_pem_private_key(data, password=None)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return key


def handshake_blocking(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, server_hostname: str
) -> str | None:
    """A real TLS handshake on 127.0.0.1 (a server thread, a blocking client): None if
    both sides succeed, else what each side saw ("server: …; client: …"). The server's
    side is what tells why a client certificate was refused: with TLS 1.3 the client's
    handshake ends before the server checks it, and the client sees only a close."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server_errors: list[str] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError) as err:
                server_errors.append(f"server: {type(err).__name__}: {err}")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_error: str | None = None
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls,
        ):
            if tls.recv(2) != b"ok":
                client_error = "client: closed by the server"
    except (ssl.SSLError, OSError) as err:
        client_error = f"client: {type(err).__name__}: {err}"
    finally:
        thread.join(5)
        listener.close()
    errors = server_errors + ([client_error] if client_error else [])
    return "; ".join(errors) or None


async def handshake(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, server_hostname: str
) -> str | None:
    """`handshake_blocking` off the event loop."""
    return await asyncio.to_thread(handshake_blocking, server_ctx, client_ctx, server_hostname)
