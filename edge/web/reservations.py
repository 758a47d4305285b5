"""Reservation API (OCPP 1.6 Reservation profile): reserve, cancel, list.

POST   /api/chargers/{id}/reservations                  ReserveNow, id allocated if not given
DELETE /api/chargers/{id}/reservations/{reservationId}  CancelReservation
GET    /api/chargers/{id}/reservations                  that charger's reservations
GET    /api/reservations[?chargerId=&active=]            across chargers, newest first

The raw `POST /api/chargers/{id}/ocpp/ReserveNow` is recorded the same way (the
feature's recorders run on every answer).
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from edge.features import reservation
from edge.id_tags import MAX_ID_TAG_LENGTH
from edge.ocppj import format_datetime, parse_datetime
from edge.web.common import (
    ApiError,
    Json,
    charger_or_404,
    json_body,
    json_response,
    query_bool,
    services,
)
from edge.web.operations import send_operation

__all__ = ["add_routes"]

_FIELDS = {"connectorId", "idTag", "expiryDate", "expiresIn", "parentIdTag", "reservationId"}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _tag(body: Json, name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_TAG_LENGTH:
        raise ApiError(400, "invalid_request", f"{name} must be 1 to 20 characters (CiString20)")
    return value


async def reserve(request: web.Request) -> web.Response:
    """POST /api/chargers/{id}/reservations: send ReserveNow; the reservation once Accepted."""
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    force = bool(query_bool(request, "force"))
    body = await json_body(request)
    unknown = set(body) - _FIELDS
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown fields: {', '.join(sorted(unknown))}")
    connector_id = body.get("connectorId")
    if not isinstance(connector_id, int) or isinstance(connector_id, bool) or connector_id < 0:
        raise ApiError(400, "invalid_request", "connectorId must be 0 (any connector) or more")
    id_tag = _tag(body, "idTag", required=True)
    assert id_tag is not None
    parent = _tag(body, "parentIdTag", required=False)
    if ("expiryDate" in body) == ("expiresIn" in body):
        raise ApiError(400, "invalid_request", "give either expiryDate or expiresIn")
    now = svc.now()
    if "expiresIn" in body:
        seconds = body["expiresIn"]
        if not _is_int(seconds) or seconds <= 0:
            raise ApiError(400, "invalid_request", "expiresIn must be a number of seconds > 0")
        expiry_date = format_datetime(now + timedelta(seconds=seconds))
    else:
        expiry_date = body["expiryDate"]
        try:
            expiry = parse_datetime(expiry_date)
        except (TypeError, ValueError):
            raise ApiError(400, "invalid_request", "expiryDate must be an ISO 8601 time") from None
        if expiry <= now and not force:
            raise ApiError(400, "invalid_request", "expiryDate must be in the future")
    reservation_id = body.get("reservationId")
    if reservation_id is not None and not _is_int(reservation_id):
        raise ApiError(400, "invalid_request", "reservationId must be an integer")
    if parent is None:
        known = svc.id_tags.get(id_tag)
        parent = known.parent_id_tag if known is not None else None
    if reservation_id is None:
        reservation_id = reservation.allocate_id(svc, charger)
    payload: Json = {
        "connectorId": connector_id,
        "expiryDate": expiry_date,
        "idTag": id_tag,
        "reservationId": reservation_id,
    }
    if parent is not None:
        payload["parentIdTag"] = parent
    response = await send_operation(request, charger, "ReserveNow", payload, force=force)
    recorded = None
    if response.get("status") == "Accepted":
        recorded = _find(reservation.charger_reservations(svc, charger), reservation_id)
    return json_response({"response": response, "reservation": recorded})


def _find(entries: list[Json], reservation_id: int) -> Json | None:
    for entry in reversed(entries):
        if entry["reservationId"] == reservation_id:
            return entry
    return None


async def cancel(request: web.Request) -> web.Response:
    """DELETE /api/chargers/{id}/reservations/{reservationId}: send CancelReservation."""
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    try:
        reservation_id = int(request.match_info["reservation_id"])
    except ValueError:
        raise ApiError(400, "invalid_request", "reservationId must be an integer") from None
    response = await send_operation(
        request, charger, "CancelReservation", {"reservationId": reservation_id}
    )
    recorded = _find(reservation.charger_reservations(svc, charger), reservation_id)
    return json_response({"response": response, "reservation": recorded})


async def charger_list(request: web.Request) -> web.Response:
    """GET /api/chargers/{id}/reservations: one charger's reservations, newest first."""
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    entries = reservation.list_reservations(
        svc, charger_id=charger.id, active=query_bool(request, "active")
    )
    return json_response(entries)


async def site_list(request: web.Request) -> web.Response:
    """GET /api/reservations[?chargerId=…&active=true]: reservations across chargers."""
    svc = services(request)
    entries = reservation.list_reservations(
        svc, charger_id=request.query.get("chargerId"), active=query_bool(request, "active")
    )
    return json_response(entries)


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_get("/api/reservations", site_list)
    router.add_get("/api/chargers/{charger_id}/reservations", charger_list)
    router.add_post("/api/chargers/{charger_id}/reservations", reserve)
    router.add_delete("/api/chargers/{charger_id}/reservations/{reservation_id}", cancel)
