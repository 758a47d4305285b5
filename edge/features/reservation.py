"""OCPP 1.6 Reservation profile: the reservations the CSMS believes each charger holds.

CSMS → charger (through the API): ReserveNow and CancelReservation. The charger
reports their use in StartTransaction.req (`reservationId`) and their end in
StatusNotification.req.

A reservation is recorded (charger document field `reservations`, see
`edge.reservations`) only once the charger answers ReserveNow Accepted. It ends
as Used when a StartTransaction carries its id, Expired once its expiryDate has
passed (evaluated lazily whenever reservations are read or a charger event
arrives), Cancelled on CancelReservation Accepted or when its connector (for
connector 0: the charger) goes Faulted or Unavailable. Reservation ids the CSMS
allocates stay unique across chargers and restarts: every charger document keeps
the highest id it has seen (`reservationIdHigh`).
"""

from __future__ import annotations

from typing import Any

from edge import reservations
from edge.chargers import Charger
from edge.features.base import Check, Handler, Payload, Recorder
from edge.ocppj import parse_datetime
from edge.reservations import Entry
from edge.services import ChargerEvent, Services

__all__ = [
    "CHECKS",
    "HANDLERS",
    "RECORDERS",
    "allocate_id",
    "charger_reservations",
    "list_reservations",
    "subscribe",
]

HIGH_FIELD = "reservationIdHigh"

HANDLERS: dict[str, Handler] = {}


def _entries(charger: Charger) -> list[Entry]:
    return list(charger.doc.get("reservations", []))


def _save(svc: Services, charger: Charger, entries: list[Entry], ended: list[Entry]) -> None:
    svc.chargers.update(charger, reservations=entries)
    for entry in ended:
        svc.record(charger.id, "ReservationEnded", entry)


def _note_id(svc: Services, charger: Charger, reservation_id: int) -> None:
    if reservation_id > int(charger.doc.get(HIGH_FIELD, 0)):
        svc.chargers.update(charger, **{HIGH_FIELD: reservation_id})


def charger_reservations(svc: Services, charger: Charger) -> list[Entry]:
    """The charger's reservations (active and recently ended), expiring those past due."""
    entries, expired = reservations.expire(_entries(charger), svc.now())
    if expired:
        _save(svc, charger, entries, expired)
    return entries


def list_reservations(
    svc: Services, *, charger_id: str | None = None, active: bool | None = None
) -> list[Entry]:
    """Reservations across chargers, newest first; optionally one charger's, active or ended."""
    found: list[Entry] = []
    for charger in svc.chargers:
        if charger_id is not None and charger.id != charger_id:
            continue
        for entry in charger_reservations(svc, charger):
            if active is None or (entry["status"] == reservations.ACTIVE) == active:
                found.append(entry)
    found.sort(key=lambda e: (e["createdAt"], e["reservationId"]), reverse=True)
    return found


def allocate_id(svc: Services, charger: Charger) -> int:
    """A new reservation id, above every id any charger has seen; noted on `charger` at
    once so concurrent requests never share one."""
    known: list[int] = []
    for other in svc.chargers:
        known.append(int(other.doc.get(HIGH_FIELD, 0)))
        known.extend(e["reservationId"] for e in other.doc.get("reservations", []))
    reservation_id = reservations.next_id(known)
    _note_id(svc, charger, reservation_id)
    return reservation_id


def zero_supported(charger: Charger) -> bool | None:
    """The charger's reported ReserveConnectorZeroSupported, or None when unknown."""
    entry = charger.doc.get("configuration", {}).get("ReserveConnectorZeroSupported")
    value = entry.get("value") if isinstance(entry, dict) else None
    if not isinstance(value, str):
        return None
    return value.strip().casefold() == "true"


# --- checks before sending --------------------------------------------------------------


def check_reserve_now(svc: Services, charger: Charger, req: Payload) -> list[dict[str, str]]:
    problems = []
    try:
        expiry = parse_datetime(req["expiryDate"])
    except (KeyError, TypeError, ValueError):
        problems.append({"field": "expiryDate", "message": "expiryDate must be an ISO 8601 time"})
    else:
        if expiry <= svc.now():
            problems.append({"field": "expiryDate", "message": "expiryDate must be in the future"})
    # "If the connectorId in the request is 0 ... [and] the configuration key
    # ReserveConnectorZeroSupported is not set to true, the Charge Point SHALL return
    # Rejected" (1.6 §5.13): unknown support is left for the charger to answer.
    if req.get("connectorId") == 0 and zero_supported(charger) is False:
        problems.append(
            {
                "field": "connectorId",
                "message": "the charger reports ReserveConnectorZeroSupported = false",
            }
        )
    return problems


