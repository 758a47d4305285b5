"""The independent charger of the tests of certificates on chargers, logs and signed
firmware: mobilityhouse `ocpp`'s ChargePoint, with a certificate store, log uploads and
signed firmware updates of its own, and the test certificates it is given (made here
with `cryptography`).

The charger computes certificateHashData its own way (from the issuer certificate's
PKCS#1 / X9.62 public key bytes), not with the CSMS's code, so the two meet only on
the Whitepaper's definition. Follow-up CALLs from a handler are started as tasks
(`tests.chargepoint.TaskChargePoint`): the library's read loop awaits handlers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from ocpp.routing import on
from ocpp.v16 import call, call_result

from edge.app import App
from tests.chargepoint import TaskChargePoint, ocpp_connect, reading
from tests.conftest import TIME_SCALE, ocpp_url
from tests.helpers import now_iso

TIMEOUT = 10 * TIME_SCALE
HASHES = {"SHA256": hashlib.sha256, "SHA384": hashlib.sha384, "SHA512": hashlib.sha512}

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


# --- certificates ------------------------------------------------------------------------


def make_key(kind: str = "rsa") -> Key:
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_certificate(
    cn: str,
    *,
    key: Key | None = None,
    issuer: tuple[x509.Certificate, Key] | None = None,
    ca: bool = True,
    serial: int | None = None,
) -> tuple[str, x509.Certificate, Key]:
    """A certificate (self-signed root unless `issuer`), its PEM with `\\n` line ends."""
    key = key or make_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer_name, signer = (subject, key) if issuer is None else (issuer[0].subject, issuer[1])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), cert, key


def _public_key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's contents: PKCS#1 for RSA, the X9.62 point for EC."""
    public = cert.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    return public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def hash_data(
    cert: x509.Certificate, algorithm: str, issuer: x509.Certificate | None = None
) -> dict[str, str]:
    """certificateHashData as a charger computes it (WP edition 3 wording)."""
    digest = HASHES[algorithm]
    issuer = issuer or cert
    return {
        "hashAlgorithm": algorithm,
        "issuerNameHash": digest(cert.issuer.public_bytes()).hexdigest(),
        "issuerKeyHash": digest(_public_key_bits(issuer)).hexdigest(),
        "serialNumber": format(cert.serial_number, "x"),
    }


