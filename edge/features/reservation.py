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

import edge.features.reservation_book as reservations
from edge.chargers import Charger
from edge.events import ChargerEvent, StatusChanged, TransactionStarted
from edge.features.base import Check, Handler, Payload, Recorder
from edge.features.reservation_book import Entry
from edge.operations import Origin, Outcome, Problem, Sender
from edge.services import Services
from edge.times import parse_time

__all__ = [
    "CHECKS",
    "HANDLERS",
    "RECORDERS",
    "allocate_id",
    "cancel",
    "charger_reservations",
    "cloud_reservation_id",
    "edge_reservation_id",
    "list_reservations",
    "note_cloud_id",
    "reserve",
    "subscribe",
]

HANDLERS: dict[str, Handler] = {}


def _entries(charger: Charger) -> list[Entry]:
    return list(charger.doc.get("reservations", []))


def _save(svc: Services, charger: Charger, entries: list[Entry], ended: list[Entry]) -> None:
    svc.chargers.update(charger, reservations=entries)
    for entry in ended:
        svc.record(charger.id, "ReservationEnded", entry)


def _note_id(svc: Services, charger: Charger, reservation_id: int) -> None:
    if reservation_id > charger.doc.get("reservationIdHigh", 0):
        svc.chargers.update(charger, reservationIdHigh=reservation_id)


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
        known.append(other.doc.get("reservationIdHigh", 0))
        known.extend(e["reservationId"] for e in other.doc.get("reservations", []))
    reservation_id = reservations.next_id(known)
    _note_id(svc, charger, reservation_id)
    return reservation_id


# --- the cloud's reservation ids ------------------------------------------------------------
# The cloud numbers its reservations itself, and so does this CSMS (`allocate_id`): toward
# the charger every reservation carries an edge id, and one the cloud made keeps the
# cloud's id beside it (`cloudReservationId`), so the cloud's CancelReservation and the
# StartTransaction it is told of name the cloud's id, and the two never collide on a
# charger.


def edge_reservation_id(svc: Services, charger: Charger, cloud_id: object) -> int | None:
    """The edge id of the charger's active reservation the cloud calls `cloud_id`."""
    for entry in reversed(charger_reservations(svc, charger)):
        if entry["status"] == reservations.ACTIVE and entry.get("cloudReservationId") == cloud_id:
            return int(entry["reservationId"])
    return None


async def note_cloud_id(
    svc: Services, charger: Charger, reservation_id: int, cloud_id: int
) -> None:
    """Keep the cloud's id beside the active reservation `reservation_id` (on disk at
    once: the StartTransaction that uses it must find it after any restart)."""
    entries = [
        {**e, "cloudReservationId": cloud_id}
        if e["reservationId"] == reservation_id and e["status"] == reservations.ACTIVE
        else e
        for e in charger_reservations(svc, charger)
    ]
    svc.chargers.update(charger, reservations=entries)
    await svc.chargers.persist()


def cloud_reservation_id(charger: Charger, reservation_id: int) -> int | None:
    """The cloud's id of the reservation the charger calls `reservation_id`; None for
    one the cloud did not make (the cloud is not told of it)."""
    entry = find(_entries(charger), reservation_id)
    cloud_id = entry.get("cloudReservationId") if entry is not None else None
    return cloud_id if isinstance(cloud_id, int) else None


def find(entries: list[Entry], reservation_id: int) -> Entry | None:
    """The newest entry with `reservation_id`, if any."""
    for entry in reversed(entries):
        if entry["reservationId"] == reservation_id:
            return entry
    return None


