"""The shared certificate helpers make what they say (other areas' tests rely on them)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.security import certs


def test_chain_and_leaves_verify() -> None:
    root = certs.make_ca()
    inter = certs.make_intermediate(root)
    server = certs.make_server_cert(inter)
    client = certs.make_client_cert(root, "CP-1", org="ACME")
    inter.cert.verify_directly_issued_by(root.cert)
    server.cert.verify_directly_issued_by(inter.cert)
    client.cert.verify_directly_issued_by(root.cert)
    san = server.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    cn = client.cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == "CP-1"


def test_expired_and_crl() -> None:
    root = certs.make_ca()
    old = certs.make_client_cert(root, "CP-1", expired=True)
    assert old.cert.not_valid_after_utc < root.cert.not_valid_after_utc
    crl = certs.make_crl(root, [old.serial])
    assert crl.get_revoked_certificate_by_serial_number(old.serial) is not None
    assert crl.is_signature_valid(root.key.public_key())  # type: ignore[arg-type]


def test_csrs() -> None:
    pem, key = certs.make_csr("CP-1", org="ACME")
    csr = x509.load_pem_x509_csr(pem.encode())
    assert csr.is_signature_valid and "\r" not in pem
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    pem, key = certs.make_csr("CP-1", key_size=1024)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 1024
    pem, key = certs.make_csr("CP-1", key_type="ec")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    pem, _ = certs.make_csr("CP-1", bad_signature=True)
    assert not x509.load_pem_x509_csr(pem.encode()).is_signature_valid


async def test_files_make_a_real_mutual_tls_handshake(tmp_path: Path) -> None:
    root = certs.make_ca()
    server = certs.write(tmp_path, "server", certs.make_server_cert(root))
    client = certs.write(tmp_path, "client", certs.make_client_cert(root, "CP-1"))
    ca_file = certs.write_pem(tmp_path / "ca.pem", root)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca_file)
    server_ctx.load_cert_chain(server.cert, server.key)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    seen: list[object] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer.get_extra_info("peercert"))
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = srv.sockets[0].getsockname()[1]
    async with srv:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=certs.client_context(ca_file, client)
        )
        writer.close()
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
    assert seen and dict(x[0] for x in seen[0]["subject"])["commonName"] == "CP-1"  # type: ignore[index]
