"""The pure parts of connection security: profile rules, keys, server certificate checks."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from edge.security import profiles
from edge.security.credentials import (
    KeyHash,
    generate_key,
    key_bytes,
    parse_basic,
    password_key,
    presented_forms,
)
from edge.security.tls import TlsError, TlsFiles, build_tls, check_server_certificate
from tests.security.certs import (
    Issued,
    ec_key,
    make_ca,
    make_intermediate,
    make_server_cert,
    rsa_key,
    write,
)


def _now() -> datetime:
    # Not a module constant: the certificates are made as each test runs, valid from
    # five minutes before, and a long test session starts earlier than that.
    return datetime.now(UTC)


# --- profiles ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "pending", "level", "expected"),
    [
        (0, None, 1, [0]),
        (1, None, 1, [1]),
        (1, None, 2, [1]),  # TLS does not lower the need for a password
        (2, None, 1, []),  # ws for a profile 2 charger: a downgrade
        (2, None, 2, [2]),
        (2, None, 3, [2]),
        (3, None, 2, []),  # TLS without a certificate naming it
        (3, None, 1, []),
        (3, None, 3, [3]),
        (1, 2, 1, [1]),  # pending: the old profile serves until the new one is used
        (1, 2, 2, [2, 1]),
        (2, 3, 2, [2]),
        (2, 3, 3, [3, 2]),
        (2, 1, 2, [2]),  # a "pending" lower profile is never a candidate
    ],
)
def test_candidates(stored: int, pending: int | None, level: int, expected: list[int]) -> None:
    assert profiles.candidates(stored, pending, level) == expected


def test_connection_level_and_password_need() -> None:
    assert profiles.connection_level(tls=False, certificate_names_charger=True) == 1
    assert profiles.connection_level(tls=True, certificate_names_charger=False) == 2
    assert profiles.connection_level(tls=True, certificate_names_charger=True) == 3
    assert [profiles.needs_password(p) for p in profiles.PROFILES] == [False, True, True, False]


def test_effective_profile_never_lower_than_stored() -> None:
    assert profiles.effective_profile(3, 1, True) == 3
    assert profiles.effective_profile(1, 2, True) == 2
    assert profiles.effective_profile(0, 0, True) == 1
    assert profiles.effective_profile(0, 0, False) == 0


def test_certificate_subject_rules() -> None:
    names = profiles.certificate_names_charger
    assert names("CP1", "CP1", (), relaxed=False)
    assert names("SN-9", "CP1", ("SN-9", None), relaxed=False)
    assert not names("CP2", "CP1", ("SN-9",), relaxed=False)
    assert not names("", "CP1", ("",), relaxed=False)
    assert names("OCTT", "CP1", (), relaxed=True)


def test_refusals() -> None:
    assert profiles.refusal_for(2, 1, tls=False, has_certificate=False).kind == "downgrade"
    assert profiles.refusal_for(3, 2, tls=True, has_certificate=False).kind == "downgrade"
    assert profiles.refusal_for(3, 2, tls=True, has_certificate=True).kind == "certificate"


@pytest.mark.parametrize(
    ("current", "value", "severities"),
    [
        (1, "2", []),
        (2, "3", []),
        (1, "3", ["warning"]),
        (2, "2", ["error"]),
        (2, "1", ["error"]),
        (1, "0", ["error"]),
        (1, "x", ["error"]),
    ],
)
def test_upgrade_problems(current: int, value: str, severities: list[str]) -> None:
    found = profiles.upgrade_problems(
        current, value, tls_listener=True, client_ca=True, has_password=True
    )
    assert [s for s, _ in found] == severities


def test_upgrade_needs_tls_client_ca_and_password() -> None:
    found = profiles.upgrade_problems(
        0, "1", tls_listener=False, client_ca=False, has_password=False
    )
    assert [s for s, _ in found] == ["error"]
    found = profiles.upgrade_problems(1, "2", tls_listener=False, client_ca=True, has_password=True)
    assert "[ocpp.tls]" in found[0][1]
    found = profiles.upgrade_problems(2, "3", tls_listener=True, client_ca=False, has_password=True)
    assert "client CA" in found[0][1]


# --- keys -------------------------------------------------------------------------------------


def test_key_forms() -> None:
    assert key_bytes("3031") == b"01"
    assert key_bytes("not hex") == b"not hex"
    assert key_bytes("303") == b"303"  # odd length: not hex
    assert password_key("0123456789abcdef") == b"0123456789abcdef"  # 16: the text itself
    assert password_key("30" * 16) == b"0" * 16  # 32 hex digits: the key's hex form
    assert presented_forms(b"30" * 16) == [b"30" * 16, b"0" * 16]
    assert presented_forms(b"\xff" * 32) == [b"\xff" * 32]
    key = generate_key()
    assert len(key) == 40 and len(key_bytes(key)) == 20


def test_parse_basic() -> None:
    def header(raw: bytes) -> str:
        return "Basic " + base64.b64encode(raw).decode()

    assert parse_basic(header(b"CP1:\xff\x00pw")) == ("CP1", b"\xff\x00pw")
    assert parse_basic(header(b"CP1:a:b")) == ("CP1", b"a:b")
    assert parse_basic(header(b"no-colon")) is None
    assert parse_basic("Bearer abc") is None
    assert parse_basic("Basic !!!") is None
    assert parse_basic(None) is None
    assert parse_basic("Basic " + "A" * 2000) is None


def test_key_hash_round_trip() -> None:
    hashed = KeyHash.of(b"\x01\x02secret")
    assert hashed.matches(b"\x01\x02secret") and not hashed.matches(b"secret")
    again = KeyHash.from_json(hashed.to_json())
    assert again == hashed and again is not None and again.matches(b"\x01\x02secret")
    assert "secret" not in str(hashed.to_json()) and "secret" not in repr(hashed)
    assert KeyHash.from_json({"salt": "zz"}) is None


# --- server certificate checks ---------------------------------------------------------------


def _texts(problems: Sequence[object]) -> str:
    return " | ".join(str(p) for p in problems)


def test_good_chain_has_no_problem() -> None:
    ca = make_ca()
    inter = make_intermediate(ca)
    leaf = make_server_cert(inter)
    problems = check_server_certificate([leaf.cert, inter.cert, ca.cert], leaf.key, _now())
    assert problems == []


def test_key_mismatch_weak_keys_and_chain_order() -> None:
    ca = make_ca()
    inter = make_intermediate(ca)
    leaf = make_server_cert(inter)
    mismatch = check_server_certificate([leaf.cert], rsa_key(), _now())
    assert "does not match" in _texts(mismatch) and mismatch[0].severity == "fatal"
    weak = make_server_cert(ca, key=rsa_key(1024))
    assert "at least 2048" in _texts(check_server_certificate([weak.cert], weak.key, _now()))
    small_ec = make_server_cert(ca, key=ec_key(ec.SECP192R1()))
    assert "at least 224" in _texts(check_server_certificate([small_ec.cert], small_ec.key, _now()))
    reversed_chain = check_server_certificate([leaf.cert, ca.cert, inter.cert], leaf.key, _now())
    assert "chain order" in _texts(reversed_chain)
    ca_first = check_server_certificate([inter.cert, leaf.cert], inter.key, _now())
    assert "is a CA" in _texts(ca_first)


def test_time_checks_are_errors_not_fatal() -> None:
    ca = make_ca()
    expired = make_server_cert(ca, expired=True)
    found = check_server_certificate([expired.cert], expired.key, _now())
    assert [p.severity for p in found] == ["error"] and "expired" in found[0].text
    fresh = make_server_cert(ca)
    early = check_server_certificate([fresh.cert], fresh.key, _now() - timedelta(days=2))
    assert "not valid before" in _texts(early) and "clock" in _texts(early)
    soon = check_server_certificate([fresh.cert], fresh.key, _now() + timedelta(days=350))
    assert [p.severity for p in soon] == ["warning"]


def test_no_serial_number_is_fatal() -> None:
    """cryptography builds no certificate with serial 0; other tools do: edit the DER."""
    ca = make_ca()
    key = rsa_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "edge")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(0x5A)
        .not_valid_before(_now() - timedelta(days=1))
        .not_valid_after(_now() + timedelta(days=100))
    )
    der = builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    assert der.count(b"\x02\x01\x5a") == 1
    cert = x509.load_der_x509_certificate(der.replace(b"\x02\x01\x5a", b"\x02\x01\x00"))
    assert cert.serial_number == 0
    assert "serial" in _texts(check_server_certificate([cert], key, _now()))


def test_build_tls_reports_every_problem(tmp_path: Path) -> None:
    ca = make_ca()
    server = write(tmp_path, "server", make_server_cert(ca))
    other: Issued = make_server_cert(ca, key=ec_key())
    other_paths = write(tmp_path, "other", other)
    files = TlsFiles(certificate=server.cert, private_key=other_paths.key)
    with pytest.raises(TlsError) as info:
        build_tls(files, _now())
    assert "does not match" in str(info.value)
    missing = TlsFiles(certificate=tmp_path / "nope.pem", private_key=server.key)
    with pytest.raises(TlsError) as info:
        build_tls(missing, _now())
    assert "cannot read" in str(info.value)
    same_type = TlsFiles(
        certificate=server.cert,
        private_key=server.key,
        additional_certificate=server.cert,
        additional_private_key=server.key,
    )
    with pytest.raises(TlsError) as info:
        build_tls(same_type, _now())
    assert "other key type" in str(info.value)
    state = build_tls(TlsFiles(certificate=server.cert, private_key=server.key), _now())
    assert state.client_cas == 0 and state.describe()["problems"] == []
    server.key.chmod(0o644)
    state = build_tls(TlsFiles(certificate=server.cert, private_key=server.key), _now())
    assert [p.severity for p in state.problems] == ["warning"]
    assert "chmod 600" in state.problems[0].text


def test_site_ca_is_the_default_client_ca(tmp_path: Path) -> None:
    (tmp_path / "ca").mkdir()
    (tmp_path / "ca" / "ca.pem").write_text("x")
    files = TlsFiles.resolve(
        certificate=Path("s.pem"),
        private_key=Path("s.key"),
        additional_certificate=None,
        additional_private_key=None,
        client_ca=None,
        crl=None,
        data_dir=tmp_path,
    )
    assert files.client_ca == tmp_path / "ca" / "ca.pem" and files.crl is None


async def test_verifier_remembers_a_key_that_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A charger's reconnect with the key that passed costs no scrypt; another key, a
    changed hash, or a forgotten charger do."""
    from edge.security import credentials

    hashed = KeyHash.of(b"key-1")
    calls: list[bytes] = []
    real = credentials._scrypt

    def counting(key: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
        calls.append(key)
        return real(key, salt, n, r, p)

    monkeypatch.setattr(credentials, "_scrypt", counting)
    verifier = credentials.Verifier()
    try:
        assert await verifier.find("CP1", b"key-1", [hashed]) == hashed
        assert len(calls) == 1
        assert await verifier.find("CP1", b"key-1", [hashed]) == hashed
        assert len(calls) == 1  # remembered
        assert await verifier.find("CP1", b"key-2", [hashed]) is None
        assert len(calls) == 2
        other = KeyHash.of(b"key-1")
        assert await verifier.find("CP1", b"key-1", [other]) == other  # a new hash: checked
        verifier.forget("CP1")
        assert await verifier.find("CP1", b"key-1", [other]) == other
        assert len(calls) == 5  # KeyHash.of above counts one
    finally:
        verifier.close()