async def reserve(
    ops: Sender,
    charger: Charger,
    *,
    connector_id: int,
    id_tag: str,
    expiry_date: str,
    parent_id_tag: str | None = None,
    reservation_id: int | None = None,
    origin: Origin,
    force: bool = False,
) -> tuple[Outcome, Entry | None]:
    """Send ReserveNow; the charger's answer and the reservation, once Accepted.

    The parent id tag defaults to the one the id-tag list knows; the reservation id
    to a new one, unique across chargers and restarts (`allocate_id`).

    Raises:
        OperationError: see `Operations.send`.
    """
    svc = ops.services
    if parent_id_tag is None:
        known = svc.id_tags.get(id_tag)
        parent_id_tag = known.parent_id_tag if known is not None else None
    if reservation_id is None:
        reservation_id = allocate_id(svc, charger)
    payload: Payload = {
        "connectorId": connector_id,
        "expiryDate": expiry_date,
        "idTag": id_tag,
        "reservationId": reservation_id,
    }
    if parent_id_tag is not None:
        payload["parentIdTag"] = parent_id_tag
    outcome = await ops.send(charger, "ReserveNow", payload, origin=origin, force=force)
    recorded = None
    if outcome.response.get("status") == "Accepted":
        recorded = find(charger_reservations(svc, charger), reservation_id)
    return outcome, recorded


async def cancel(
    ops: Sender, charger: Charger, reservation_id: int, *, origin: Origin
) -> tuple[Outcome, Entry | None]:
    """Send CancelReservation; the charger's answer and the reservation as recorded.

    Raises:
        OperationError: see `Operations.send`.
    """
    outcome = await ops.send(
        charger, "CancelReservation", {"reservationId": reservation_id}, origin=origin
    )
    return outcome, find(charger_reservations(ops.services, charger), reservation_id)


def zero_supported(charger: Charger) -> bool | None:
    """The charger's reported ReserveConnectorZeroSupported, or None when unknown."""
    entry = charger.doc.get("configuration", {}).get("ReserveConnectorZeroSupported")
    value = entry.get("value") if isinstance(entry, dict) else None
    if not isinstance(value, str):
        return None
    return value.strip().casefold() == "true"


# --- checks before sending --------------------------------------------------------------


def check_reserve_now(svc: Services, charger: Charger, req: Payload) -> list[Problem]:
    problems: list[Problem] = []
    try:
        expiry = parse_time(req["expiryDate"])
    except (KeyError, TypeError, ValueError):
        problems.append({"field": "expiryDate", "message": "expiryDate must be an ISO 8601 time"})
    else:
        if expiry <= svc.now():
            # Legal (the charger reserves nothing, or until its own clock says so): warn.
            problems.append(
                {
                    "field": "expiryDate",
                    "message": "expiryDate is not in the future",
                    "severity": "warning",
                }
            )
    # "If the connectorId in the request is 0 ... [and] the configuration key
    # ReserveConnectorZeroSupported is not set to true, the Charge Point SHALL return
    # Rejected" (1.6 §5.13): unknown support is left for the charger to answer.
    if req.get("connectorId") == 0 and zero_supported(charger) is False:
        # The charger's answer, not a rule for the CSMS: sent, with a warning.
        problems.append(
            {
                "field": "connectorId",
                "message": "the charger reports ReserveConnectorZeroSupported = false; "
                "it will answer Rejected",
                "severity": "warning",
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


def _on_transaction_started(svc: Services, charger: Charger, event: TransactionStarted) -> None:
    reservation_id = event.reservation_id
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
        transaction_id=event.transaction_id,
    )
    _save(svc, charger, entries, ended)


def _on_status_changed(svc: Services, charger: Charger, event: StatusChanged) -> None:
    status = event.status
    if status not in ("Faulted", "Unavailable"):
        return
    # A reservation ends when its connector (connector 0: the Charge Point) becomes
    # Faulted or Unavailable (1.6 §3.11).
    connector_id = event.connector_id
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
    if not isinstance(event, TransactionStarted | StatusChanged):
        return
    charger = svc.chargers.get(event.charger_id)
    if charger is None or not charger.doc.get("reservations"):
        return
    if isinstance(event, TransactionStarted):
        _on_transaction_started(svc, charger, event)
    else:
        _on_status_changed(svc, charger, event)
    # Expiry is lazy: an Available after Reserved past expiryDate ends it here too.
    charger_reservations(svc, charger)


def subscribe(svc: Services) -> None:
    """Follow charger events this feature keeps state from: transactions using a
    reservation, and connector status ending one."""
    svc.events.subscribe(lambda event: _on_event(svc, event))
