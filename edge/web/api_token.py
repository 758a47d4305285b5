"""Rotating the operator API's token: `POST /api/token/rotate` (see edge.security.token).

POST /api/token/rotate → 200 {"token": "<new>"}, the only time the new token is shown;
the old one stops working at once, and every other login session of the page is closed.
409 token_in_config when `[web] api_token` sets it (change it in the file instead).
"""

from __future__ import annotations

import logging

from aiohttp import web

from edge.security.events import record_security_event
from edge.security.token import TokenError
from edge.web.common import WEB_AUTH, ApiError, json_response, services

__all__ = ["add_routes"]

log = logging.getLogger("edge.security")


async def rotate(request: web.Request) -> web.Response:
    auth = request.app[WEB_AUTH]
    if auth.token.configured:
        raise ApiError(
            409,
            "token_in_config",
            "the API token is set in the configuration ([web] api_token): change it there",
        )
    try:
        token = auth.token.rotate()
    except TokenError as err:
        raise ApiError(500, "token_not_rotated", str(err)) from None
    closed = auth.close_other_sessions(request)
    svc = services(request)
    record_security_event(
        svc,
        None,
        "ApiTokenRotated",
        f"by {request.remote or '?'}; {closed} other page sessions closed",
    )
    response = json_response({"token": token})
    response.headers["Cache-Control"] = "no-store"
    return response


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_post("/api/token/rotate", rotate)
