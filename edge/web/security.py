"""Connection security: the wss listener's TLS material and chargers' keys.

GET  /api/security/tls                          the certificates in use, client CAs, CRL
POST /api/security/tls/reload                   reload certificate, key, client CA and CRL
POST /api/chargers/{id}/security/rotate-key     a new AuthorizationKey, in one action

The rotation generates 20 random bytes, sends them as 40 hex digits in
ChangeConfiguration(AuthorizationKey) and, once the charger Accepted, keeps the new key's
hash beside the old one until the charger connects with it (then only the new one is
valid); Rejected or NotSupported keep the old key. The key itself is never answered,
logged or journalled: the charger is the only one that needs it.
"""

from __future__ import annotations

from aiohttp import web

from edge.operations import Origin
from edge.security.connection import ConnectionSecurity
from edge.security.credentials import KeyHash, generate_key, key_bytes
from edge.web.common import (
    ApiError,
    Json,
    charger_or_404,
    json_body,
    json_response,
    operations,
    services,
)

__all__ = ["add_routes"]


def _security(request: web.Request) -> ConnectionSecurity:
    security = services(request).security
    if security is None:  # pragma: no cover - the app always sets it
        raise ApiError(503, "unavailable", "connection security is not set up")
    return security


async def tls_state(request: web.Request) -> web.Response:
    security = _security(request)
    if security.describe_tls is None:
        raise ApiError(404, "no_tls", "no [ocpp.tls] listener is configured")
    return json_response(security.describe_tls())


async def tls_reload(request: web.Request) -> web.Response:
    security = _security(request)
    if security.reload_tls is None:
        raise ApiError(404, "no_tls", "no [ocpp.tls] listener is configured")
    result = await security.reload_tls()
    if not result["reloaded"]:
        raise ApiError(
            422,
            "reload_failed",
            "the current certificate stays in use",
            problems=result["problems"],
        )
    return json_response(result)


async def rotate_key(request: web.Request) -> web.Response:
    """One action: a new key to the charger, stored hashed once Accepted."""
    svc = services(request)
    security = _security(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    await json_body(request, allow_empty=True)
    key = generate_key()
    hashed: KeyHash = await security.verifier.run(KeyHash.of, key_bytes(key), bounded=False)
    accepted: Json = {}

    def record(response: Json) -> None:
        # Only what the charger Accepted becomes a valid key (A01.FR.03/04).
        if response.get("status") in ("Accepted", "RebootRequired"):
            security.new_key_accepted(charger.id, hashed, "rotation")
            accepted["yes"] = True

    outcome = await operations(request).send(
        charger,
        "ChangeConfiguration",
        {"key": "AuthorizationKey", "value": key},
        origin=Origin.OPERATOR,
        record=record,
    )
    del key
    await security.settled(charger.id)
    status = outcome.response.get("status")
    return json_response(
        {
            "response": outcome.response,
            "keyChanged": bool(accepted),
            "detail": (
                "the old key stays valid until the charger connects with the new one"
                if accepted
                else f"the charger answered {status}: the old key stays"
            ),
            "security": security.describe(charger.id),
        }
    )


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_get("/api/security/tls", tls_state)
    router.add_post("/api/security/tls/reload", tls_reload)
    router.add_post("/api/chargers/{charger_id}/security/rotate-key", rotate_key)