def sign_firmware(data: bytes, key: Key) -> str:
    """The base64 signature of a firmware image, as the manufacturer makes it."""
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def verify_firmware(data: bytes, signature: str, certificate_pem: str) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(certificate_pem.encode())
        raw = base64.b64decode(signature, validate=True)
        public = cert.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(raw, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            assert isinstance(public, ec.EllipticCurvePublicKey)
            public.verify(raw, data, ec.ECDSA(hashes.SHA256()))
    except Exception:
        return False
    return True


# --- the charger -------------------------------------------------------------------------


class SecCP(TaskChargePoint):
    """A charger with a certificate store per type that reports hash data in
    `hash_algorithm`; `answers` overrides a status (e.g. InstallCertificate Rejected)."""

    def __init__(self, charger_id: str, connection: Any) -> None:
        super().__init__(charger_id, connection, response_timeout=5 * TIME_SCALE)
        self.store: dict[str, list[x509.Certificate]] = {
            "CentralSystemRootCertificate": [],
            "ManufacturerRootCertificate": [],
        }
        self.hash_algorithm = "SHA256"
        self.answers: dict[str, str] = {}
        self.requests: dict[str, list[dict[str, Any]]] = {}
        self.done: asyncio.Queue[str] = asyncio.Queue()
        self.upload: bytes = b"security log line 1\nline 2\n"

    def _note(self, action: str, request: dict[str, Any]) -> None:
        self.requests.setdefault(action, []).append(request)

    def ids(self, certificate_type: str) -> list[dict[str, str]]:
        return [hash_data(c, self.hash_algorithm) for c in self.store[certificate_type]]

    @on("InstallCertificate")
    def on_install(self, certificate_type: str, certificate: str) -> Any:
        self._note("InstallCertificate", {"type": certificate_type, "pem": certificate})
        status = self.answers.get("InstallCertificate", "Accepted")
        if status == "Accepted":
            try:
                cert = x509.load_pem_x509_certificate(certificate.encode())
            except ValueError:
                status = "Rejected"
            else:
                self.store[certificate_type].append(cert)
        if status == "Rejected" and certificate_type == "CentralSystemRootCertificate":
            self.spawn(self.security_event("InvalidCentralSystemCertificate"))
        return call_result.InstallCertificate(status=status)

    @on("GetInstalledCertificateIds")
    def on_get_ids(self, certificate_type: str) -> Any:
        self._note("GetInstalledCertificateIds", {"type": certificate_type})
        ids = self.ids(certificate_type)
        if not ids:
            return call_result.GetInstalledCertificateIds(status="NotFound")
        return call_result.GetInstalledCertificateIds(
            status="Accepted",
            certificate_hash_data=[
                {
                    "hash_algorithm": d["hashAlgorithm"],
                    "issuer_name_hash": d["issuerNameHash"],
                    "issuer_key_hash": d["issuerKeyHash"],
                    "serial_number": d["serialNumber"],
                }
                for d in ids
            ],
        )

    @on("DeleteCertificate")
    def on_delete(self, certificate_hash_data: dict[str, str]) -> Any:
        wanted = {
            "hashAlgorithm": certificate_hash_data["hash_algorithm"],
            "issuerNameHash": certificate_hash_data["issuer_name_hash"],
            "issuerKeyHash": certificate_hash_data["issuer_key_hash"],
            "serialNumber": certificate_hash_data["serial_number"],
        }
        self._note("DeleteCertificate", wanted)
        if "DeleteCertificate" in self.answers:
            return call_result.DeleteCertificate(status=self.answers["DeleteCertificate"])
        for certificates in self.store.values():
            for cert in certificates:
                # Exact comparison: a CSMS that rewrites the reported values fails here.
                if hash_data(cert, wanted["hashAlgorithm"]) == wanted:
                    certificates.remove(cert)
                    return call_result.DeleteCertificate(status="Accepted")
        return call_result.DeleteCertificate(status="NotFound")

    @on("ExtendedTriggerMessage")
    def on_extended_trigger(self, requested_message: str, connector_id: int | None = None) -> Any:
        self._note("ExtendedTriggerMessage", {"requestedMessage": requested_message,
                                              "connectorId": connector_id})  # fmt: skip
        return call_result.ExtendedTriggerMessage(
            status=self.answers.get("ExtendedTriggerMessage", "Accepted")
        )

    @on("GetLog")
    def on_get_log(
        self,
        log: dict[str, Any],
        log_type: str,
        request_id: int,
        retries: int | None = None,
        retry_interval: int | None = None,
    ) -> Any:
        self._note("GetLog", {"log": log, "logType": log_type, "requestId": request_id})
        status = self.answers.get("GetLog", "Accepted")
        if status == "Accepted":
            self.spawn(self._upload(log["remote_location"], request_id))
        return call_result.GetLog(status=status, filename="security.log")

    async def _upload(self, location: str, request_id: int) -> None:
        """Uploads over HTTP to the edge for real; elsewhere (a test tool's configured
        location that does not exist) it reports the upload done, as OCTT's charger does."""
        await self.log_status("Uploading", request_id)
        ok = True
        if location.startswith("http://127.0.0.1:"):
            url = location.rstrip("/") + "/security.log"
            async with aiohttp.ClientSession() as session, session.put(url, data=self.upload) as r:
                ok = r.status == 201
        await self.log_status("Uploaded" if ok else "UploadFailure", request_id)
        await self.done.put(f"GetLog {request_id}")

    @on("SignedUpdateFirmware")
    def on_signed_update(
        self,
        request_id: int,
        firmware: dict[str, Any],
        retries: int | None = None,
        retry_interval: int | None = None,
    ) -> Any:
        self._note("SignedUpdateFirmware", {"requestId": request_id, "firmware": firmware,
                                            "retries": retries})  # fmt: skip
        status = self.answers.get("SignedUpdateFirmware", "Accepted")
        if status == "Accepted":
            self.spawn(self._update(firmware, request_id))
        return call_result.SignedUpdateFirmware(status=status)

    async def _update(self, firmware: dict[str, Any], request_id: int) -> None:
        await self.firmware_status("Downloading", request_id)
        async with (
            aiohttp.ClientSession() as session,
            session.get(firmware["location"]) as resp,
        ):
            image = await resp.read() if resp.status == 200 else None
        if image is None:
            await self.firmware_status("DownloadFailed", request_id)
            await self.done.put(f"SignedUpdateFirmware {request_id}")
            return
        await self.firmware_status("Downloaded", request_id)
        if not verify_firmware(image, firmware["signature"], firmware["signing_certificate"]):
            await self.firmware_status("InvalidSignature", request_id)
            await self.security_event("InvalidFirmwareSignature")
            await self.done.put(f"SignedUpdateFirmware {request_id}")
            return
        await self.firmware_status("SignatureVerified", request_id)
        await self.status(0, "Unavailable")
        await self.firmware_status("Installing", request_id)
        await self.firmware_status("InstallRebooting", request_id)
        await self.done.put(f"SignedUpdateFirmware {request_id} rebooting")

    # --- what the charger sends ----------------------------------------------------------

    async def boot(self) -> str:
        result = await self.call(
            call.BootNotification(charge_point_model="SecModel", charge_point_vendor="SecVendor")
        )
        return str(result.status)

    async def status(self, connector_id: int, status: str) -> None:
        await self.call(
            call.StatusNotification(connector_id=connector_id, error_code="NoError", status=status)
        )

    async def security_event(self, event_type: str, tech_info: str | None = None) -> None:
        await self.call(
            call.SecurityEventNotification(
                type=event_type, timestamp=now_iso(), tech_info=tech_info
            )
        )

    async def log_status(self, status: str, request_id: int) -> None:
        await self.call(call.LogStatusNotification(status=status, request_id=request_id))

    async def call_log_status(self, status: str) -> None:
        """A LogStatusNotification without requestId (the library insists on one)."""
        await self.call(call.LogStatusNotification(status=status, request_id=None))

    async def firmware_status(self, status: str, request_id: int) -> None:
        await self.call(call.SignedFirmwareStatusNotification(status=status, request_id=request_id))


@contextlib.asynccontextmanager
async def sec_charger(app: App, charger_id: str, *, boot: bool = True) -> AsyncIterator[SecCP]:
    """A connected SecCP with its read loop running, booted and Available unless `boot`
    is false; closed on exit."""
    async with ocpp_connect(ocpp_url(app, charger_id)) as ws, reading(SecCP(charger_id, ws)) as cp:
        if boot:
            async with asyncio.timeout(TIMEOUT):
                assert await cp.boot() == "Accepted"
                await cp.status(0, "Available")
                await cp.status(1, "Available")
        yield cp
