"""OCPP 1.6 Security Whitepaper: what chargers send, and what the CSMS keeps of its calls.

Charger → CSMS: SecurityEventNotification, LogStatusNotification,
SignedFirmwareStatusNotification (SignCertificate: `edge.features.certificates`).
CSMS → charger (recorded here, sent by the flows in `edge.features.security_flows` or raw
through the API): InstallCertificate, GetInstalledCertificateIds, DeleteCertificate,
GetLog, SignedUpdateFirmware; ExtendedTriggerMessage is `edge.features.remote_trigger`'s.

Security events are the charger's audit trail and SHALL be confirmed (WP
A04.FR.02): each is journalled before the answer, then logged, counted and published
like the edge's own (`edge.security.events`).

Bookkeeping, from the charger's answers only (one code path for every caller: the
recorders run for the operator's friendly routes, raw `/ocpp/{Action}` calls and the
cloud's relayed ones alike):

* `installedCertificates` / `certificateHistory`: what the charger holds
  (`edge.security.installed`);
* `logRequests`: each GetLog by requestId — the answer, then every LogStatusNotification;
* `signedFirmwareRequests`: each SignedUpdateFirmware by requestId — the answer, then every
  SignedFirmwareStatusNotification (the latest also stays `firmwareStatus`, marked signed).

Requests are kept per charger up to `REQUESTS_KEPT`, the newest; the journal has them all.
"""

from __future__ import annotations

import logging
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from edge.chargers import Charger
from edge.chargers.document import StatusReport
from edge.features.base import Handler, Payload, Recorder
from edge.features.firmware import record_firmware_status
from edge.security import events, installed
from edge.security.events import is_critical, note_security_event
from edge.services import Services

__all__ = ["HANDLERS", "RECORDERS", "next_request_id", "security_detail"]

log = logging.getLogger(__name__)

REQUESTS_KEPT = 20
STATUS_HISTORY_KEPT = 30
# Answers to GetLog / SignedUpdateFirmware after which the charger works on the request.
ACCEPTED = ("Accepted", "AcceptedCanceled")
# Statuses after which a request is over (nothing more is expected for it).
LOG_FINAL = frozenset(
    {"Uploaded", "UploadFailure", "BadMessage", "NotSupportedOperation", "PermissionDenied"}
)
FIRMWARE_FINAL = frozenset(
    {"Installed", "InstallationFailed", "InstallVerificationFailed", "InvalidSignature",
     "DownloadFailed"}
)  # fmt: skip


async def security_event_notification(svc: Services, charger: Charger, req: Payload) -> Payload:
    critical = is_critical(req["type"])
    outbox = svc.for_cloud(charger.id, "SecurityEventNotification", req)
    await svc.journal.add_event(
        charger_id=charger.id,
        kind=events.CHARGER_KIND,
        data={**req, "critical": critical},
        at=svc.now_text(),
        outbox=outbox,
    )
    note_security_event(
        svc, charger.id, req["type"], req.get("techInfo"), critical, source="charger"
    )
    return {}


async def log_status_notification(svc: Services, charger: Charger, req: Payload) -> Payload:
    svc.chargers.update(charger, logStatus=cast(StatusReport, {**req, "at": svc.now_text()}))
    requests = _with_status(svc, charger.doc.get("logRequests", {}), req, LOG_FINAL)
    if requests is not None:
        svc.chargers.update(charger, logRequests=requests)
    if req["status"] in ("UploadFailure", "BadMessage", "PermissionDenied"):
        log.warning("charger %s: log upload %s: %s", charger.id, req.get("requestId"),
                    req["status"])  # fmt: skip
    await svc.record_for_cloud(charger.id, "LogStatusNotification", req)
    return {}


