"""OCPP 1.6 Firmware Management profile: status notifications, firmware updates, diagnostics.

Charger → CSMS: FirmwareStatusNotification, DiagnosticsStatusNotification.
CSMS → charger: UpdateFirmware (`update_firmware`: a signed, expiring link to an image
the edge serves) and GetDiagnostics (`request_diagnostics`: a one-off upload grant over
HTTP or FTP); both also raw through the API. The files are `edge.files`.

The charger reports each step of a firmware update or diagnostics upload; the
current state is kept on the charger and every step is journalled as history.
`Idle` is legal only in answer to a TriggerMessage (OCPP 1.6 §5.17).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from edge.chargers import Charger
from edge.chargers.document import StatusReport
from edge.events import FirmwareStatusChanged
from edge.features.base import Handler, Payload
from edge.files.store import FileStore
from edge.operations import Conflict, NotFound, OperationError, Origin, Outcome, Sender
from edge.services import Services

__all__ = ["HANDLERS", "record_firmware_status", "request_diagnostics", "update_firmware"]


def record_firmware_status(
    svc: Services, charger: Charger, req: Payload, *, signed: bool = False
) -> None:
    """Keep a charger's latest firmware status (the Security Whitepaper's signed
    firmware statuses too, marked `signed`)."""
    status = cast(StatusReport, {**req, "at": svc.now_text()})
    if signed:
        status["signed"] = True
    svc.chargers.update(charger, firmwareStatus=status)


async def _record_status(svc: Services, charger: Charger, kind: str, req: Payload) -> None:
    if kind == "FirmwareStatusNotification":
        record_firmware_status(svc, charger, req)
    else:
        status = cast(StatusReport, {**req, "at": svc.now_text()})
        svc.chargers.update(charger, diagnosticsStatus=status)
    await svc.record_for_cloud(charger.id, kind, req)
    svc.publish(
        FirmwareStatusChanged(
            charger_id=charger.id, at=svc.now(), action=kind, status=req["status"]
        )
    )


async def firmware_status_notification(svc: Services, charger: Charger, req: Payload) -> Payload:
    await _record_status(svc, charger, "FirmwareStatusNotification", req)
    return {}


async def diagnostics_status_notification(svc: Services, charger: Charger, req: Payload) -> Payload:
    await _record_status(svc, charger, "DiagnosticsStatusNotification", req)
    return {}


HANDLERS: dict[str, Handler] = {
    "DiagnosticsStatusNotification": diagnostics_status_notification,
    "FirmwareStatusNotification": firmware_status_notification,
}


# --- operations ---------------------------------------------------------------------------


async def update_firmware(
    ops: Sender,
    files: FileStore,
    charger: Charger,
    *,
    name: str,
    retrieve_date: str | None = None,
    retries: int | None = None,
    retry_interval: int | None = None,
    origin: Origin,
) -> tuple[Outcome, str]:
    """UpdateFirmware with a signed link to the firmware image `name`; the answer and link.

    Raises:
        NotFound: no firmware image of that name (code "unknown_file").
        OperationError: see `Operations.send`.
    """
    if files.firmware_path(name) is None:
        raise NotFound(f"no firmware {name!r}", code="unknown_file")
    location = files.firmware_url(name, charger.id)
    payload: Payload = {
        "location": location,
        "retrieveDate": retrieve_date or ops.services.now_text(),
    }
    if retries is not None:
        payload["retries"] = retries
    if retry_interval is not None:
        payload["retryInterval"] = retry_interval
    outcome = await ops.send(charger, "UpdateFirmware", payload, origin=origin)
    return outcome, location


async def request_diagnostics(
    ops: Sender,
    files: FileStore,
    charger: Charger,
    *,
    protocol: str = "http",
    start_time: str | None = None,
    stop_time: str | None = None,
    retries: int | None = None,
    retry_interval: int | None = None,
    origin: Origin,
) -> tuple[Outcome, str, datetime]:
    """GetDiagnostics with a fresh upload grant; the answer, the upload location and until
    when it is valid. The grant is revoked when the call fails.

    Raises:
        Conflict: FTP asked for and no FTP listener configured (code "ftp_disabled").
        OperationError: see `Operations.send`.
    """
    if protocol == "ftp" and files.ftp_address is None:
        raise Conflict("no [ftp] listener is configured", code="ftp_disabled")
    grant = files.create_grant(charger.id, protocol)
    location = files.upload_location(grant)
    payload: Payload = {"location": location}
    for key, value in (
        ("startTime", start_time),
        ("stopTime", stop_time),
        ("retries", retries),
        ("retryInterval", retry_interval),
    ):
        if value is not None:
            payload[key] = value
    try:
        outcome = await ops.send(charger, "GetDiagnostics", payload, origin=origin)
    except OperationError:
        files.revoke(grant)
        raise
    expires = ops.services.now() + timedelta(seconds=files.config.link_validity)
    return outcome, location, expires
