"""The page's login: `POST/GET/DELETE /api/session` (see `edge.web.auth`).

POST   /api/session   {"password": …} → 204 + cookie; 401 wrong; 429 too many tries
GET    /api/session   {"authenticated": bool}
DELETE /api/session   log out (204)
"""

from __future__ import annotations

import logging

from aiohttp import web

from edge.web.auth import COOKIE, SESSION_DAYS, same_origin
from edge.web.common import (
    WEB_AUTH,
    ApiError,
    bearer_refusal,
    client_address,
    credentials_refused,
    json_body,
    json_response,
    throttled,
)

__all__ = ["add_routes"]

log = logging.getLogger("edge.web.auth")

MAX_PASSWORD = 1024  # characters: scrypt on a megabyte is a cheap way to burn a Pi's CPU


async def login(request: web.Request) -> web.StreamResponse:
    """POST /api/session: the password (or the API token) for a session cookie."""
    auth = request.app[WEB_AUTH]
    if "Origin" in request.headers and not same_origin(request):
        raise ApiError(403, "bad_origin", "Origin does not match this host")
    address = client_address(request)
    wait = auth.throttle.retry_after(address)
    if wait > 0:
        # Before the password is looked at: a right one must not stand out now.
        raise throttled(request, wait)
    body = await json_body(request)
    password = body.get("password")
    if set(body) != {"password"} or not isinstance(password, str) or not password:
        raise ApiError(400, "invalid_request", 'the body must be {"password": "…"}')
    if len(password) > MAX_PASSWORD or not await auth.check_password(password):
        count = credentials_refused(request, "login")
        log.warning("web login failed from %s (%d failed in a row)", address, count)
        raise ApiError(401, "invalid_password", "wrong password")
    auth.throttle.succeeded(address)
    log.info("web login from %s", address)
    response = web.Response(status=204)
    response.set_cookie(
        COOKIE,
        auth.open_session(),
        max_age=SESSION_DAYS * 86400,
        path="/",
        httponly=True,
        samesite="Strict",
        # Not `secure`: the page is served over plain HTTP on the site LAN until TLS lands.
    )
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    """DELETE /api/session: end this browser's session (204 even without one)."""
    auth = request.app[WEB_AUTH]
    if request.cookies.get(COOKIE) and not same_origin(request):
        raise ApiError(403, "bad_origin", "Origin does not match this host")
    auth.close_session(request)
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/")
    return response


async def session_state(request: web.Request) -> web.StreamResponse:
    """GET /api/session: whether this request is authenticated (never 401). A Bearer
    token is checked as on every route (throttled, a wrong one counted): this route must
    not be a way around the back-off."""
    auth = request.app[WEB_AUTH]
    if "Authorization" in request.headers:
        refusal = bearer_refusal(request)
        if refusal is not None and refusal.status == 429:
            raise refusal
        return json_response({"authenticated": refusal is None})
    return json_response({"authenticated": auth.session_ok(request)})


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_post("/api/session", login)
    router.add_get("/api/session", session_state)
    router.add_delete("/api/session", logout)