async def signed_firmware_status_notification(
    svc: Services, charger: Charger, req: Payload
) -> Payload:
    record_firmware_status(svc, charger, req, signed=True)
    requests = _with_status(svc, charger.doc.get("signedFirmwareRequests", {}), req, FIRMWARE_FINAL)
    if requests is not None:
        svc.chargers.update(charger, signedFirmwareRequests=requests)
    if req["status"] in ("InvalidSignature", "InstallVerificationFailed"):
        log.warning("charger %s: signed firmware update %s: %s", charger.id,
                    req.get("requestId"), req["status"])  # fmt: skip
    await svc.record_for_cloud(charger.id, "SignedFirmwareStatusNotification", req)
    return {}


def _with_status(
    svc: Services, requests: dict[str, Any], req: Payload, final: frozenset[str]
) -> dict[str, Any] | None:
    """The requests with a status notification applied to its request: the one named by
    requestId (one the CSMS did not send is added), or without one (the Whitepaper
    makes it optional) the newest request the charger accepted and has not finished.
    None: nothing to change (an Idle without requestId answers a trigger, not a request)."""
    request_id = req.get("requestId")
    if request_id is None:
        running = [
            r
            for r in requests.values()
            if r.get("status") not in final and r.get("response") in (None, *ACCEPTED)
        ]
        if req["status"] == "Idle" or not running:
            return None
        key = str(max(running, key=lambda r: r.get("requestedAt", ""))["requestId"])
    else:
        key = str(request_id)
    now = svc.now_text()
    entry = dict(requests.get(key) or {"requestId": request_id, "history": []})
    entry["status"] = req["status"]
    entry["statusAt"] = now
    entry["history"] = [*entry.get("history", []), {"status": req["status"], "at": now}][
        -STATUS_HISTORY_KEPT:
    ]
    return _trimmed({**requests, key: entry})


def _trimmed(requests: dict[str, Any]) -> dict[str, Any]:
    if len(requests) <= REQUESTS_KEPT:
        return requests
    newest = sorted(
        requests.items(),
        key=lambda item: item[1].get("requestedAt") or item[1].get("statusAt") or "",
    )[-REQUESTS_KEPT:]
    return dict(newest)


# --- effects of the CSMS's calls ------------------------------------------------------------


def _certificates_recorder(action: str) -> Recorder:
    def record(svc: Services, charger: Charger, req: Payload, res: Payload) -> None:
        now = svc.now_text()
        state = charger.doc.get("installedCertificates")
        status = str(res.get("status"))
        if action == "InstallCertificate":
            new = installed.after_install(
                state, str(req["certificateType"]), str(req["certificate"]), status, now
            )
        elif action == "GetInstalledCertificateIds":
            new = installed.after_report(
                state, str(req["certificateType"]), status, res.get("certificateHashData"), now
            )
        else:
            new = installed.after_delete(state, req["certificateHashData"], status)
        history = [
            *charger.doc.get("certificateHistory", []),
            installed.history_entry(action, req, res, now),
        ][-installed.HISTORY_LIMIT :]
        svc.chargers.update(charger, installedCertificates=new, certificateHistory=history)
        if action != "GetInstalledCertificateIds" and status != "Accepted":
            log.info("charger %s answered %s %s", charger.id, action, status)

    return record


def _request_high(charger: Charger, request_id: object) -> int:
    high = charger.doc.get("securityRequestIdHigh", 0)
    return max(high, request_id) if isinstance(request_id, int) else high


def record_get_log(svc: Services, charger: Charger, req: Payload, res: Payload) -> None:
    log_parameters = req.get("log", {})
    entry: dict[str, Any] = {
        "requestId": req["requestId"],
        "logType": req["logType"],
        "remoteLocation": _masked(log_parameters.get("remoteLocation")),
        "requestedAt": svc.now_text(),
        "response": res.get("status"),
        "filename": res.get("filename"),
        "status": None,
        "history": [],
    }
    for key in ("oldestTimestamp", "latestTimestamp"):
        if key in log_parameters:
            entry[key] = log_parameters[key]
    requests = _with_request(charger.doc.get("logRequests", {}), req["requestId"], entry)
    svc.chargers.update(
        charger,
        logRequests=_trimmed(requests),
        securityRequestIdHigh=_request_high(charger, req["requestId"]),
    )