CHECKS: dict[str, Check] = {"ReserveNow": check_reserve_now}


# --- recording results ------------------------------------------------------------------


def record_reserve_now(svc: Services, charger: Charger, req: Payload, res: Payload) -> None:
    reservation_id: int = req["reservationId"]
    _note_id(svc, charger, reservation_id)
    if res.get("status") != "Accepted":
        return
    entry = reservations.new_entry(
        charger_id=charger.id,
        reservation_id=reservation_id,
        connector_id=req["connectorId"],
        id_tag=req["idTag"],
        parent_id_tag=req.get("parentIdTag"),
        expiry_date=req["expiryDate"],
        now=svc.now_text(),
    )
    entries = reservations.add(charger_reservations(svc, charger), entry)
    svc.chargers.update(charger, reservations=entries)
    svc.record(charger.id, "ReservationMade", entry)


def record_cancel_reservation(svc: Services, charger: Charger, req: Payload, res: Payload) -> None:
    # "If the Charge Point has a reservation matching the reservationId in the request
    # PDU, it SHALL return status 'Accepted'" (1.6 §5.1): only then is it gone.
    if res.get("status") != "Accepted":
        return
    entries = charger_reservations(svc, charger)
    matches = [i for i, e in enumerate(entries) if e["reservationId"] == req["reservationId"]]
    entries, ended = reservations.end(
        entries,
        matches,
        status=reservations.CANCELLED,
        reason="CancelReservation",
        now=svc.now_text(),
    )
    _save(svc, charger, entries, ended)


RECORDERS: dict[str, Recorder] = {
    "CancelReservation": record_cancel_reservation,
    "ReserveNow": record_reserve_now,
}


# --- charger events ---------------------------------------------------------------------


def _on_transaction_started(svc: Services, charger: Charger, data: dict[str, Any]) -> None:
    reservation_id = data.get("reservationId")
    if reservation_id is None:
        return
    # A transaction that carries its reservationId uses the reservation (1.6 §3.11);
    # matched before expiring, as the charger judged the expiry when it started.
    entries = _entries(charger)
    matches = [i for i, e in enumerate(entries) if e["reservationId"] == reservation_id]
    entries, ended = reservations.end(
        entries,
        matches,
        status=reservations.USED,
        reason="TransactionStarted",
        now=svc.now_text(),
        transaction_id=data.get("transactionId"),
    )
    _save(svc, charger, entries, ended)


def _on_status_changed(svc: Services, charger: Charger, data: dict[str, Any]) -> None:
    status = data.get("status")
    if status not in ("Faulted", "Unavailable"):
        return
    # A reservation ends when its connector (connector 0: the Charge Point) becomes
    # Faulted or Unavailable (1.6 §3.11).
    connector_id = data.get("connectorId")
    entries = _entries(charger)
    matches = [
        i for i, e in enumerate(entries) if connector_id == 0 or e["connectorId"] == connector_id
    ]
    entries, ended = reservations.end(
        entries, matches, status=reservations.CANCELLED, reason=str(status), now=svc.now_text()
    )
    _save(svc, charger, entries, ended)


def _on_event(svc: Services, event: ChargerEvent) -> None:
    # Only these end a reservation; MeterValues and the rest are the hot path, and reads
    # evaluate expiry lazily anyway.
    if event.kind not in ("TransactionStarted", "StatusChanged"):
        return
    charger = svc.chargers.get(event.charger_id)
    if charger is None or not charger.doc.get("reservations"):
        return
    if event.kind == "TransactionStarted":
        _on_transaction_started(svc, charger, event.data)
    elif event.kind == "StatusChanged":
        _on_status_changed(svc, charger, event.data)
    # Expiry is lazy: an Available after Reserved past expiryDate ends it here too.
    charger_reservations(svc, charger)


def subscribe(svc: Services) -> None:
    """Follow charger events this feature keeps state from: transactions using a
    reservation, and connector status ending one."""
    svc.events.subscribe(lambda event: _on_event(svc, event))
