"""Certificates on chargers, their logs and signed firmware (OCPP 1.6 Security Whitepaper).

Certificates a charger holds (`edge.security.installed`):

    GET    /api/chargers/{id}/certificates          what the CSMS knows it holds, and history
    POST   /api/chargers/{id}/certificates          InstallCertificate {certificateType,
                                                    certificate (PEM)}
    POST   /api/chargers/{id}/certificates/query    GetInstalledCertificateIds [{certificateType}]
    DELETE /api/chargers/{id}/certificates/{ref}    DeleteCertificate [?hashAlgorithm=SHA384]

Logs (GetLog; the charger uploads to the edge unless `log.remoteLocation` is given):

    POST /api/chargers/{id}/logs                    {logType, requestId?, log?, protocol?, ...}
    GET  /api/chargers/{id}/logs                    its GetLog requests with status and files
    GET  /api/logs[?chargerId=&requestId=]          uploaded log files
    GET  /api/logs/{charger_id}/{name}              one uploaded file

Signed firmware (SignedUpdateFirmware of a firmware file the edge hosts):

    POST /api/chargers/{id}/signed-firmware-update  {file, signingCertificate, signature, ...}
    GET  /api/chargers/{id}/signed-firmware         its requests with their statuses

Each sends through `edge.operations` (admission, schema, audit); the recorders keep the
effects, the same as for `POST /api/chargers/{id}/ocpp/{Action}` with a raw payload.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from edge.features import security_flows
from edge.features.security import security_detail
from edge.files.store import FileStore, valid_name
from edge.operations import Origin
from edge.security.installed import CERTIFICATE_TYPES, HASH_ALGORITHMS, public_entries
from edge.times import format_time
from edge.web.common import (
    ApiError,
    Json,
    body_int,
    body_time,
    charger_or_404,
    json_body,
    json_response,
    operations,
    outcome_json,
    reject_unknown_fields,
    services,
)
from edge.web.files import FILES, upload_protocol

__all__ = ["add_routes"]

LOG_TYPES = ("DiagnosticsLog", "SecurityLog")


def _files(request: web.Request) -> FileStore:
    files = request.app.get(FILES)
    if files is None:
        raise ApiError(409, "no_file_store", "this service hosts no files")
    return files


def _string(body: Json, key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ApiError(400, "invalid_request", f"{key} must be a non-empty string")
    return value


def _choice(body: Json, key: str, choices: tuple[str, ...]) -> str:
    value = body.get(key)
    if value not in choices:
        raise ApiError(400, "invalid_request", f"{key} must be one of {', '.join(choices)}")
    return str(value)


# --- certificates ----------------------------------------------------------------------------


async def list_certificates(request: web.Request) -> web.Response:
    charger = charger_or_404(services(request), request.match_info["charger_id"])
    doc = charger.doc
    return json_response(
        {
            "installedCertificates": public_entries(doc.get("installedCertificates")),
            "history": doc.get("certificateHistory", []),
        }
    )


async def install_certificate(request: web.Request) -> web.Response:
    """POST /api/chargers/{id}/certificates: {certificateType, certificate (PEM)}."""
    charger = charger_or_404(services(request), request.match_info["charger_id"])
    body = await json_body(request)
    reject_unknown_fields(body, {"certificateType", "certificate"})
    outcome, info = await security_flows.install_certificate(
        operations(request), charger,
        certificate_type=_choice(body, "certificateType", CERTIFICATE_TYPES),
        certificate=_string(body, "certificate") or "",
        origin=Origin.OPERATOR,
    )  # fmt: skip
    described: Json | None = None
    if info is not None:
        described = {
            "subject": info.subject,
            "issuer": info.issuer,
            "notAfter": info.not_after,
            "fingerprintSha256": info.fingerprint_sha256,
            "certificateHashData": info.hashes["SHA256"],
        }
    return json_response(outcome_json(outcome, certificate=described))


async def query_certificates(request: web.Request) -> web.Response:
    """POST /api/chargers/{id}/certificates/query: GetInstalledCertificateIds of one type,
    or of both in turn without a body."""
    charger = charger_or_404(services(request), request.match_info["charger_id"])
    body = await json_body(request, allow_empty=True)
    reject_unknown_fields(body, {"certificateType"})
    types = (
        (_choice(body, "certificateType", CERTIFICATE_TYPES),)
        if "certificateType" in body
        else CERTIFICATE_TYPES
    )
    responses: dict[str, Any] = {}
    warnings: list[Any] = []
    for certificate_type in types:
        outcome = await security_flows.get_installed_certificate_ids(
            operations(request), charger, certificate_type=certificate_type,
            origin=Origin.OPERATOR,
        )  # fmt: skip
        responses[certificate_type] = outcome.response
        warnings.extend(outcome.warnings)
    answer: Json = {
        "responses": responses,
        "installedCertificates": public_entries(charger.doc.get("installedCertificates")),
    }
    if warnings:
        answer["warnings"] = warnings
    return json_response(answer)


async def delete_certificate(request: web.Request) -> web.Response:
    """DELETE /api/chargers/{id}/certificates/{ref}[?hashAlgorithm=]: ref is the id of an
    entry, its SHA-256 fingerprint or its serial number."""
    charger = charger_or_404(services(request), request.match_info["charger_id"])
    algorithm = request.query.get("hashAlgorithm")
    if algorithm is not None and algorithm not in HASH_ALGORITHMS:
        raise ApiError(400, "invalid_query", "hashAlgorithm must be SHA256, SHA384 or SHA512")
    outcome, data = await security_flows.delete_certificate(
        operations(request), charger, ref=request.match_info["ref"],
        hash_algorithm=algorithm, origin=Origin.OPERATOR,
    )  # fmt: skip
    return json_response(outcome_json(outcome, certificateHashData=data))


# --- logs ------------------------------------------------------------------------------------


async def get_log(request: web.Request) -> web.Response:
    """POST /api/chargers/{id}/logs: GetLog; without log.remoteLocation to the edge."""
    charger = charger_or_404(services(request), request.match_info["charger_id"])
    body = await json_body(request)
    reject_unknown_fields(
        body, {"logType", "requestId", "log", "retries", "retryInterval", "protocol"}
    )
    parameters = body.get("log", {})
    if not isinstance(parameters, dict):
        raise ApiError(400, "invalid_request", "log must be an object")
    reject_unknown_fields(parameters, {"remoteLocation", "oldestTimestamp", "latestTimestamp"})
    protocol = upload_protocol(body)
    sent = await security_flows.request_log(
        operations(request), _files(request), charger,
        log_type=_choice(body, "logType", LOG_TYPES),
        request_id=body_int(body, "requestId"),
        remote_location=_string(parameters, "remoteLocation", required=False),
        protocol=protocol,
        oldest=body_time(parameters, "oldestTimestamp"),
        latest=body_time(parameters, "latestTimestamp"),
        retries=body_int(body, "retries"),
        retry_interval=body_int(body, "retryInterval"),
        origin=Origin.OPERATOR,
    )  # fmt: skip
    extra: Json = {
        "requestId": sent.payload["requestId"],
        "location": sent.payload["log"]["remoteLocation"],
    }
    if sent.expires is not None:
        extra["expiresAt"] = format_time(sent.expires)
    return json_response(outcome_json(sent.outcome, **extra))


async def charger_logs(request: web.Request) -> web.Response:
    """GET /api/chargers/{id}/logs: GetLog requests, newest first, with uploaded files."""
    charger = charger_or_404(services(request), request.match_info["charger_id"])
    files = request.app.get(FILES)
    uploads = await asyncio.to_thread(files.list_logs, charger.id) if files else []
    requests = sorted(
        charger.doc.get("logRequests", {}).values(),
        key=lambda r: r.get("requestedAt") or r.get("statusAt") or "",
        reverse=True,
    )
    return json_response(
        [
            {**r, "files": [f for f in uploads if f.get("requestId") == r.get("requestId")]}
            for r in requests
        ]
    )


async def list_logs(request: web.Request) -> web.Response:
    """GET /api/logs[?chargerId=&requestId=]: uploaded log files, newest first."""
    raw = request.query.get("requestId")
    try:
        request_id = int(raw) if raw is not None else None
    except ValueError:
        raise ApiError(400, "invalid_query", "requestId must be an integer") from None
    files = _files(request)
    charger_id = request.query.get("chargerId") or None
    return json_response(await asyncio.to_thread(files.list_logs, charger_id, request_id))


async def fetch_log(request: web.Request) -> web.StreamResponse:
    charger_id, name = request.match_info["charger_id"], request.match_info["name"]
    files = _files(request)
    path = files.diagnostics_path(charger_id, name)
    logs = await asyncio.to_thread(files.list_logs, charger_id) if path is not None else []
    if path is None or not any(m["name"] == name for m in logs):
        raise ApiError(404, "unknown_file", "no such log file")  # diagnostics: /api/diagnostics
    return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})


# --- signed firmware -------------------------------------------------------------------------


async def signed_firmware_update(request: web.Request) -> web.Response:
    """POST /api/chargers/{id}/signed-firmware-update: SignedUpdateFirmware of a hosted file."""
    charger = charger_or_404(services(request), request.match_info["charger_id"])
    body = await json_body(request)
    reject_unknown_fields(
        body,
        {"file", "signingCertificate", "signature", "retrieveDateTime", "installDateTime",
         "requestId", "retries", "retryInterval"},
    )  # fmt: skip
    name = _string(body, "file") or ""
    if not valid_name(name):
        raise ApiError(400, "invalid_name", "file must be the name of a hosted firmware file")
    outcome, payload, check = await security_flows.signed_update_firmware(
        operations(request), _files(request), charger,
        name=name,
        signing_certificate=_string(body, "signingCertificate") or "",
        signature=_string(body, "signature") or "",
        retrieve_date_time=body_time(body, "retrieveDateTime"),
        install_date_time=body_time(body, "installDateTime"),
        request_id=body_int(body, "requestId"),
        retries=body_int(body, "retries"),
        retry_interval=body_int(body, "retryInterval"),
        origin=Origin.OPERATOR,
    )  # fmt: skip
    return json_response(
        outcome_json(
            outcome,
            requestId=payload["requestId"],
            location=payload["firmware"]["location"],
            signatureCheck=check,
        )
    )


async def charger_signed_firmware(request: web.Request) -> web.Response:
    """GET /api/chargers/{id}/signed-firmware: SignedUpdateFirmware requests, newest first."""
    charger = charger_or_404(services(request), request.match_info["charger_id"])
    detail = security_detail(charger)
    requests = sorted(
        detail["signedFirmwareRequests"].values(),
        key=lambda r: r.get("requestedAt") or r.get("statusAt") or "",
        reverse=True,
    )
    return json_response(requests)


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_get("/api/chargers/{charger_id}/certificates", list_certificates)
    router.add_post("/api/chargers/{charger_id}/certificates", install_certificate)
    router.add_post("/api/chargers/{charger_id}/certificates/query", query_certificates)
    router.add_delete("/api/chargers/{charger_id}/certificates/{ref}", delete_certificate)
    router.add_post("/api/chargers/{charger_id}/logs", get_log)
    router.add_get("/api/chargers/{charger_id}/logs", charger_logs)
    router.add_get("/api/logs", list_logs)
    router.add_get("/api/logs/{charger_id}/{name}", fetch_log)
    router.add_post("/api/chargers/{charger_id}/signed-firmware-update", signed_firmware_update)
    router.add_get("/api/chargers/{charger_id}/signed-firmware", charger_signed_firmware)
