"""Pieces every API module shares: app keys, JSON errors, request parsing.

Domain errors (`edge.operations.OperationError`) are mapped to HTTP statuses in one
place, `STATUS_OF`; handlers raise them as they come and never pick a status.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from edge.chargers import Charger
from edge.operations import (
    Busy,
    ChargerCallError,
    CheckFailed,
    Conflict,
    InvalidPayload,
    InvalidRequest,
    NotAccepted,
    NotConnected,
    NotFound,
    OperationError,
    Outcome,
    Timeout,
    UnknownCharger,
)
from edge.operations.pipeline import Operations
from edge.security.events import record_security_event
from edge.services import Services
from edge.session import SessionRegistry
from edge.site.controller import SiteController
from edge.times import format_time, parse_time
from edge.upstream import Upstream
from edge.web.auth import STATE_CHANGING, WebAuth, same_origin

__all__ = [
    "OPERATIONS",
    "REFUSED_METRIC",
    "SERVICES",
    "SESSIONS",
    "SITE",
    "STATUS_OF",
    "WEB_AUTH",
    "ApiError",
    "Json",
    "bearer_refusal",
    "body_int",
    "body_time",
    "charger_or_404",
    "client_address",
    "credentials_refused",
    "errors_and_auth",
    "json_body",
    "json_response",
    "operations",
    "outcome_json",
    "query_bool",
    "query_int",
    "reject_unknown_fields",
    "services",
    "throttled",
    "unauthorized",
]

log = logging.getLogger("edge.web.api")

SERVICES = web.AppKey("services", Services)
SESSIONS = web.AppKey("sessions", SessionRegistry)
WEB_AUTH = web.AppKey("web_auth", WebAuth)
SITE = web.AppKey("site", SiteController)  # present only with a [meter]
UPSTREAM = web.AppKey("upstream", Upstream)  # present only with an [upstream]
OPERATIONS = web.AppKey("operations", Operations)

# One HTTP status per domain error.
STATUS_OF: dict[type[OperationError], int] = {
    UnknownCharger: 404,
    NotFound: 404,
    InvalidPayload: 400,
    InvalidRequest: 400,
    CheckFailed: 400,
    NotConnected: 409,
    NotAccepted: 409,
    Conflict: 409,
    ChargerCallError: 502,
    Busy: 503,
    Timeout: 504,
}

MAX_BODY = 1024 * 1024
Json = dict[str, Any]


class ApiError(Exception):
    """An error answered as `{"error": code, "detail": detail}` with `status`."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: Any = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error_response(err: ApiError) -> web.Response:
    response = json_response({"error": err.code, "detail": err.detail, **err.extra}, err.status)
    response.headers.update(err.headers)
    return response


def api_error(err: OperationError) -> ApiError:
    """The HTTP answer to a domain error (`STATUS_OF`; 500 for one not listed)."""
    status = next((s for kind, s in STATUS_OF.items() if isinstance(err, kind)), 500)
    return ApiError(status, err.code, err.detail, **err.extra)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# Reachable without a token or a session: readiness, and the login itself.
PUBLIC_API = frozenset({"/api/health", "/api/session"})
# Upgrades a browser makes without CORS: the Origin is checked as for a POST.
CROSS_SITE_GETS = frozenset({"/api/live"})
# Refusals of the operator API's credentials, by reason ("credentials": wrong; "throttled":
# 429 while the address is backed off).
REFUSED_METRIC = "edge_api_auth_refused_total"


def client_address(request: web.BaseRequest) -> str:
    """The address the throttle counts a request under."""
    return request.remote or "?"


def throttled(request: web.Request, wait: float) -> ApiError:
    """The 429 of a backed-off address (counted, not logged: one line per episode is
    `credentials_refused`'s)."""
    services(request).metrics.inc(REFUSED_METRIC, reason="throttled")
    seconds = max(1, math.ceil(wait))
    return ApiError(
        429,
        "too_many_attempts",
        "too many refused credentials from this address: try again later",
        headers={"Retry-After": str(seconds)},
        retryAfter=seconds,
    )


