"""File transfer routes: firmware images and diagnostics uploads.

Operator side (Bearer token, under /api/): upload, list and delete firmware images,
start a firmware update or a diagnostics upload, list and fetch received diagnostics.

Charger side (under /files/, no Bearer token): firmware downloads authorised by a
per-charger signed, expiring link; diagnostics uploads authorised by the random
token of a per-request grant.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, web

from edge.features import firmware
from edge.files.store import CHUNK, FileStore, Grant, TooLarge, valid_name
from edge.operations import Origin
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

__all__ = ["FILES", "add_routes", "upload_protocol"]

FILES = web.AppKey("files", FileStore)


def _store(request: web.Request) -> FileStore:
    return request.app[FILES]


def _name(raw: str, what: str = "name") -> str:
    if not valid_name(raw):
        raise ApiError(
            400, "invalid_name", f"{what} must be 1 to 128 characters, no '/', no leading '.'"
        )
    return raw


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"the file is larger than {limit} bytes", limit=limit)


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


async def _file_part(request: web.Request) -> BodyPartReader:
    """The first file part of a multipart body ("file" preferred)."""
    if not request.content_type.startswith("multipart/"):
        raise ApiError(400, "invalid_request", "a multipart/form-data body is expected")
    reader = await request.multipart()
    async for part in reader:
        if isinstance(part, BodyPartReader) and (part.name == "file" or part.filename):
            return part
    raise ApiError(400, "invalid_request", "no file part in the body")


# --- firmware: operator ---------------------------------------------------------------


async def put_firmware(request: web.Request) -> web.Response:
    """PUT /api/firmware/{name}: the raw body is the image."""
    store = _store(request)
    name = _name(request.match_info["name"])
    try:
        meta = await store.save_firmware(name, request.content.iter_chunked(CHUNK))
    except TooLarge:
        raise _too_large(store.config.max_firmware_bytes) from None
    services(request).record(None, "FirmwareUploaded", meta)
    return json_response(meta, 201)


async def post_firmware(request: web.Request) -> web.Response:
    """POST /api/firmware: multipart, field "file"; the part's filename names the image."""
    store = _store(request)
    part = await _file_part(request)
    name = _name(part.filename or "", "filename")
    try:
        meta = await store.save_firmware(name, _part_chunks(part))
    except TooLarge:
        raise _too_large(store.config.max_firmware_bytes) from None
    services(request).record(None, "FirmwareUploaded", meta)
    return json_response(meta, 201)


async def list_firmware(request: web.Request) -> web.Response:
    return json_response(await asyncio.to_thread(_store(request).list_firmware))


async def delete_firmware(request: web.Request) -> web.Response:
    name = _name(request.match_info["name"])
    if not _store(request).delete_firmware(name):
        raise ApiError(404, "unknown_file", f"no firmware {name!r}")
    services(request).record(None, "FirmwareDeleted", {"name": name})
    return web.Response(status=204)


# --- firmware: charger download -------------------------------------------------------


async def download_firmware(request: web.Request) -> web.StreamResponse:
    """GET /files/firmware/{name}?charger=&expires=&sig=: a signed, expiring link."""
    store = _store(request)
    name = request.match_info["name"]
    q = request.query
    charger_id = q.get("charger", "")
    if not store.check_signature(name, charger_id, q.get("expires", ""), q.get("sig", "")):
        raise ApiError(403, "forbidden", "the link is invalid or has expired")
    path = store.firmware_path(name)
    if path is None:
        raise ApiError(404, "unknown_file", f"no firmware {name!r}")
    services(request).record(
        charger_id,
        "FirmwareDownload",
        {"name": name, "range": request.headers.get("Range"), "peer": request.remote},
    )
    return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})


# --- operator: high-level operations --------------------------------------------------


def upload_protocol(body: Json) -> str:
    """How a charger is to upload a file to the edge: `protocol`, http (the default) or ftp."""
    protocol = body.get("protocol", "http")
    if protocol not in ("http", "ftp"):
        raise ApiError(400, "invalid_request", "protocol must be http or ftp")
    return str(protocol)


