"""The operator's Security Whitepaper operations with a friendly body: the CSMS fills in
what it knows (the hash data a charger reported, its own upload location, a signed link
to a firmware file it hosts, a requestId) and sends through the pipeline, whose
recorders (`edge.features.security`) keep the effects — the same as for a raw call.

Nothing is refused here that the schema allows: certification tools send odd values
on purpose (TC_078 installs a certificate the charger must reject, TC_081 a firmware
with an invalid signature). What looks wrong comes back as a warning instead.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from edge.chargers import Charger
from edge.features.base import Payload, Problem
from edge.features.security import next_request_id
from edge.files.store import CHUNK, FileStore
from edge.operations import Conflict, NotFound, OperationError, Origin, Outcome, Sender
from edge.security import installed
from edge.times import from_epoch, parse_time, to_epoch

__all__ = [
    "LogRequest",
    "delete_certificate",
    "firmware_signature_check",
    "get_installed_certificate_ids",
    "install_certificate",
    "request_log",
    "signed_update_firmware",
]


def _with_warnings(outcome: Outcome, warnings: list[Problem]) -> Outcome:
    return Outcome(outcome.response, [*outcome.warnings, *warnings]) if warnings else outcome


# --- certificates ----------------------------------------------------------------------------


async def install_certificate(
    ops: Sender, charger: Charger, *, certificate_type: str, certificate: str, origin: Origin
) -> tuple[Outcome, installed.CertificateInfo | None]:
    """InstallCertificate of a PEM certificate, its line ends made `\\n`; the answer and
    what the CSMS read of the certificate (None: it does not parse, sent all the same)."""
    pem = installed.normalize_pem(certificate)
    info = installed.describe_certificate(pem)
    payload = {"certificateType": certificate_type, "certificate": pem}
    outcome = await ops.send(charger, "InstallCertificate", payload, origin=origin)
    warnings: list[Problem] = []
    if info is None:
        warnings.append(
            {"field": "certificate", "message": "not a PEM X.509 certificate the CSMS can read",
             "severity": "warning"}
        )  # fmt: skip
    return _with_warnings(outcome, warnings), info


async def get_installed_certificate_ids(
    ops: Sender, charger: Charger, *, certificate_type: str, origin: Origin
) -> Outcome:
    """GetInstalledCertificateIds of one type; its answer replaces what is known of it."""
    payload = {"certificateType": certificate_type}
    return await ops.send(charger, "GetInstalledCertificateIds", payload, origin=origin)


async def delete_certificate(
    ops: Sender, charger: Charger, *, ref: str, hash_algorithm: str | None, origin: Origin
) -> tuple[Outcome, Payload]:
    """DeleteCertificate of a certificate the CSMS knows the charger holds, named by its id,
    fingerprint or serial number (`edge.security.installed.find_entry`); the hash data as
    the charger reported them, or computed in `hash_algorithm` when asked.

    Raises:
        NotFound: no such certificate known on the charger (code "unknown_certificate"),
            or it cannot be named in that algorithm (code "unknown_hash").
        OperationError: see `Operations.send`.
    """
    entry = installed.find_entry(charger.doc.get("installedCertificates"), ref)
    if entry is None:
        raise NotFound(f"no certificate {ref!r} known on {charger.id}", code="unknown_certificate")
    try:
        data = installed.delete_hash_data(entry, hash_algorithm)
    except KeyError:
        raise NotFound(
            f"the CSMS cannot compute {hash_algorithm} hash data for this certificate; "
            "ask the charger (GetInstalledCertificateIds) or send them raw",
            code="unknown_hash",
        ) from None
    outcome = await ops.send(
        charger, "DeleteCertificate", {"certificateHashData": data}, origin=origin
    )
    return outcome, data


# --- logs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogRequest:
    """What a GetLog sent: the answer, the payload, and until when an upload grant of the
    edge is valid (None when the operator gave the location)."""

    outcome: Outcome
    payload: Payload
    expires: datetime | None


async def request_log(
    ops: Sender,
    files: FileStore,
    charger: Charger,
    *,
    log_type: str,
    request_id: int | None = None,
    remote_location: str | None = None,
    protocol: str = "http",
    oldest: str | None = None,
    latest: str | None = None,
    retries: int | None = None,
    retry_interval: int | None = None,
    origin: Origin,
) -> LogRequest:
    """GetLog; without `remote_location` the charger uploads to the edge (a one-off grant,
    like GetDiagnostics), the files then listed with their logType and requestId. The
    grant is revoked when the call fails or the charger does not accept.

    Raises:
        Conflict: FTP asked for and no FTP listener configured (code "ftp_disabled").
        OperationError: see `Operations.send`.
    """
    if request_id is None:
        request_id = next_request_id(charger)
    grant = None
    if remote_location is None:
        if protocol == "ftp" and files.ftp_address is None:
            raise Conflict("no [ftp] listener is configured", code="ftp_disabled")
        # Uploads retried later must still find the grant valid.
        retrying = (retries or 0) * (retry_interval or 0)
        grant = files.create_grant(
            charger.id, protocol, log_type=log_type, request_id=request_id,
            extra_validity=retrying,
        )  # fmt: skip
        remote_location = files.upload_location(grant)
    log_parameters: dict[str, Any] = {"remoteLocation": remote_location}
    if oldest is not None:
        log_parameters["oldestTimestamp"] = oldest
    if latest is not None:
        log_parameters["latestTimestamp"] = latest
    payload: Payload = {"logType": log_type, "requestId": request_id, "log": log_parameters}
    if retries is not None:
        payload["retries"] = retries
    if retry_interval is not None:
        payload["retryInterval"] = retry_interval
    try:
        outcome = await ops.send(charger, "GetLog", payload, origin=origin)
    except OperationError:
        if grant is not None:
            files.revoke(grant)
        raise
    expires = None
    if grant is not None:
        if outcome.response.get("status") not in ("Accepted", "AcceptedCanceled"):
            files.revoke(grant)
        else:
            expires = from_epoch(grant.expires)
    return LogRequest(outcome, payload, expires)


# --- signed firmware -------------------------------------------------------------------------


def firmware_signature_check(path: Path, signature: str, certificate_pem: str) -> str:
    """Whether `signature` (base64) signs the file with the certificate's key, as the
    charger will check it (SHA-256 with RSA PKCS#1 v1.5 or ECDSA): "valid", "invalid",
    or "unchecked" (the certificate or signature cannot be read, or another key type).
    Reads the whole file: run it in a thread."""
    try:
        cert = x509.load_pem_x509_certificate(certificate_pem.encode())
        raw = base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error):
        return "unchecked"
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return "unchecked"
    # Hashed in chunks: an image may be hundreds of MB, more than a Pi should hold.
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
    digest, prehashed = sha.digest(), Prehashed(hashes.SHA256())
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(raw, digest, padding.PKCS1v15(), prehashed)
        else:
            public.verify(raw, digest, ec.ECDSA(prehashed))
    except InvalidSignature:
        return "invalid"
    return "valid"


async def signed_update_firmware(
    ops: Sender,
    files: FileStore,
    charger: Charger,
    *,
    name: str,
    signing_certificate: str,
    signature: str,
    retrieve_date_time: str | None = None,
    install_date_time: str | None = None,
    request_id: int | None = None,
    retries: int | None = None,
    retry_interval: int | None = None,
    origin: Origin,
) -> tuple[Outcome, Payload, str]:
    """SignedUpdateFirmware of the hosted firmware file `name` (a signed, expiring link),
    with the manufacturer's signing certificate and signature as given; the answer, the
    payload sent and the edge's check of the signature ("valid", "invalid",
    "unchecked"; an invalid one is sent all the same, with a warning).

    Raises:
        NotFound: no firmware file of that name (code "unknown_file").
        OperationError: see `Operations.send`.
    """
    path = files.firmware_path(name)
    if path is None:
        raise NotFound(f"no firmware {name!r}", code="unknown_file")
    certificate = installed.normalize_pem(signing_certificate)
    check = await asyncio.to_thread(firmware_signature_check, path, signature, certificate)
    retrieve = retrieve_date_time or ops.services.now_text()
    # A download scheduled later, or retried, must still find a valid link.
    valid_from = to_epoch(parse_time(retrieve)) + (retries or 0) * (retry_interval or 0)
    firmware: dict[str, Any] = {
        "location": files.firmware_url(name, charger.id, valid_from=valid_from),
        "retrieveDateTime": retrieve,
        "signingCertificate": certificate,
        "signature": signature,
    }
    if install_date_time is not None:
        firmware["installDateTime"] = install_date_time
    payload: Payload = {
        "requestId": next_request_id(charger) if request_id is None else request_id,
        "firmware": firmware,
    }
    if retries is not None:
        payload["retries"] = retries
    if retry_interval is not None:
        payload["retryInterval"] = retry_interval
    outcome = await ops.send(charger, "SignedUpdateFirmware", payload, origin=origin)
    warnings: list[Problem] = []
    if check == "invalid":
        warnings.append(
            {"field": "firmware.signature", "severity": "warning",
             "message": f"the signature does not verify {name!r} with the signing "
             "certificate's key (SHA-256); the charger should answer InvalidSignature"}
        )  # fmt: skip
    elif check == "unchecked":
        warnings.append(
            {"field": "firmware.signingCertificate", "severity": "warning",
             "message": "the CSMS could not check the signature (unreadable certificate "
             "or signature, or a key type it does not check)"}
        )  # fmt: skip
    return _with_warnings(outcome, warnings), payload, check