def credentials_refused(request: web.Request, what: str) -> int:
    """Count refused credentials (`what`: "Bearer token", "login") toward the address's
    back-off; the back-off's start is journalled and logged once (`ApiAuthLockout`), the
    refusals of the flood after it only counted. Returns the refusals in a row."""
    auth = request.app[WEB_AUTH]
    address = client_address(request)
    failure = auth.throttle.failed(address)
    svc = services(request)
    svc.metrics.inc(REFUSED_METRIC, reason="credentials")
    if failure.episode_started:
        record_security_event(
            svc,
            None,
            "ApiAuthLockout",
            f"operator API: {failure.count} refused credentials in a row from {address}"
            f" (the last a {what}): answered 429 for {failure.delay:.0f} s, longer after"
            " each further refusal; the refusals that follow are counted, not logged",
            critical=True,
        )
    return failure.count


def unauthorized() -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        "Bearer token or login session required",
        headers={"WWW-Authenticate": 'Bearer realm="edge-csms"'},
    )


def bearer_refusal(request: web.Request) -> ApiError | None:
    """The throttled check of a request's `Authorization` header: None when it holds the
    right Bearer token (which clears the address's refusals); 429 while the address is
    backed off, whatever the header holds (a right token must not stand out from a wrong
    one then); else 401, counted toward the back-off."""
    auth = request.app[WEB_AUTH]
    address = client_address(request)
    wait = auth.throttle.retry_after(address)
    if wait > 0:
        return throttled(request, wait)
    if auth.bearer_ok(request):
        auth.throttle.succeeded(address)
        return None
    credentials_refused(request, "Bearer token")
    return unauthorized()


def _authenticate(request: web.Request) -> ApiError | None:
    """None when the request may use `/api`; else the error to answer (401/403/429).

    A request with an `Authorization` header is judged by it alone (`bearer_refusal`).
    Without one, a logged-in page's cookie opens the API (a random session id is no
    guess, so the throttle does not hold it back); anything else is 401, or 429 while
    the address is backed off."""
    auth = request.app[WEB_AUTH]
    if "Authorization" in request.headers:
        return bearer_refusal(request)
    if auth.session_ok(request):
        if (
            request.method in STATE_CHANGING or request.path in CROSS_SITE_GETS
        ) and not same_origin(request):
            return ApiError(403, "bad_origin", "Origin does not match this host")
        return None
    wait = auth.throttle.retry_after(client_address(request))
    return throttled(request, wait) if wait > 0 else unauthorized()


@web.middleware
async def errors_and_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith("/api/") and path not in PUBLIC_API:
        refused = _authenticate(request)
        if refused is not None:
            return _error_response(refused)
    try:
        return await handler(request)
    except ApiError as err:
        return _error_response(err)
    except OperationError as err:
        return _error_response(api_error(err))
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


async def json_body(request: web.Request, *, allow_empty: bool = False) -> Json:
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


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def operations(request: web.Request) -> Operations:
    return request.app[OPERATIONS]


def outcome_json(outcome: Outcome, **extra: Any) -> Json:
    """`{"response": …}` for an operation, with `warnings` when the checks had any."""
    data: Json = {"response": outcome.response, **extra}
    if outcome.warnings:
        data["warnings"] = outcome.warnings
    return data


def reject_unknown_fields(body: Json, allowed: set[str] | frozenset[str]) -> None:
    """Refuse a body with fields this endpoint does not know (a typo must not be ignored)."""
    unknown = set(body) - allowed
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown fields: {', '.join(sorted(unknown))}")


def body_int(body: Json, key: str) -> int | None:
    """An optional integer field of a JSON body (None when absent; a bool is no integer)."""
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ApiError(400, "invalid_request", f"{key} must be an integer")
    return value


def body_time(body: Json, key: str) -> str | None:
    """An optional ISO 8601 time field of a JSON body, normalised (None when absent)."""
    value = body.get(key)
    if value is None:
        return None
    try:
        return format_time(parse_time(str(value)))
    except ValueError:
        raise ApiError(400, "invalid_request", f"{key} must be an ISO 8601 time") from None


def query_int(request: web.Request, name: str, default: int | None, lo: int, hi: int) -> int | None:
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


def query_bool(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ApiError(400, "invalid_query", f"{name} must be true or false")


def charger_or_404(svc: Services, charger_id: str) -> Charger:
    charger = svc.chargers.get(charger_id)
    if charger is None:
        raise UnknownCharger(f"no charger {charger_id!r}")
    return charger
