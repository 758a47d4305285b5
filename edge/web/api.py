"""The operator HTTP API (JSON, Bearer token), as specified in the README.

Errors are `{"error": "<code>", "detail": …}` with a fitting status. Every
operation sent to a charger is journalled with its outcome (secrets redacted).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from edge.chargers import Registration
from edge.features.core import SECRET_KEYS
from edge.id_tags import MAX_ID_TAG_LENGTH, AuthorizationStatus, IdTag
from edge.ocppj import CSMS_TO_CP_ACTIONS, OcppError, QueueFull, parse_datetime
from edge.services import Services
from edge.session import CallTimeout, NotConnected, RemoteCallError, SessionRegistry
from edge.store import TransactionRecord

__all__ = ["ApiError", "build_app"]

log = logging.getLogger(__name__)

SERVICES = web.AppKey("services", Services)
SESSIONS = web.AppKey("sessions", SessionRegistry)
TOKEN = web.AppKey("token", str)

MAX_BODY = 1024 * 1024
Json = dict[str, Any]


class ApiError(Exception):
    """An error answered as `{"error": code, "detail": detail}` with `status`."""

    def __init__(self, status: int, code: str, detail: Any = None, **extra: Any) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error_response(err: ApiError) -> web.Response:
    return json_response({"error": err.code, "detail": err.detail, **err.extra}, err.status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_and_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith("/api/") and path != "/api/health":
        token = request.app[TOKEN]
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            response = _error_response(ApiError(401, "unauthorized", "Bearer token required"))
            response.headers["WWW-Authenticate"] = 'Bearer realm="edge-csms"'
            return response
    try:
        return await handler(request)
    except ApiError as err:
        return _error_response(err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status, "http_error"
        )
        return _error_response(ApiError(exc.status, code, exc.reason))
    except Exception:
        log.exception("API %s %s failed", request.method, path)
        return _error_response(ApiError(500, "internal_error", "see the service log"))


async def _json_body(request: web.Request, *, allow_empty: bool = False) -> Json:
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return {}
        raise ApiError(400, "invalid_json", "a JSON object body is required")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ApiError(400, "invalid_json", f"body is not JSON: {err.msg}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "body must be a JSON object")
    return body


def _services(request: web.Request) -> Services:
    return request.app[SERVICES]


def _query_int(
    request: web.Request, name: str, default: int | None, lo: int, hi: int
) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_query", f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise ApiError(400, "invalid_query", f"{name} must be from {lo} to {hi}")
    return value


def _query_bool(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ApiError(400, "invalid_query", f"{name} must be true or false")


# --- health and chargers ------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def list_chargers(request: web.Request) -> web.Response:
    svc = _services(request)
    chargers = sorted(svc.chargers, key=lambda c: c.id)
    return json_response([c.to_json() for c in chargers])


def _charger_or_404(svc: Services, charger_id: str) -> Any:
    charger = svc.chargers.get(charger_id)
    if charger is None:
        raise ApiError(404, "unknown_charger", f"no charger {charger_id!r}")
    return charger


async def get_charger(request: web.Request) -> web.Response:
    svc = _services(request)
    charger = _charger_or_404(svc, request.match_info["charger_id"])
    data = charger.to_detail_json()
    data["firmwareStatus"] = charger.doc.get("firmwareStatus")
    data["diagnosticsStatus"] = charger.doc.get("diagnosticsStatus")
    data["lastReset"] = charger.doc.get("lastReset")
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
    svc = _services(request)
    charger_id = request.match_info["charger_id"]
    body = await _json_body(request)
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


# --- operations ---------------------------------------------------------------------------


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and key.casefold() in SECRET_KEYS


def _redacted_request(action: str, payload: Json) -> Json:
    """The request as journalled: write-only values (AuthorizationKey) masked."""
    if action == "ChangeConfiguration" and _is_secret_key(payload.get("key")):
        return {**payload, "value": "***"}
    return payload


def _redacted_response(action: str, response: Json) -> Json:
    """A charger's answer with write-only values masked; a charger must never report
    AuthorizationKey (OCPP 1.6 §9.1), but a faulty one might."""
    if action != "GetConfiguration" or not isinstance(response.get("configurationKey"), list):
        return response
    keys = [
        {**entry, "value": "***"}
        if _is_secret_key(entry.get("key")) and "value" in entry
        else entry
        for entry in response["configurationKey"]
    ]
    return {**response, "configurationKey": keys}


def _registration_refusal(registration: Registration, action: str) -> str | None:
    """Why an operation must not be sent to a charger in this registration state, if so.

    OCPP 1.6 §4.2: a Rejected charger does not answer and the CSMS SHOULD NOT
    initiate anything; while Pending the CSMS may configure the charger, but
    RemoteStartTransaction and RemoteStopTransaction are not allowed.
    """
    if registration is Registration.REJECTED:
        return "the charger is Rejected; change its registration first"
    if registration is Registration.PENDING and action in (
        "RemoteStartTransaction",
        "RemoteStopTransaction",
    ):
        return f"{action} is not allowed while the charger is Pending"
    return None


async def ocpp_operation(request: web.Request) -> web.Response:
    svc = _services(request)
    charger_id = request.match_info["charger_id"]
    action = request.match_info["action"]
    if action not in CSMS_TO_CP_ACTIONS:
        raise ApiError(
            404,
            "unknown_action",
            f"{action!r} is not an OCPP 1.6 action a central system sends",
        )
    payload = await _json_body(request, allow_empty=True)
    charger = _charger_or_404(svc, charger_id)
    session = request.app[SESSIONS].get(charger.id)
    if session is None:
        raise ApiError(409, "not_connected", f"charger {charger_id!r} is not connected")
    refusal = _registration_refusal(charger.registration, action)
    if refusal is not None:
        raise ApiError(409, "not_accepted", refusal)
    journal_request = _redacted_request(action, payload)
    outcome: Json
    try:
        response = await session.call(action, payload)
    except OcppError as err:
        raise ApiError(400, "invalid_payload", err.description, errorCode=err.code) from None
    except QueueFull:
        raise ApiError(503, "busy", "too many operations are waiting for this charger") from None
    except NotConnected as err:
        outcome = {"outcome": "NotConnected"}
        svc.record(
            charger_id, "Operation", {"action": action, "request": journal_request, **outcome}
        )
        raise ApiError(409, "not_connected", str(err)) from None
    except CallTimeout as err:
        svc.record(
            charger_id,
            "Operation",
            {"action": action, "request": journal_request, "outcome": "Timeout"},
        )
        raise ApiError(504, "timeout", str(err)) from None
    except RemoteCallError as err:
        svc.record(
            charger_id,
            "Operation",
            {
                "action": action,
                "request": journal_request,
                "outcome": "CallError",
                "errorCode": err.error_code,
                "errorDescription": err.description,
            },
        )
        return json_response(
            {
                "error": "CallError",
                "errorCode": err.error_code,
                "detail": err.description,
                "errorDetails": err.details,
            },
            502,
        )
    response = _redacted_response(action, response)
    if (
        action in ("TriggerMessage", "ExtendedTriggerMessage")
        and response.get("status") == "Accepted"
    ):
        session.expect_triggered(str(payload.get("requestedMessage")))
    await svc.chargers.persist()
    svc.record(
        charger_id,
        "Operation",
        {"action": action, "request": journal_request, "outcome": "Result", "response": response},
    )
    svc.publish(charger_id, action, {"request": journal_request, "response": response})
    return json_response({"response": response})


async def charger_events(request: web.Request) -> web.Response:
    svc = _services(request)
    charger = _charger_or_404(svc, request.match_info["charger_id"])
    limit = _query_int(request, "limit", 100, 1, 1000) or 100
    kind = request.query.get("kind")
    return json_response(svc.journal.events(charger_id=charger.id, kind=kind, limit=limit))


async def charger_status_history(request: web.Request) -> web.Response:
    svc = _services(request)
    charger = _charger_or_404(svc, request.match_info["charger_id"])
    limit = _query_int(request, "limit", 100, 1, 1000) or 100
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
    return json_response([t.to_json() for t in _services(request).id_tags])


async def get_id_tag(request: web.Request) -> web.Response:
    tag = _services(request).id_tags.get(request.match_info["id_tag"])
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
    svc = _services(request)
    id_tag = request.match_info["id_tag"]
    tag = _parse_id_tag(id_tag, await _json_body(request, allow_empty=True))
    existed = svc.id_tags.get(id_tag) is not None
    svc.id_tags.put(tag)
    await svc.id_tags.persist()
    svc.record(None, "IdTagChanged", tag.to_json())
    return json_response(tag.to_json(), 200 if existed else 201)


async def delete_id_tag(request: web.Request) -> web.Response:
    svc = _services(request)
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
    svc = _services(request)
    records = svc.journal.list_transactions(
        charger_id=request.query.get("chargerId"),
        active=_query_bool(request, "active"),
        limit=_query_int(request, "limit", 100, 1, 1000) or 100,
        before_id=_query_int(request, "before", None, 1, 2**62),
    )
    return json_response([transaction_json(svc, r) for r in records])


async def get_transaction(request: web.Request) -> web.Response:
    svc = _services(request)
    try:
        transaction_id = int(request.match_info["transaction_id"])
    except ValueError:
        raise ApiError(400, "invalid_request", "transaction id must be an integer") from None
    record = svc.journal.get_transaction(transaction_id)
    if record is None:
        raise ApiError(404, "unknown_transaction", f"no transaction {transaction_id}")
    data = transaction_json(svc, record)
    limit = _query_int(request, "limit", 1000, 1, 100000) or 1000
    data["meterValues"] = [
        {"timestamp": s.timestamp, "sampledValue": s.sampled_value}
        for s in svc.journal.meter_samples(transaction_id, limit=limit)
    ]
    return json_response(data)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        text=_services(request).metrics.render(),
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def build_app(services: Services, sessions: SessionRegistry, token: str) -> web.Application:
    """The aiohttp application serving the API and metrics."""
    app = web.Application(middlewares=[errors_and_auth], client_max_size=MAX_BODY)
    app[SERVICES] = services
    app[SESSIONS] = sessions
    app[TOKEN] = token
    r = app.router
    r.add_get("/api/health", health)
    r.add_get("/api/chargers", list_chargers)
    r.add_get("/api/chargers/{charger_id}", get_charger)
    r.add_put("/api/chargers/{charger_id}", put_charger)
    r.add_post("/api/chargers/{charger_id}/ocpp/{action}", ocpp_operation)
    r.add_get("/api/chargers/{charger_id}/events", charger_events)
    r.add_get("/api/chargers/{charger_id}/status-history", charger_status_history)
    r.add_get("/api/id-tags", list_id_tags)
    r.add_get("/api/id-tags/{id_tag}", get_id_tag)
    r.add_put("/api/id-tags/{id_tag}", put_id_tag)
    r.add_delete("/api/id-tags/{id_tag}", delete_id_tag)
    r.add_get("/api/transactions", list_transactions)
    r.add_get("/api/transactions/{transaction_id}", get_transaction)
    r.add_get("/metrics", metrics)
    return app
