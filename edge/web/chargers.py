"""Chargers: the list, one charger in detail, registration, its events and status history.

GET  /api/chargers                         every known charger
GET  /api/chargers/{id}                    one, with profiles, reservations, statuses
PUT  /api/chargers/{id}                    register / approve / reject; set its password
DELETE /api/chargers/{id}                  remove it from the registry (not connected, idle)
GET  /api/chargers/{id}/events             its journalled events (?kind=&limit=)
GET  /api/chargers/{id}/status-history     its StatusNotifications, newest first
GET  /api/events                           the site's events (?kind=&chargerId=&limit=)
"""

from __future__ import annotations

import logging

from aiohttp import web

from edge.chargers import Charger, Registration
from edge.events import ChargerRemoved
from edge.features import reservation, security, smart_charging
from edge.security.events import security_events
from edge.services import Services
from edge.web.common import (
    UPSTREAM,
    ApiError,
    Json,
    charger_or_404,
    json_body,
    json_response,
    query_int,
    reject_unknown_fields,
    services,
)
from profiles.model import render_profile

__all__ = ["add_routes", "charger_json", "chargers_body"]

log = logging.getLogger(__name__)


def charger_json(svc: Services, charger: Charger) -> Json:
    """One entry of `GET /api/chargers` (and of the live page's messages): the charger
    and its connection security in short (`profile`, `pendingProfile`, `connectedAt`)."""
    data = charger.to_json()
    if svc.security is not None:
        data["security"] = svc.security.summary(charger.id)
    return data


def chargers_body(svc: Services) -> list[Json]:
    """The body of `GET /api/chargers` (also the live page's snapshot)."""
    return [charger_json(svc, c) for c in sorted(svc.chargers, key=lambda c: c.id)]


async def list_chargers(request: web.Request) -> web.Response:
    return json_response(chargers_body(services(request)))


async def get_charger(request: web.Request) -> web.Response:
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    reservation.charger_reservations(svc, charger)  # ends those past their expiry first
    data = charger.to_detail_json()
    lease = svc.leases.get(charger.id)
    if lease is not None:
        data["chargingProfiles"].append(
            {"connectorId": lease.connector_id, "chargingProfile": render_profile(lease.profile)}
        )
    data["firmwareStatus"] = charger.doc.get("firmwareStatus")
    data["diagnosticsStatus"] = charger.doc.get("diagnosticsStatus")
    data["lastReset"] = charger.doc.get("lastReset")
    data["compositeSchedules"] = charger.doc.get("compositeSchedules", {})
    data["localList"] = charger.doc.get("localList")
    data["triggers"] = charger.doc.get("triggers", {})
    data["securityEvents"] = security_events(svc, charger_id=charger.id, limit=20)
    data.update(security.security_detail(charger))
    if svc.security is not None:
        data["security"] = svc.security.describe(charger.id)
    upstream_links = request.app.get(UPSTREAM)
    if upstream_links is not None:
        data["upstream"] = upstream_links.charger_statistics(charger.id)
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
    reject_unknown_fields(body, {"registration", "password"})
    if not body:
        raise ApiError(400, "invalid_request", "registration or password required")
    password = body.get("password")
    if password is not None and (
        not isinstance(password, str) or not 8 <= len(password) <= 128 or "\x00" in password
    ):
        raise ApiError(400, "invalid_request", "password must be 8 to 128 characters")
    charger = svc.chargers.get(charger_id)
    registration: Registration | None = None
    if "registration" in body or charger is None:
        try:
            registration = Registration(str(body.get("registration")))
        except ValueError:
            raise ApiError(
                400, "invalid_request", "registration must be Accepted, Pending or Rejected"
            ) from None
    status = 200
    if charger is None:
        assert registration is not None
        charger = svc.chargers.create(charger_id, registration, now=svc.now_text())
        status = 201
    elif registration is not None:
        svc.chargers.set_registration(charger, registration)
    if password is not None and svc.security is not None:
        # Stored as a salted hash only; the charger's profile becomes 1 at least.
        await svc.security.set_password(charger_id, password)
    await svc.chargers.persist()
    if registration is not None:
        svc.record(charger_id, "Registration", {"registration": str(registration)})
    return json_response(charger.to_json(), status)


async def delete_charger(request: web.Request) -> web.Response:
    """DELETE /api/chargers/{id}: forget the charger (its document, its security state,
    its place under site control); its journal and transactions stay, they are records.
    409 while it is connected or has an active transaction. A charger configured in
    `[chargers.*]` comes back at its next connection."""
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    if charger.connected:
        raise ApiError(409, "connected", "the charger is connected: disconnect it first")
    active = sorted(tx.transaction_id for tx in svc.transactions.for_charger(charger.id))
    if active:
        raise ApiError(
            409,
            "active_transaction",
            f"the charger has an active transaction ({', '.join(map(str, active))})",
            transactionIds=active,
        )
    registration = charger.registration
    svc.chargers.remove(charger.id)
    if svc.security is not None:
        await svc.security.forget(charger.id)
    smart_charging.forget_charger(charger.id)
    await svc.chargers.persist()
    svc.record(
        charger.id,
        "ChargerDeleted",
        {"registration": str(registration), "configured": charger.id in svc.config.chargers},
    )
    log.info("charger %r (%s) removed from the registry by the operator", charger.id, registration)
    svc.publish(ChargerRemoved(charger_id=charger.id, at=svc.now()))
    return json_response({"deleted": charger.id})


async def charger_events(request: web.Request) -> web.Response:
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    limit = query_int(request, "limit", 100, 1, 1000) or 100
    kind = request.query.get("kind")
    return json_response(svc.journal.events(charger_id=charger.id, kind=kind, limit=limit))


async def site_events(request: web.Request) -> web.Response:
    """GET /api/events[?kind=&chargerId=&limit=]: the site's journalled events, newest
    first, in the shape of a charger's (`charger_id` null for the site's own)."""
    svc = services(request)
    limit = query_int(request, "limit", 100, 1, 1000) or 100
    kind = request.query.get("kind") or None
    charger_id = request.query.get("chargerId") or None
    return json_response(svc.journal.events(charger_id=charger_id, kind=kind, limit=limit))


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


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_get("/api/chargers", list_chargers)
    router.add_get("/api/chargers/{charger_id}", get_charger)
    router.add_put("/api/chargers/{charger_id}", put_charger)
    router.add_delete("/api/chargers/{charger_id}", delete_charger)
    router.add_get("/api/chargers/{charger_id}/events", charger_events)
    router.add_get("/api/chargers/{charger_id}/status-history", charger_status_history)
    router.add_get("/api/events", site_events)