def record_signed_update_firmware(
    svc: Services, charger: Charger, req: Payload, res: Payload
) -> None:
    firmware = req.get("firmware", {})
    location = str(firmware.get("location", ""))
    entry: dict[str, Any] = {
        "requestId": req["requestId"],
        "location": location,
        "file": _hosted_file(location),
        "retrieveDateTime": firmware.get("retrieveDateTime"),
        "installDateTime": firmware.get("installDateTime"),
        "requestedAt": svc.now_text(),
        "response": res.get("status"),
        "status": None,
        "history": [],
    }
    info = installed.describe_certificate(str(firmware.get("signingCertificate", "")))
    if info is not None:
        entry["signingCertificate"] = {
            "subject": info.subject,
            "issuer": info.issuer,
            "notAfter": info.not_after,
            "fingerprintSha256": info.fingerprint_sha256,
        }
    requests = _with_request(charger.doc.get("signedFirmwareRequests", {}), req["requestId"], entry)
    svc.chargers.update(
        charger,
        signedFirmwareRequests=_trimmed(requests),
        securityRequestIdHigh=_request_high(charger, req["requestId"]),
    )
    if res.get("status") in ("InvalidCertificate", "RevokedCertificate"):
        log.warning("charger %s refused the firmware signing certificate: %s", charger.id,
                    res.get("status"))  # fmt: skip


def _with_request(
    requests: dict[str, Any], request_id: object, entry: dict[str, Any]
) -> dict[str, Any]:
    """The requests with a new one. A charger may send its first status before the CSMS
    has read its answer (both race on the connection): statuses that came first for this
    requestId, with no request recorded yet, are kept."""
    key = str(request_id)
    early = requests.get(key)
    if early is not None and "requestedAt" not in early:
        entry = {**entry, "status": early.get("status"), "statusAt": early.get("statusAt"),
                 "history": early.get("history", [])}  # fmt: skip
    return {**requests, key: entry}


def _masked(location: object) -> object:
    if not isinstance(location, str):
        return location
    parts = urlsplit(location)
    if parts.password:
        return location.replace(f":{parts.password}@", ":***@", 1)
    return location


def _hosted_file(location: str) -> str | None:
    """The name of the edge's own firmware file a location links to, if it does."""
    path = urlsplit(location).path
    prefix = "/files/firmware/"
    return unquote(path[len(prefix) :]) if path.startswith(prefix) else None


def next_request_id(charger: Charger) -> int:
    """A requestId for a GetLog or SignedUpdateFirmware the operator did not number."""
    used = [
        int(key)
        for field in ("logRequests", "signedFirmwareRequests")
        for key in cast(dict[str, Any], charger.doc.get(field, {}))
        if key.lstrip("-").isdigit()
    ]
    return max([charger.doc.get("securityRequestIdHigh", 0), *used]) + 1


def security_detail(charger: Charger) -> dict[str, Any]:
    """The charger detail's security fields (`GET /api/chargers/{id}`)."""
    doc = charger.doc
    return {
        "installedCertificates": installed.public_entries(doc.get("installedCertificates")),
        "certificateHistory": doc.get("certificateHistory", []),
        "logStatus": doc.get("logStatus"),
        "logRequests": doc.get("logRequests", {}),
        "signedFirmwareRequests": doc.get("signedFirmwareRequests", {}),
    }


HANDLERS: dict[str, Handler] = {
    "LogStatusNotification": log_status_notification,
    "SecurityEventNotification": security_event_notification,
    "SignedFirmwareStatusNotification": signed_firmware_status_notification,
}
RECORDERS: dict[str, Recorder] = {
    "DeleteCertificate": _certificates_recorder("DeleteCertificate"),
    "GetInstalledCertificateIds": _certificates_recorder("GetInstalledCertificateIds"),
    "GetLog": record_get_log,
    "InstallCertificate": _certificates_recorder("InstallCertificate"),
    "SignedUpdateFirmware": record_signed_update_firmware,
}