async def firmware_update(request: web.Request) -> web.Response:
    """POST /api/chargers/{id}/firmware-update: UpdateFirmware with a signed link to a file."""
    charger = charger_or_404(services(request), request.match_info["charger_id"])
    body = await json_body(request)
    reject_unknown_fields(body, {"file", "retrieveDate", "retries", "retryInterval"})
    outcome, location = await firmware.update_firmware(
        operations(request), _store(request), charger,
        name=_name(str(body.get("file", "")), "file"),
        retrieve_date=body_time(body, "retrieveDate"),
        retries=body_int(body, "retries"),
        retry_interval=body_int(body, "retryInterval"),
        origin=Origin.OPERATOR,
    )  # fmt: skip
    return json_response(outcome_json(outcome, location=location))


async def get_diagnostics(request: web.Request) -> web.Response:
    """POST /api/chargers/{id}/diagnostics: GetDiagnostics with a fresh upload grant."""
    charger = charger_or_404(services(request), request.match_info["charger_id"])
    body = await json_body(request, allow_empty=True)
    reject_unknown_fields(body, {"protocol", "startTime", "stopTime", "retries", "retryInterval"})
    protocol = upload_protocol(body)
    outcome, location, expires = await firmware.request_diagnostics(
        operations(request), _store(request), charger,
        protocol=protocol,
        start_time=body_time(body, "startTime"),
        stop_time=body_time(body, "stopTime"),
        retries=body_int(body, "retries"),
        retry_interval=body_int(body, "retryInterval"),
        origin=Origin.OPERATOR,
    )  # fmt: skip
    return json_response(outcome_json(outcome, location=location, expiresAt=format_time(expires)))


# --- diagnostics: charger upload ------------------------------------------------------


def _grant_or_403(request: web.Request) -> Grant:
    grant = _store(request).grant(request.match_info["token"])
    if grant is None or grant.protocol != "http":
        raise ApiError(403, "forbidden", "the upload link is invalid or has expired")
    return grant


async def _receive(
    request: web.Request, grant: Grant, filename: str, chunks: AsyncIterator[bytes]
) -> web.Response:
    store = _store(request)
    try:
        meta = await store.receive_diagnostics(grant, filename, chunks, "http")
    except TooLarge:
        raise _too_large(store.config.max_diagnostics_bytes) from None
    store.note_upload(grant, filename)
    services(request).record(grant.charger_id, "DiagnosticsReceived", meta)
    return json_response(meta, 201)


async def upload_diagnostics(request: web.Request) -> web.Response:
    """PUT or POST /files/diagnostics/{token}/{filename}: raw body (or multipart on POST)."""
    grant = _grant_or_403(request)
    filename = _name(request.match_info["filename"], "filename")
    if request.method == "POST" and request.content_type.startswith("multipart/"):
        part = await _file_part(request)
        return await _receive(request, grant, filename, _part_chunks(part))
    return await _receive(request, grant, filename, request.content.iter_chunked(CHUNK))


async def upload_diagnostics_form(request: web.Request) -> web.Response:
    """POST /files/diagnostics/{token}/: multipart; the part's filename names the file."""
    grant = _grant_or_403(request)
    part = await _file_part(request)
    filename = _name(part.filename or "diagnostics", "filename")
    return await _receive(request, grant, filename, _part_chunks(part))


# --- diagnostics: operator ------------------------------------------------------------


async def list_diagnostics(request: web.Request) -> web.Response:
    store = _store(request)
    charger_id = request.query.get("chargerId")
    return json_response(await asyncio.to_thread(store.list_diagnostics, charger_id))


async def fetch_diagnostics(request: web.Request) -> web.StreamResponse:
    path = _store(request).diagnostics_path(
        request.match_info["charger_id"], request.match_info["name"]
    )
    if path is None:
        raise ApiError(404, "unknown_file", "no such diagnostics file")
    return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/firmware", list_firmware)
    router.add_post("/api/firmware", post_firmware)
    router.add_put("/api/firmware/{name}", put_firmware)
    router.add_delete("/api/firmware/{name}", delete_firmware)
    router.add_get("/files/firmware/{name}", download_firmware)
    router.add_post("/api/chargers/{charger_id}/firmware-update", firmware_update)
    router.add_post("/api/chargers/{charger_id}/diagnostics", get_diagnostics)
    router.add_put("/files/diagnostics/{token}/{filename}", upload_diagnostics)
    router.add_post("/files/diagnostics/{token}/{filename}", upload_diagnostics)
    router.add_post("/files/diagnostics/{token}/", upload_diagnostics_form)
    router.add_get("/api/diagnostics", list_diagnostics)
    router.add_get("/api/diagnostics/{charger_id}/{name}", fetch_diagnostics)
