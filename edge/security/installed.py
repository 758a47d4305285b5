"""What the CSMS knows of the certificates each charger holds: pure bookkeeping.

The Security Whitepaper names a certificate on a charger by its certificateHashData
(edition 3 wording): `issuerNameHash` is the hash of the DER-encoded issuer name,
`issuerKeyHash` the hash of the issuer's public key (the contents of the
subjectPublicKey BIT STRING of the issuer's certificate, as in OCSP), `serialNumber`
the serial in hexadecimal without "0x" or leading zeroes; all three in the
`hashAlgorithm` SHA256, SHA384 or SHA512 the charger chose. Hex digits may come in
either case, so comparisons fold case and leading zeroes.

The state kept per charger (`installedCertificates`): per certificate type, a list of
entries

    {"id", "certificateType", "certificateHashData", "reported", "installedAt",
     "reportedAt", "subject", "issuer", "notAfter", "fingerprintSha256", "knownHashes"}

where `certificateHashData` is what the charger last reported (GetInstalledCertificateIds),
verbatim, or — for a certificate installed but not reported since — the CSMS's own SHA256
computation; `knownHashes` (all three algorithms) and the descriptive fields exist for
certificates the CSMS has seen as PEM. A DeleteCertificate sends `certificateHashData`
exactly: OCTT recomputes the charger's values and compares (TC_076).

Effects (from the charger's answers; nothing is assumed from a request alone):
InstallCertificate Accepted adds the certificate; GetInstalledCertificateIds replaces
what is known of that type (Accepted: the list; NotFound: none); DeleteCertificate
Accepted or NotFound removes it. Every answer is also kept in a short history.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

__all__ = [
    "CERTIFICATE_TYPES",
    "HASH_ALGORITHMS",
    "HISTORY_LIMIT",
    "CertificateInfo",
    "after_delete",
    "after_install",
    "after_report",
    "delete_hash_data",
    "describe_certificate",
    "entry_id",
    "find_entry",
    "hash_data_for",
    "history_entry",
    "normalize_pem",
    "public_entries",
]

Json = dict[str, Any]
State = dict[str, list[Json]]

CERTIFICATE_TYPES = ("CentralSystemRootCertificate", "ManufacturerRootCertificate")
HASH_ALGORITHMS: Mapping[str, Callable[[bytes], Any]] = {
    "SHA256": hashlib.sha256,
    "SHA384": hashlib.sha384,
    "SHA512": hashlib.sha512,
}
HISTORY_LIMIT = 20
MAX_ENTRIES_PER_TYPE = 100  # a charger reporting thousands must not bloat its document
_FIELDS = ("hashAlgorithm", "issuerNameHash", "issuerKeyHash", "serialNumber")


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """A certificate as the CSMS read it from PEM."""

    subject: str
    issuer: str
    not_after: str
    fingerprint_sha256: str
    hashes: dict[str, Json]
    """certificateHashData per algorithm; `issuerKeyHash` is "" when the issuer's key is
    unknown (neither self-signed nor followed by its issuer in the PEM)."""


def normalize_pem(text: str) -> str:
    """PEM with `\\n` line ends only (OCTT cannot read `\\r\\n`), otherwise as given: a
    test tool may compare it with the certificate it was configured with."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _bit_string_contents(spki_der: bytes) -> bytes:
    """The subjectPublicKey BIT STRING's contents from a SubjectPublicKeyInfo (DER)."""

    def header(data: bytes, at: int) -> tuple[int, int, int]:
        tag = data[at]
        length = data[at + 1]
        at += 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(data[at : at + count], "big")
            at += count
        return tag, length, at

    tag, _, at = header(spki_der, 0)
    if tag != 0x30:
        raise ValueError("not a SubjectPublicKeyInfo")
    _, length, inner = header(spki_der, at)  # the AlgorithmIdentifier
    tag, length, at = header(spki_der, inner + length)
    if tag != 0x03:
        raise ValueError("no subjectPublicKey BIT STRING")
    # The first content byte counts unused bits (0 for keys); the key follows.
    return spki_der[at + 1 : at + length]


