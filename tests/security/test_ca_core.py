"""The site CA's pure parts: the root, imports, issued certificates, CRLs, CSR checks."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge.config import ConfigError, load_config, parse_config
from edge.security import ca as site_ca
from edge.security.csr import check_csr
from tests.security import certs

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def cn_of(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def verify_pkcs1(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    """SHA256withRSA with PKCS#1 v1.5 padding, exactly (PSS would fail here)."""
    public = issuer.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert cert.signature_algorithm_oid == x509.SignatureAlgorithmOID.RSA_WITH_SHA256
    public.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256())


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> site_ca.SiteCa:
    files = site_ca.CaFiles.of(tmp_path_factory.mktemp("data"))
    return site_ca.create_ca(files, NOW, site_name="Depot 7", organization="ACME CPO")


def test_created_root_files_and_subject(root: site_ca.SiteCa) -> None:
    files = root.files
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.directory.stat().st_mode) == 0o700
    cert = root.certificate
    assert cn_of(cert).startswith("Depot 7 site CA ")
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "ACME CPO"
    assert root.key.key_size == 3072
    assert cert.not_valid_after_utc - NOW > timedelta(days=19 * 365)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    verify_pkcs1(cert, cert)
    crl = x509.load_pem_x509_crl(files.crl.read_bytes())
    assert len(crl) == 0 and crl.is_signature_valid(root.key.public_key())
    # Loaded back the same, key included.
    again = site_ca.load_ca(files, NOW)
    assert again is not None and again.certificate == cert
    assert "\r" not in files.cert.read_text()


def test_load_without_files_is_none(tmp_path: Path) -> None:
    assert site_ca.load_ca(site_ca.CaFiles.of(tmp_path), NOW) is None


def test_client_certificate(root: site_ca.SiteCa) -> None:
    key = certs.rsa_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CP-1")])
    cert = site_ca.issue_client_certificate(root, key.public_key(), subject, NOW, days=365)
    verify_pkcs1(cert, root.certificate)
    assert cn_of(cert) == "CP-1"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.not_valid_after_utc == NOW + timedelta(days=365)
    assert cert.serial_number.bit_length() > 64
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    # Never beyond the CA.
    longer = site_ca.issue_client_certificate(root, key.public_key(), subject, NOW, days=99999)
    assert longer.not_valid_after_utc == root.certificate.not_valid_after_utc


def test_server_certificate(root: site_ca.SiteCa) -> None:
    cert, key = site_ca.issue_server_certificate(
        root, "edge.site.example", NOW, ips=["192.168.1.10"], dns=["edge"]
    )
    verify_pkcs1(cert, root.certificate)
    assert cn_of(cert) == "edge.site.example"
    assert key.key_size >= 2048 and cert.serial_number > 0
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["edge.site.example", "edge"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["192.168.1.10"]
    with pytest.raises(site_ca.CaError):
        site_ca.issue_server_certificate(root, "x", NOW, ips=["not-an-ip"])


def test_crl_lists_revoked_and_refreshes(root: site_ca.SiteCa) -> None:
    site_ca.write_crl(root, {0x1234: NOW}, NOW)
    crl = site_ca.read_crl(root)
    assert crl is not None and site_ca.revoked_serials(crl) == {0x1234: NOW}
    assert not site_ca.crl_needs_refresh(crl, NOW + timedelta(days=14))
    assert site_ca.crl_needs_refresh(crl, NOW + timedelta(days=16))
    site_ca.write_crl(root, {}, NOW)


def test_import_intermediate_and_refusals(tmp_path: Path) -> None:
    operator_root = certs.make_ca("Operator Root")
    inter = certs.make_intermediate(operator_root, "Operator Site Issuing")
    files = site_ca.CaFiles.of(tmp_path / "data")
    imported = site_ca.import_ca(
        files,
        (inter.cert_pem + operator_root.cert_pem).encode(),
        inter.key_pem.encode(),
        NOW,
    )
    assert imported.chain == (inter.cert, operator_root.cert)
    assert files.cert.read_text() == inter.cert_pem + operator_root.cert_pem
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    other = certs.make_ca("Other")
    leaf = certs.make_client_cert(operator_root, "CP-1")
    ec_ca = certs.make_ca("EC", key=certs.ec_key())
    for cert_pem, key_pem, why in [
        (inter.cert_pem, other.key_pem, "does not belong"),
        (leaf.cert_pem, leaf.key_pem, "not a CA"),
        (ec_ca.cert_pem, ec_ca.key_pem, "must be RSA"),
        (inter.cert_pem + other.cert_pem, inter.key_pem, "not a chain"),
        ("garbage", inter.key_pem, "not a PEM certificate"),
    ]:
        with pytest.raises(site_ca.CaError, match=why):
            site_ca.import_ca(
                site_ca.CaFiles.of(tmp_path / why), cert_pem.encode(), key_pem.encode(), NOW
            )


def test_operator_ca_from_config_is_copied_to_ca_pem(tmp_path: Path) -> None:
    operator_root = certs.make_ca("Operator Root")
    inter = certs.make_intermediate(operator_root)
    paths = certs.write(tmp_path / "op", "issuing", inter, chain=[operator_root])
    files = site_ca.CaFiles.of(tmp_path / "data")
    loaded = site_ca.load_ca(files, NOW, certificate=paths.cert, private_key=paths.key)
    assert loaded is not None and loaded.certificate == inter.cert
    assert files.cert.read_text() == paths.cert.read_text()
    assert not files.key.exists()  # the operator's key stays where it is
    assert site_ca.read_crl(loaded) is not None


# --- CSRs ------------------------------------------------------------------------------


def test_csr_good_rsa_and_ec() -> None:
    pem, _ = certs.make_csr("CP-1", org="ACME")
    verdict = check_csr(pem, identity="CP-1", cpo_name="ACME")
    assert verdict.ok and verdict.subject is not None
    assert verdict.subject.rfc4514_string() == "O=ACME,CN=CP-1"
    pem, _ = certs.make_csr("SN-42", key_type="ec")
    assert check_csr(pem, identity="CP-1", serial_numbers=["SN-42"]).ok


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"bad_signature": True}, "signature"),
        ({"key_size": 1024}, "1024 bits"),
    ],
)
def test_csr_refusals_never_relaxed(kwargs: dict[str, object], why: str) -> None:
    pem, _ = certs.make_csr("CP-1", **kwargs)  # type: ignore[arg-type]
    verdict = check_csr(pem, identity="CP-1", relaxed=True)
    assert not verdict.ok and why in verdict.refusals[0]


