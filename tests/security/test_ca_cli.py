"""`edge-csms ca …` on a data dir: init, import, server-cert (used for a real TLS
handshake), list, revoke (the CRL then refuses the certificate at a real handshake)."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import orjson
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from edge.cli import main
from edge.security.register import CertificateRegister
from edge.store import DocumentStore
from tests.security import certs


def write_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(f'[storage]\ndata_dir = "data"\n\n[security]\nsite_name = "Depot 7"\n{extra}')
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_init_creates_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    code, out, _ = run(capsys, "ca", "init", "--config", str(config))
    assert code == 0 and "created the site CA" in out and "Depot 7 site CA" in out
    ca_dir = tmp_path / "data" / "ca"
    assert stat.S_IMODE((ca_dir / "ca.key").stat().st_mode) == 0o600
    assert (ca_dir / "crl.pem").exists()
    pem = (ca_dir / "ca.pem").read_bytes()
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.public_key().key_size == 3072  # type: ignore[union-attr]
    code, out, _ = run(capsys, "ca", "init", "--config", str(config))
    assert code == 0 and "nothing changed" in out
    assert (ca_dir / "ca.pem").read_bytes() == pem


def test_import_an_operator_intermediate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = certs.make_ca("Operator Root")
    inter = certs.make_intermediate(root, "Operator Issuing")
    paths = certs.write(tmp_path / "op", "issuing", inter, chain=[root])
    config = write_config(tmp_path)
    code, out, _ = run(
        capsys, "ca", "init", "--config", str(config), "--import", str(paths.cert), str(paths.key)
    )
    assert code == 0 and "CN=Operator Issuing" in out and "intermediate" in out
    assert (tmp_path / "data" / "ca" / "ca.pem").read_text() == paths.cert.read_text()
    # A second import would orphan every certificate issued so far: refused.
    code, _, err = run(
        capsys, "ca", "init", "--config", str(config), "--import", str(paths.cert), str(paths.key)
    )
    assert code == 2 and "already exists" in err


def test_import_refuses_a_mismatched_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = certs.make_ca()
    other = certs.make_ca("Other")
    cert = certs.write_pem(tmp_path / "ca.pem", root)
    key = tmp_path / "other.key"
    key.write_text(other.key_pem)
    code, _, err = run(
        capsys, "ca", "init", "--config", str(write_config(tmp_path)), "--import", str(cert),
        str(key),
    )  # fmt: skip
    assert code == 2 and "does not belong" in err
    assert not (tmp_path / "data" / "ca" / "ca.pem").exists()


async def test_server_cert_serves_tls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    code, out, _ = run(
        capsys, "ca", "server-cert", "--config", str(config), "--host", "localhost", "--ip",
        "127.0.0.1",
    )  # fmt: skip
    assert code == 0
    data = (tmp_path / "data").resolve()
    assert "[ocpp.tls]" in out
    assert f'certificate = "{data}/tls/server.pem"' in out
    assert f'private_key = "{data}/tls/server.key"' in out
    assert f'client_ca = "{data}/ca/ca.pem"' in out
    # The ECDSA one beside it by default (the Whitepaper's ECDHE_ECDSA suites).
    assert f'additional_certificate = "{data}/tls/server-ec.pem"' in out
    assert stat.S_IMODE((data / "tls" / "server.key").stat().st_mode) == 0o600
    chain = x509.load_pem_x509_certificates((data / "tls" / "server.pem").read_bytes())
    leaf = chain[0]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
    assert leaf.serial_number > 0 and leaf.public_key().key_size >= 2048  # type: ignore[union-attr]
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    server_ctx.load_cert_chain(data / "tls" / "server.pem", data / "tls" / "server.key")
    client_ctx = certs.client_context(data / "ca" / "ca.pem")
    assert await certs.handshake(server_ctx, client_ctx, "localhost") is None
    mismatch = await certs.handshake(server_ctx, client_ctx, "elsewhere.example")
    assert mismatch is not None and "Hostname mismatch" in mismatch, mismatch


async def test_revoke_lists_the_serial_and_openssl_refuses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    assert run(capsys, "ca", "init", "--config", str(config))[0] == 0
    data = tmp_path / "data"
    # A charger certificate as the service registers it, issued by the site CA.
    site_root = certs.Issued(
        x509.load_pem_x509_certificate((data / "ca" / "ca.pem").read_bytes()),
        certs.load_key((data / "ca" / "ca.key").read_bytes()),
    )
    client = certs.make_client_cert(site_root, "CP-1")
    serial = format(client.serial, "x")
    store = DocumentStore(data / "certificates.json")
    CertificateRegister(store).add(
        {"serial": serial, "chargerId": "CP-1", "subject": "CN=CP-1", "status": "installed",
         "notAfter": "2027-12-04T00:00:00.000Z", "issuedAt": "2026-12-04T00:00:00.000Z"}
    )  # fmt: skip
    store.close()
    code, out, _ = run(capsys, "ca", "list", "--config", str(config), "--json")
    listed = orjson.loads(out)
    assert code == 0 and listed["certificates"][0]["status"] == "installed"

    # The handshake with the CRL checked passes before the revocation …
    server = certs.make_server_cert(site_root)
    server_files = certs.write(tmp_path / "srv", "server", server)
    client_files = certs.write(tmp_path / "cli", "client", client)

    def server_context() -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=data / "ca" / "ca.pem")
        ctx.load_verify_locations(data / "ca" / "crl.pem")
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_cert_chain(server_files.cert, server_files.key)
        return ctx

    client_ctx = certs.client_context(data / "ca" / "ca.pem", client_files)
    assert await certs.handshake(server_context(), client_ctx, "127.0.0.1") is None

    code, out, _ = run(
        capsys, "ca", "revoke", "--config", str(config), serial.upper(), "--reason", "stolen"
    )
    assert code == 0 and f"revoked {serial}" in out
    crl = x509.load_pem_x509_crl((data / "ca" / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(client.serial) is not None
    code, out, _ = run(capsys, "ca", "list", "--config", str(config), "--json")
    entry = orjson.loads(out)["certificates"][0]
    assert entry["status"] == "revoked" and entry["reason"] == "stolen"
    # … and fails after it, with the rewritten CRL loaded.
    refused = await certs.handshake(server_context(), client_ctx, "127.0.0.1")
    assert refused is not None and "certificate revoked" in refused, refused

    code, _, err = run(capsys, "ca", "revoke", "--config", str(config), "not-hex")
    assert code == 2 and "not a hexadecimal" in err


def test_check_reports_the_site_ca(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    code, out, _ = run(capsys, "check", "--config", str(config))
    assert code == 0 and "site CA: none yet" in out
    run(capsys, "ca", "init", "--config", str(config))
    code, out, _ = run(capsys, "check", "--config", str(config))
    assert code == 0 and "site CA: OU=edge-csms,CN=Depot 7 site CA" in out
    # An operator's CA whose key does not match: `check` says so before the service runs.
    root, other = certs.make_ca(), certs.make_ca("Other")
    cert = certs.write_pem(tmp_path / "op" / "ca.pem", root)
    (tmp_path / "op" / "ca.key").write_text(other.key_pem)
    config = write_config(tmp_path, 'ca_certificate = "op/ca.pem"\nca_private_key = "op/ca.key"\n')
    assert cert.exists()
    code, _, err = run(capsys, "check", "--config", str(config))
    assert code == 2 and "config error: site CA: the CA private key does not belong" in err


async def test_server_cert_with_ec_serves_both_suite_families(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--ec` adds an ECDSA certificate: a listener holding both negotiates the
    TLS_ECDHE_ECDSA and the TLS_RSA suites of TC_086."""
    config = write_config(tmp_path)
    code, out, _ = run(
        capsys, "ca", "server-cert", "--config", str(config), "--host", "localhost", "--ec"
    )
    tls = (tmp_path / "data" / "tls").resolve()
    assert code == 0
    assert f'additional_certificate = "{tls}/server-ec.pem"' in out
    assert stat.S_IMODE((tls / "server-ec.key").stat().st_mode) == 0o600
    ec_leaf = x509.load_pem_x509_certificates((tls / "server-ec.pem").read_bytes())[0]
    assert ec_leaf.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    assert ec_leaf.signature_algorithm_oid == x509.SignatureAlgorithmOID.RSA_WITH_SHA256
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # The Whitepaper's suites (the listener's own list is the TLS side's business).
    server_ctx.set_ciphers(
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        "AES128-GCM-SHA256:AES256-GCM-SHA384"
    )
    server_ctx.load_cert_chain(tls / "server.pem", tls / "server.key")
    server_ctx.load_cert_chain(tls / "server-ec.pem", tls / "server-ec.key")
    ca_file = tmp_path / "data" / "ca" / "ca.pem"
    for suite in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                  "AES128-GCM-SHA256", "AES256-GCM-SHA384"):  # fmt: skip
        client_ctx = certs.client_context(ca_file)
        client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        client_ctx.set_ciphers(suite)
        assert await certs.handshake(server_ctx, client_ctx, "localhost") is None, suite