def hash_data_for(cert: x509.Certificate, algorithm: str, issuer: x509.Certificate | None) -> Json:
    """certificateHashData of `cert` in `algorithm`; `issuer` is its issuer's certificate
    (itself for a self-signed root), None when unknown."""
    digest = HASH_ALGORITHMS[algorithm]
    key_hash = ""
    if issuer is not None:
        spki = issuer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        key_hash = digest(_bit_string_contents(spki)).hexdigest()
    return {
        "hashAlgorithm": algorithm,
        "issuerNameHash": digest(cert.issuer.public_bytes()).hexdigest(),
        "issuerKeyHash": key_hash,
        "serialNumber": format(cert.serial_number, "x"),
    }


def describe_certificate(pem: str) -> CertificateInfo | None:
    """The first certificate of a PEM text, or None when there is none that parses."""
    try:
        chain = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        return None
    cert = chain[0]
    issuer: x509.Certificate | None = None
    if cert.issuer == cert.subject:
        issuer = cert
    elif len(chain) > 1 and chain[1].subject == cert.issuer:
        issuer = chain[1]
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_after=cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        fingerprint_sha256=fingerprint,
        hashes={alg: hash_data_for(cert, alg, issuer) for alg in HASH_ALGORITHMS},
    )


def _key(data: Mapping[str, Any]) -> tuple[str, str, str, str]:
    serial = str(data.get("serialNumber", "")).lower().removeprefix("0x").lstrip("0") or "0"
    return (
        str(data.get("hashAlgorithm", "")),
        str(data.get("issuerNameHash", "")).lower(),
        str(data.get("issuerKeyHash", "")).lower(),
        serial,
    )


def _same(known: Mapping[str, Any], reported: Mapping[str, Any]) -> bool:
    a, b = _key(known), _key(reported)
    if not a[2]:  # the issuer's key is unknown to us: name and serial decide
        return (a[0], a[1], a[3]) == (b[0], b[1], b[3])
    return a == b


def entry_id(hash_data: Mapping[str, Any]) -> str:
    """A short id for an entry, from its hash data (stable while they are)."""
    return hashlib.sha256("|".join(_key(hash_data)).encode()).hexdigest()[:16]


def _matches(entry: Json, data: Mapping[str, Any]) -> bool:
    if _same(entry["certificateHashData"], data):
        return True
    known = entry.get("knownHashes", {}).get(data.get("hashAlgorithm"))
    return known is not None and _same(known, data)


def _copy(state: Mapping[str, list[Json]] | None) -> State:
    return {t: list(entries) for t, entries in (state or {}).items()}


def after_install(
    state: Mapping[str, list[Json]] | None, certificate_type: str, pem: str, status: str, now: str
) -> State:
    """The state after an InstallCertificate answered `status`."""
    new = _copy(state)
    if status != "Accepted":
        return new
    info = describe_certificate(pem)
    if info is None:
        # Accepted, but the CSMS cannot name it: it learns the name from the next report.
        return new
    data = info.hashes["SHA256"]
    entries = [
        e
        for e in new.get(certificate_type, [])
        if e.get("fingerprintSha256") != info.fingerprint_sha256 and not _matches(e, data)
    ]
    entries.append(
        {
            "id": entry_id(data),
            "certificateType": certificate_type,
            "certificateHashData": data,
            "reported": False,
            "installedAt": now,
            "subject": info.subject,
            "issuer": info.issuer,
            "notAfter": info.not_after,
            "fingerprintSha256": info.fingerprint_sha256,
            "knownHashes": info.hashes,
        }
    )
    new[certificate_type] = entries[-MAX_ENTRIES_PER_TYPE:]
    return new


