"""The operator HTTP API (JSON, Bearer token), as specified in the README.

Errors are `{"error": "<code>", "detail": …}` with a fitting status. Every
operation sent to a charger is journalled with its outcome (secrets redacted).
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from edge.chargers import Registration
from edge.features import reservation
from edge.files import FileStore
from edge.id_tags import MAX_ID_TAG_LENGTH, AuthorizationStatus, IdTag
from edge.ocppj import parse_datetime
from edge.services import Services
from edge.session import SessionRegistry
from edge.site import SiteController
from edge.store import TransactionRecord
from edge.web import files, local_lists, operations, reservations, site
from edge.web.common import (
    MAX_BODY,
    SERVICES,
    SESSIONS,
    SITE,
    TOKEN,
    ApiError,
    Json,
    charger_or_404,
    errors_and_auth,
    json_body,
    json_response,
    query_bool,
    query_int,
    services,
)

__all__ = ["build_app", "transaction_json"]


# --- health and chargers ------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def list_chargers(request: web.Request) -> web.Response:
    svc = services(request)
    chargers = sorted(svc.chargers, key=lambda c: c.id)
    return json_response([c.to_json() for c in chargers])


async def get_charger(request: web.Request) -> web.Response:
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    reservation.charger_reservations(svc, charger)  # ends those past their expiry first
    data = charger.to_detail_json()
    data["firmwareStatus"] = charger.doc.get("firmwareStatus")
    data["diagnosticsStatus"] = charger.doc.get("diagnosticsStatus")
    data["lastReset"] = charger.doc.get("lastReset")
    data["compositeSchedules"] = charger.doc.get("compositeSchedules", {})
    data["localList"] = charger.doc.get("localList")
    data["triggers"] = charger.doc.get("triggers", {})
    data["activeTransactions"] = [
        tx.transaction_id
        for tx in (
            svc.transactions.get(c.transaction_id)
            for c in charger.connectors.values()
            if c.transaction_id is not None
        )
        if tx is not None
    ]
    return json_response(data)


async def put_charger(request: web.Request) -> web.Response:
    svc = services(request)
    charger_id = request.match_info["charger_id"]
    body = await json_body(request)
    unknown = set(body) - {"registration"}
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown fields: {', '.join(sorted(unknown))}")
    raw = body.get("registration")
    try:
        registration = Registration(str(raw))
    except ValueError:
        raise ApiError(
            400, "invalid_request", "registration must be Accepted, Pending or Rejected"
        ) from None
    charger = svc.chargers.get(charger_id)
    status = 200
    if charger is None:
        charger = svc.chargers.create(charger_id, registration, now=svc.now_text())
        status = 201
    else:
        svc.chargers.set_registration(charger, registration)
    await svc.chargers.persist()
    svc.record(charger_id, "Registration", {"registration": str(registration)})
    return json_response(charger.to_json(), status)


async def charger_events(request: web.Request) -> web.Response:
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    limit = query_int(request, "limit", 100, 1, 1000) or 100
    kind = request.query.get("kind")
    return json_response(svc.journal.events(charger_id=charger.id, kind=kind, limit=limit))


async def charger_status_history(request: web.Request) -> web.Response:
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    limit = query_int(request, "limit", 100, 1, 1000) or 100
    records = svc.journal.status_history(charger.id, limit=limit)
    return json_response(
        [
            {
                "connectorId": r.connector_id,
                "status": r.status,
                "errorCode": r.error_code,
                "info": r.info,
                "vendorId": r.vendor_id,
                "vendorErrorCode": r.vendor_error_code,
                "timestamp": r.timestamp,
                "receivedAt": r.received_at,
            }
            for r in records
        ]
    )


# --- id tags ------------------------------------------------------------------------------


async def list_id_tags(request: web.Request) -> web.Response:
    return json_response([t.to_json() for t in services(request).id_tags])


async def get_id_tag(request: web.Request) -> web.Response:
    tag = services(request).id_tags.get(request.match_info["id_tag"])
    if tag is None:
        raise ApiError(404, "unknown_id_tag", "no such id tag")
    return json_response(tag.to_json())


def _parse_id_tag(id_tag: str, body: Json) -> IdTag:
    if not 0 < len(id_tag) <= MAX_ID_TAG_LENGTH:
        raise ApiError(400, "invalid_request", "idTag must be 1 to 20 characters (CiString20)")
    unknown = set(body) - {"status", "expiryDate", "parentIdTag", "idTag"}
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown fields: {', '.join(sorted(unknown))}")
    try:
        status = AuthorizationStatus(body.get("status", "Accepted"))
    except ValueError:
        raise ApiError(
            400, "invalid_request", "status must be Accepted, Blocked, Expired or Invalid"
        ) from None
    if status is AuthorizationStatus.CONCURRENT_TX:
        raise ApiError(400, "invalid_request", "ConcurrentTx is not a stored status")
    expiry: datetime | None = None
    raw_expiry = body.get("expiryDate")
    if raw_expiry is not None:
        if not isinstance(raw_expiry, str):
            raise ApiError(400, "invalid_request", "expiryDate must be an ISO 8601 string")
        try:
            expiry = parse_datetime(raw_expiry)
        except ValueError:
            raise ApiError(400, "invalid_request", "expiryDate is not ISO 8601") from None
    parent = body.get("parentIdTag")
    if parent is not None and (not isinstance(parent, str) or not 0 < len(parent) <= 20):
        raise ApiError(400, "invalid_request", "parentIdTag must be 1 to 20 characters")
    return IdTag(id_tag=id_tag, status=status, expiry_date=expiry, parent_id_tag=parent)


async def put_id_tag(request: web.Request) -> web.Response:
    svc = services(request)
    id_tag = request.match_info["id_tag"]
    tag = _parse_id_tag(id_tag, await json_body(request, allow_empty=True))
    existed = svc.id_tags.get(id_tag) is not None
    svc.id_tags.put(tag)
    await svc.id_tags.persist()
    svc.record(None, "IdTagChanged", tag.to_json())
    return json_response(tag.to_json(), 200 if existed else 201)


async def delete_id_tag(request: web.Request) -> web.Response:
    svc = services(request)
    id_tag = request.match_info["id_tag"]
    if not svc.id_tags.delete(id_tag):
        raise ApiError(404, "unknown_id_tag", "no such id tag")
    await svc.id_tags.persist()
    svc.record(None, "IdTagDeleted", {"idTag": id_tag})
    return web.Response(status=204)


# --- transactions -------------------------------------------------------------------------


def transaction_json(svc: Services, record: TransactionRecord) -> Json:
    energy = record.energy_wh
    if record.active:
        live = svc.transactions.get(record.transaction_id)
        energy = live.energy_wh if live is not None else None
    return {
        "transactionId": record.transaction_id,
        "chargerId": record.charger_id,
        "connectorId": record.connector_id,
        "idTag": record.id_tag,
        "idTagStatus": record.id_tag_status,
        "meterStart": record.meter_start,
        "meterStop": record.meter_stop,
        "energyWh": energy,
        "startTime": record.start_time,
        "stopTime": record.stop_time,
        "stopReason": record.stop_reason,
        "stopIdTag": record.stop_id_tag,
        "reservationId": record.reservation_id,
        "active": record.active,
    }


async def list_transactions(request: web.Request) -> web.Response:
    svc = services(request)
    records = svc.journal.list_transactions(
        charger_id=request.query.get("chargerId"),
        active=query_bool(request, "active"),
        limit=query_int(request, "limit", 100, 1, 1000) or 100,
        before_id=query_int(request, "before", None, 1, 2**62),
    )
    return json_response([transaction_json(svc, r) for r in records])


async def get_transaction(request: web.Request) -> web.Response:
    svc = services(request)
    try:
        transaction_id = int(request.match_info["transaction_id"])
    except ValueError:
        raise ApiError(400, "invalid_request", "transaction id must be an integer") from None
    record = svc.journal.get_transaction(transaction_id)
    if record is None:
        raise ApiError(404, "unknown_transaction", f"no transaction {transaction_id}")
    data = transaction_json(svc, record)
    limit = query_int(request, "limit", 1000, 1, 100000) or 1000
    data["meterValues"] = [
        {"timestamp": s.timestamp, "sampledValue": s.sampled_value}
        for s in svc.journal.meter_samples(transaction_id, limit=limit)
    ]
    return json_response(data)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        text=services(request).metrics.render(),
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def build_app(
    services: Services,
    sessions: SessionRegistry,
    token: str,
    file_store: FileStore | None = None,
    site_controller: SiteController | None = None,
) -> web.Application:
    """The aiohttp application serving the API, metrics and (with a FileStore) file transfers."""
    app = web.Application(middlewares=[errors_and_auth], client_max_size=MAX_BODY)
    app[SERVICES] = services
    app[SESSIONS] = sessions
    app[TOKEN] = token
    if site_controller is not None:
        app[SITE] = site_controller
    r = app.router
    r.add_get("/api/health", health)
    r.add_get("/api/chargers", list_chargers)
    r.add_get("/api/chargers/{charger_id}", get_charger)
    r.add_put("/api/chargers/{charger_id}", put_charger)
    r.add_get("/api/chargers/{charger_id}/events", charger_events)
    r.add_get("/api/chargers/{charger_id}/status-history", charger_status_history)
    r.add_get("/api/id-tags", list_id_tags)
    r.add_get("/api/id-tags/{id_tag}", get_id_tag)
    r.add_put("/api/id-tags/{id_tag}", put_id_tag)
    r.add_delete("/api/id-tags/{id_tag}", delete_id_tag)
    r.add_get("/api/transactions", list_transactions)
    r.add_get("/api/transactions/{transaction_id}", get_transaction)
    r.add_get("/metrics", metrics)
    operations.add_routes(r)
    reservations.add_routes(r)
    local_lists.add_routes(r)
    site.add_routes(r)
    if file_store is not None:
        app[files.FILES] = file_store
        files.add_routes(r)
    return app
