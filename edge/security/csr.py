"""Checking a charger's certificate signing request (SignCertificate, Security WP A02).

What is never relaxed: the CSR parses as PEM, its signature verifies (the charger holds
the key), and the key is RSA of at least 2048 bits or EC of at least 224 bits (WP §2.4).

The subject rules (WP A00.FR.404/405: CN = the charger's serial number, O = the CPO's
name) are relaxed with `[security] relaxed_subject_checks = true`: OCTT's CSR carries no
usable CN or O (its quirk 2). We accept as CN the charger's identity or the serial
number it sent in BootNotification, since profile 3 accepts both at the handshake.

The subject of the certificate we issue never depends on the relaxation: its CN is the
CSR's when that is allowed, else the charger's serial number (else its identity), so
every certificate the site CA signs passes the profile 3 check; O is the CPO name when
configured, else the CSR's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

__all__ = ["CsrCheck", "check_csr"]

MIN_RSA_BITS = 2048
MIN_EC_BITS = 224


@dataclass(frozen=True, slots=True)
class CsrCheck:
    """The verdict on a CSR: `refusals` empty means it may be signed."""

    refusals: list[str] = field(default_factory=list)
    relaxed: list[str] = field(default_factory=list)
    """Subject rules it breaks that `relaxed_subject_checks` let pass."""
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey | None = None
    subject: x509.Name | None = None
    """The subject to issue the certificate with."""

    @property
    def ok(self) -> bool:
        return not self.refusals


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    if not values:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode(errors="replace")


def check_csr(
    pem: str,
    *,
    identity: str,
    serial_numbers: Sequence[str] = (),
    cpo_name: str | None = None,
    relaxed: bool = False,
) -> CsrCheck:
    """Check `pem` from charger `identity` (with the serial numbers it booted with).

    Returns the verdict, never raises: a charger's bad CSR is its problem, answered
    Rejected with the reasons logged.
    """
    try:
        csr = x509.load_pem_x509_csr(pem.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return CsrCheck(refusals=["not a PEM certificate signing request"])
    try:
        signed = csr.is_signature_valid
    except Exception:  # an unsupported signature algorithm
        signed = False
    if not signed:
        return CsrCheck(refusals=["the CSR's signature does not verify"])
    try:
        key = csr.public_key()
    except Exception:
        return CsrCheck(refusals=["the CSR's public key cannot be read"])
    refusals: list[str] = []
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            refusals.append(f"RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} needed")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.key_size < MIN_EC_BITS:
            refusals.append(f"EC key of {key.curve.key_size} bits; at least {MIN_EC_BITS} needed")
    else:
        refusals.append(f"{type(key).__name__.removeprefix('_')}: only RSA or EC keys")
    if refusals:
        return CsrCheck(refusals=refusals)

    serials = [s for s in serial_numbers if s]
    allowed = [identity, *serials]
    cn = _attr(csr.subject, NameOID.COMMON_NAME)
    org = _attr(csr.subject, NameOID.ORGANIZATION_NAME)
    subject_problems: list[str] = []
    if cn not in allowed:
        subject_problems.append(
            f"subject CN {cn!r} is neither the charger's identity nor its serial number"
        )
    if cpo_name is not None and org != cpo_name:
        subject_problems.append(f"subject O {org!r} is not the CPO name {cpo_name!r}")
    if subject_problems and not relaxed:
        return CsrCheck(refusals=subject_problems)

    issued_cn = cn if cn in allowed else (serials[0] if serials else identity)
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, issued_cn[:64])]
    issued_org = cpo_name if cpo_name is not None else org
    if issued_org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, issued_org[:64]))
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    return CsrCheck(relaxed=subject_problems, public_key=key, subject=x509.Name(attrs))