def after_report(
    state: Mapping[str, list[Json]] | None,
    certificate_type: str,
    status: str,
    reported: list[Json] | None,
    now: str,
) -> State:
    """The state after GetInstalledCertificateIds of `certificate_type` answered: the
    charger's list replaces what was known of that type; entries the CSMS had read as
    PEM keep their description."""
    new = _copy(state)
    if status not in ("Accepted", "NotFound"):
        return new
    known = new.get(certificate_type, []) + [
        e for t, entries in new.items() if t != certificate_type for e in entries
    ]
    entries: list[Json] = []
    for data in (reported or [])[:MAX_ENTRIES_PER_TYPE] if status == "Accepted" else []:
        if not isinstance(data, dict):
            continue
        exact = {k: data[k] for k in _FIELDS if k in data}
        entry: Json = {
            "id": entry_id(exact),
            "certificateType": certificate_type,
            "certificateHashData": exact,
            "reported": True,
            "reportedAt": now,
        }
        match = next((e for e in known if _matches(e, exact)), None)
        if match is not None:
            for field in ("installedAt", "subject", "issuer", "notAfter", "fingerprintSha256",
                          "knownHashes"):  # fmt: skip
                if field in match:
                    entry[field] = match[field]
        entries.append(entry)
    new[certificate_type] = entries
    return new


def after_delete(
    state: Mapping[str, list[Json]] | None, hash_data: Mapping[str, Any], status: str
) -> State:
    """The state after a DeleteCertificate answered `status`: Accepted or NotFound means
    the charger does not hold it (any more)."""
    new = _copy(state)
    if status not in ("Accepted", "NotFound"):
        return new
    return {t: [e for e in entries if not _matches(e, hash_data)] for t, entries in new.items()}


def find_entry(state: Mapping[str, list[Json]] | None, ref: str) -> Json | None:
    """The entry named by `ref`: its id, its certificate's SHA-256 fingerprint, or its
    serial number (when only one entry has it)."""
    entries = [e for entries in (state or {}).values() for e in entries]
    folded = ref.lower().replace(":", "")
    for entry in entries:
        if entry["id"] == ref or entry.get("fingerprintSha256") == folded:
            return entry
    serial = folded.removeprefix("0x").lstrip("0") or "0"
    by_serial = [e for e in entries if _key(e["certificateHashData"])[3] == serial]
    return by_serial[0] if len(by_serial) == 1 else None


def delete_hash_data(entry: Json, algorithm: str | None = None) -> Json:
    """What a DeleteCertificate for `entry` carries: the hash data the charger reported,
    exactly; or, asked for another algorithm, the CSMS's own computation in it."""
    data: Json = entry["certificateHashData"]
    if algorithm is None or algorithm == data.get("hashAlgorithm"):
        return dict(data)
    known = entry.get("knownHashes", {}).get(algorithm)
    if known is None or not known.get("issuerKeyHash"):
        raise KeyError(algorithm)
    return dict(known)


def public_entries(state: Mapping[str, list[Json]] | None) -> dict[str, list[Json]]:
    """The state as the API shows it: without the internal `knownHashes`."""
    return {
        t: [{k: v for k, v in e.items() if k != "knownHashes"} for e in entries]
        for t, entries in (state or {}).items()
    }


def history_entry(action: str, request: Json, response: Json, now: str) -> Json:
    """One answer for the history: what was asked, what the charger said."""
    entry: Json = {"action": action, "status": response.get("status"), "at": now}
    if "certificateType" in request:
        entry["certificateType"] = request["certificateType"]
    if action == "InstallCertificate":
        info = describe_certificate(str(request.get("certificate", "")))
        if info is not None:
            entry["subject"] = info.subject
            entry["fingerprintSha256"] = info.fingerprint_sha256
    elif action == "DeleteCertificate":
        entry["certificateHashData"] = request.get("certificateHashData")
    elif action == "GetInstalledCertificateIds":
        entry["count"] = len(response.get("certificateHashData") or [])
    return entry