def test_csr_not_pem() -> None:
    assert not check_csr("-----BEGIN CERTIFICATE REQUEST-----\nxx\n", identity="CP-1").ok


def test_csr_subject_rules_and_relaxation() -> None:
    pem, _ = certs.make_csr("someone-else", org="Other")
    strict = check_csr(pem, identity="CP-1", serial_numbers=["SN-42"], cpo_name="ACME")
    assert not strict.ok and len(strict.refusals) == 2
    relaxed = check_csr(
        pem, identity="CP-1", serial_numbers=["SN-42"], cpo_name="ACME", relaxed=True
    )
    assert relaxed.ok and len(relaxed.relaxed) == 2
    # The certificate issued still names the charger (its serial number) and the CPO.
    assert relaxed.subject is not None
    assert relaxed.subject.rfc4514_string() == "O=ACME,CN=SN-42"
    bare = check_csr(pem, identity="CP-1", relaxed=True)
    assert bare.subject is not None and bare.subject.rfc4514_string() == "O=Other,CN=CP-1"


# --- [security] ------------------------------------------------------------------------


def test_security_keys_are_read_and_paths_rebased(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "edge.toml"
    path.parent.mkdir()
    path.write_text(
        "[security]\n"
        'ca_certificate = "op/issuing.pem"\n'
        'ca_private_key = "/srv/op/issuing.key"\n'
        "relaxed_subject_checks = true\n"
        'cpo_name = "ACME CPO"\n'
        'site_name = "Depot 7"\n'
        "certificate_days = 365\n"
        "ca_key_size = 4096\n"
    )
    s = load_config(path).security
    assert s.ca_certificate == tmp_path / "etc" / "op" / "issuing.pem"
    assert s.ca_private_key == Path("/srv/op/issuing.key")
    assert s.relaxed_subject_checks and s.cpo_name == "ACME CPO" and s.site_name == "Depot 7"
    assert (s.certificate_days, s.ca_key_size) == (365, 4096)


def test_security_defaults_and_refusals() -> None:
    s = parse_config({}).security
    assert s.ca_certificate is None and not s.relaxed_subject_checks
    assert (s.certificate_days, s.ca_key_size) == (730, 3072)
    with pytest.raises(ConfigError) as err:
        parse_config(
            {
                "security": {
                    "ca_certificate": "a.pem",
                    "ca_key_size": 2048,
                    "certificate_days": 0,
                    "relaxed": True,
                }
            }
        )
    problems = " ".join(err.value.problems)
    for key in ("ca_private_key", "ca_key_size", "certificate_days", "security.relaxed"):
        assert key in problems
