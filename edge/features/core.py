"""OCPP 1.6 Core profile.

Charger → CSMS: Authorize, BootNotification, DataTransfer, Heartbeat, MeterValues,
StartTransaction, StatusNotification, StopTransaction.
CSMS → charger (sent by operators through the API; results recorded here):
ChangeAvailability, ChangeConfiguration, ClearCache, DataTransfer, GetConfiguration,
RemoteStartTransaction, RemoteStopTransaction, Reset, UnlockConnector.

Transaction messages (StartTransaction, StopTransaction, MeterValues) are answered
only after the journal has them on disk, and are always answered: sanity checks
log and flag, they never refuse (OCPP 1.6 §3.7.1: a missing answer only makes the
charger retry and eventually drop the data).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import edge.features.reservation as reservation
from edge.chargers import BOOT_FIELDS, Charger, Registration
from edge.events import (
    Booted,
    MeterValuesReceived,
    StatusChanged,
    TransactionStarted,
    TransactionStopped,
)
from edge.features.base import Handler, Payload, Recorder
from edge.id_tags import AuthorizationStatus, id_tag_info
from edge.ocppj import WRITE_ONLY_KEYS
from edge.services import Services
from edge.store import MeterSample, StatusRecord
from edge.times import normalise_time
from edge.transactions.active import ActiveTransaction
from edge.transactions.meter_values import check_register, register_wh

__all__ = ["HANDLERS", "RECORDERS"]

log = logging.getLogger(__name__)

# Connector states in which a transaction is actually running on the charger.
_CHARGING_STATES = frozenset({"Charging", "SuspendedEV", "SuspendedEVSE"})


async def boot_notification(svc: Services, charger: Charger, req: Payload) -> Payload:
    registration = charger.registration
    accepted = registration is Registration.ACCEPTED
    boot_data = {field: req.get(key) for key, field in BOOT_FIELDS.items()}
    if svc.chargers.record_boot(charger, accepted=accepted, boot=boot_data, now=svc.now_text()):
        # The charger will not boot again on reconnect (OCPP-J §5.4): its acceptance
        # must be on disk before it hears of it. Unchanged reboots write nothing.
        await svc.chargers.persist()
    svc.record(charger.id, "BootNotification", {**req, "status": str(registration)})
    svc.publish(
        Booted(charger_id=charger.id, at=svc.now(), registration=str(registration), boot=boot_data)
    )
    # Accepted: interval is the heartbeat interval. Otherwise it is the minimum wait before
    # the next BootNotification (OCPP 1.6 §4.2).
    interval = (
        svc.config.ocpp.heartbeat_interval if accepted else svc.config.ocpp.boot_retry_interval
    )
    return {"status": str(registration), "currentTime": svc.now_text(), "interval": interval}


async def heartbeat(svc: Services, charger: Charger, req: Payload) -> Payload:
    return {"currentTime": svc.now_text()}


async def status_notification(svc: Services, charger: Charger, req: Payload) -> Payload:
    connector_id: int = req["connectorId"]
    state = charger.connector(connector_id)
    previous = state.status
    state.status = req["status"]
    state.error_code = req["errorCode"]
    state.info = req.get("info")
    state.vendor_error_code = req.get("vendorErrorCode")
    state.timestamp = normalise_time(req["timestamp"]) if "timestamp" in req else svc.now_text()
    if state.status not in _CHARGING_STATES and state.status not in ("Preparing", "Finishing"):
        # Available / Unavailable / Faulted / Reserved: nothing runs on this connector now.
        state.transaction_id = None
    record = StatusRecord(
        charger_id=charger.id,
        connector_id=connector_id,
        status=state.status,
        error_code=state.error_code,
        info=state.info,
        vendor_id=req.get("vendorId"),
        vendor_error_code=state.vendor_error_code,
        timestamp=state.timestamp,
        received_at=svc.now_text(),
    )
    outbox = svc.for_cloud(charger.id, "StatusNotification", req, connector_id)
    written = svc.journal.add_status(record, outbox)
    if outbox is not None:
        # For the cloud: in the outbox before the charger's answer.
        await written
    # Otherwise history, not acknowledged data: the reply does not wait for the disk.
    svc.publish(
        StatusChanged(
            charger_id=charger.id,
            at=svc.now(),
            connector_id=connector_id,
            status=state.status,
            previous=previous,
            error_code=state.error_code,
        )
    )
    return {}


async def authorize(svc: Services, charger: Charger, req: Payload) -> Payload:
    id_tag: str = req["idTag"]
    info: dict[str, Any] | None = None
    source = "local"
    if svc.cloud_authorize is not None:
        # The cloud decides when it answers in time (bounded by authorize_timeout).
        info = await svc.cloud_authorize(charger.id, id_tag)
        if info is not None:
            source = "cloud"
            if svc.cloud_verdicts is not None:
                svc.cloud_verdicts.put(id_tag, info, svc.now())
    if info is None:
        info, source = local_verdict(svc, id_tag)
    svc.record(charger.id, "Authorize", {"idTag": id_tag, "status": info["status"], "by": source})
    svc.metrics.inc("edge_authorizations_total", status=info["status"])
    return {"idTagInfo": info}


def _for_cloud_start(charger: Charger, req: Payload) -> Payload:
    """StartTransaction.req as the cloud gets it: the cloud's own reservation id, or none
    for a reservation the cloud did not make (it could not know the edge's id)."""
    edge_id = req.get("reservationId")
    if not isinstance(edge_id, int):
        return req
    cloud_req = dict(req)
    cloud_id = reservation.cloud_reservation_id(charger, edge_id)
    if cloud_id is None:
        del cloud_req["reservationId"]
    else:
        cloud_req["reservationId"] = cloud_id
    return cloud_req


def local_verdict(svc: Services, id_tag: str) -> tuple[dict[str, Any], str]:
    """The edge's own verdict and where it came from: its id-tag list, else (with a
    cloud) the cloud's last verdict on the tag, else Invalid."""
    entry = svc.id_tags.get(id_tag)
    if entry is None and svc.cloud_verdicts is not None:
        cached = svc.cloud_verdicts.get(id_tag, svc.now())
        if cached is not None:
            return cached, "cloud cache"
    return id_tag_info(entry, svc.now()), "local"


def _charging_elsewhere(svc: Services, id_tag: str, charger: Charger, connector_id: int) -> bool:
    """Whether the tag runs a transaction on another connector that is still charging."""
    for tx in svc.transactions.for_id_tag(id_tag):
        if tx.charger_id == charger.id and tx.connector_id == connector_id:
            # The charger starts a new transaction here, so the old one is over for it.
            continue
        other = svc.chargers.get(tx.charger_id)
        if other is None or not other.connected:
            continue
        state = other.connectors.get(tx.connector_id)
        if state is not None and state.status in _CHARGING_STATES:
            return True
    return False


async def start_transaction(svc: Services, charger: Charger, req: Payload) -> Payload:
    id_tag: str = req["idTag"]
    connector_id: int = req["connectorId"]
    # The CSMS MUST verify the idTag: the charger may have authorized it from stale
    # cache or local-list data (OCPP 1.6 §4.8).
    info, _ = local_verdict(svc, id_tag)
    if (
        info["status"] == AuthorizationStatus.ACCEPTED
        and svc.config.ocpp.concurrent_tx == "reject"
        and _charging_elsewhere(svc, id_tag, charger, connector_id)
    ):
        info["status"] = str(AuthorizationStatus.CONCURRENT_TX)
    start_time = normalise_time(req["timestamp"])
    reservation_id = req.get("reservationId")
    # A transactionId is returned whatever the tag's status (TC_037_3): the charger
    # decides whether to stop, and the energy must be accounted for either way.
    transaction_id = await svc.journal.start_transaction(
        charger_id=charger.id,
        connector_id=connector_id,
        id_tag=id_tag,
        id_tag_status=info["status"],
        meter_start=req["meterStart"],
        start_time=start_time,
        reservation_id=reservation_id,
        created_at=svc.now_text(),
        outbox=svc.for_cloud(
            charger.id, "StartTransaction", _for_cloud_start(charger, req), connector_id
        ),
    )
    svc.transactions.start(
        ActiveTransaction(
            transaction_id=transaction_id,
            charger_id=charger.id,
            connector_id=connector_id,
            id_tag=id_tag,
            meter_start=req["meterStart"],
            start_time=start_time,
            last_register_wh=float(req["meterStart"]),
        )
    )
    charger.connector(connector_id).transaction_id = transaction_id
    svc.metrics.inc("edge_transactions_started_total")
    svc.publish(
        TransactionStarted(
            charger_id=charger.id,
            at=svc.now(),
            transaction_id=transaction_id,
            connector_id=connector_id,
            id_tag=id_tag,
            meter_start=req["meterStart"],
            start_time=start_time,
            reservation_id=reservation_id,
            status=info["status"],
        )
    )
    return {"transactionId": transaction_id, "idTagInfo": info}


def _samples(
    svc: Services,
    charger: Charger,
    meter_values: list[dict[str, Any]],
    active: ActiveTransaction | None,
) -> list[MeterSample]:
    """Turn MeterValue elements into journal samples, checking the energy register."""
    samples: list[MeterSample] = []
    for mv in meter_values:
        sampled = mv["sampledValue"]
        wh = register_wh(sampled)
        if wh is not None and active is not None:
            check = check_register(active.last_register_wh, wh)
            if check.accepted:
                active.last_register_wh = wh
            else:
                log.warning(
                    "charger %s transaction %s: %s (%.1f Wh after %s Wh); sample kept, not counted",
                    charger.id,
                    active.transaction_id,
                    check.reason,
                    wh,
                    active.last_register_wh,
                )
                svc.record(
                    charger.id,
                    "RegisterAnomaly",
                    {
                        "transactionId": active.transaction_id,
                        "reason": check.reason,
                        "valueWh": wh,
                        "previousWh": active.last_register_wh,
                    },
                )
                wh = None
        samples.append(
            MeterSample(
                timestamp=normalise_time(mv["timestamp"]), register_wh=wh, sampled_value=sampled
            )
        )
    return samples


async def meter_values(svc: Services, charger: Charger, req: Payload) -> Payload:
    connector_id: int = req["connectorId"]
    transaction_id: int | None = req.get("transactionId")
    active = svc.transactions.get(transaction_id) if transaction_id is not None else None
    samples = _samples(svc, charger, req["meterValue"], active)
    await svc.journal.add_meter_samples(
        charger_id=charger.id,
        connector_id=connector_id,
        transaction_id=transaction_id,
        samples=samples,
        outbox=svc.for_cloud(charger.id, "MeterValues", req, connector_id),
    )
    svc.publish(
        MeterValuesReceived(
            charger_id=charger.id,
            at=svc.now(),
            connector_id=connector_id,
            transaction_id=transaction_id,
            meter_value=req["meterValue"],
        )
    )
    return {}


async def stop_transaction(svc: Services, charger: Charger, req: Payload) -> Payload:
    transaction_id: int = req["transactionId"]
    meter_stop: int = req["meterStop"]
    # "reason" is optional; absent means Local (OCPP 1.6 §7.36, J errata 2.4).
    reason: str = req.get("reason", "Local")
    id_tag: str | None = req.get("idTag")
    active = svc.transactions.get(transaction_id)
    samples = _samples(svc, charger, req.get("transactionData", []), active)
    stop = svc.journal.stop_transaction(
        transaction_id=transaction_id,
        meter_stop=meter_stop,
        stop_time=normalise_time(req["timestamp"]),
        reason=reason,
        stop_id_tag=id_tag,
        outbox=svc.for_cloud(charger.id, "StopTransaction", req),
    )
    writes: list[asyncio.Future[Any]] = [stop]
    if samples:
        connector_id = active.connector_id if active is not None else 0
        writes.append(
            svc.journal.add_meter_samples(
                charger_id=charger.id,
                connector_id=connector_id,
                transaction_id=transaction_id,
                samples=samples,
            )
        )
    await asyncio.gather(*writes)
    record = stop.result()
    if record is None:
        # Unknown id, or -1 from a charger that never got its StartTransaction.conf
        # (errata 3.18): answer as if valid, and keep the data for reconciliation.
        log.warning("charger %s stopped unknown transaction %s", charger.id, transaction_id)
        await svc.journal.add_event(
            charger_id=charger.id, kind="UnknownTransactionStop", data=req, at=svc.now_text()
        )
    else:
        svc.transactions.pop(transaction_id)
        state = charger.connectors.get(record.connector_id)
        if state is not None and state.transaction_id == transaction_id:
            state.transaction_id = None
        if meter_stop < record.meter_start:
            svc.record(
                charger.id,
                "RegisterAnomaly",
                {
                    "transactionId": transaction_id,
                    "reason": "meterStop below meterStart",
                    "meterStart": record.meter_start,
                    "meterStop": meter_stop,
                },
            )
        svc.metrics.inc("edge_transactions_stopped_total", reason=reason)
        svc.publish(
            TransactionStopped(
                charger_id=charger.id,
                at=svc.now(),
                transaction_id=transaction_id,
                connector_id=record.connector_id,
                meter_stop=meter_stop,
                reason=reason,
                energy_wh=record.energy_wh,
            )
        )
    if id_tag is None:
        return {}
    return {"idTagInfo": local_verdict(svc, id_tag)[0]}


async def data_transfer(svc: Services, charger: Charger, req: Payload) -> Payload:
    # Vendor extensions are the cloud's business: with the cloud link up, the charger
    # gets the cloud's answer (within authorize_timeout), as if connected to it directly.
    if svc.cloud_data_transfer is not None:
        answer = await svc.cloud_data_transfer(charger.id, req)
        if answer is not None:
            svc.record(charger.id, "DataTransfer", {**req, "cloudAnswer": answer})
            return answer
    # No vendor extension is implemented here: every vendorId is unknown to this CSMS,
    # and UnknownVendorId carries no data (OCPP 1.6 §4.3). Kept for the operator to see,
    # and for the cloud when it is back.
    await svc.record_for_cloud(charger.id, "DataTransfer", req)
    return {"status": "UnknownVendorId"}


HANDLERS: dict[str, Handler] = {
    "Authorize": authorize,
    "BootNotification": boot_notification,
    "DataTransfer": data_transfer,
    "Heartbeat": heartbeat,
    "MeterValues": meter_values,
    "StartTransaction": start_transaction,
    "StatusNotification": status_notification,
    "StopTransaction": stop_transaction,
}


# --- results of operations the CSMS sent -------------------------------------------------


def record_get_configuration(svc: Services, charger: Charger, req: Payload, res: Payload) -> None:
    reported = {
        entry["key"]: {"value": entry.get("value"), "readonly": entry["readonly"]}
        for entry in res.get("configurationKey", [])
        if entry["key"].casefold() not in WRITE_ONLY_KEYS
    }
    configuration = {} if not req.get("key") else dict(charger.doc.get("configuration", {}))
    configuration.update(reported)
    for key in res.get("unknownKey", []):
        configuration.pop(key, None)
    svc.chargers.update(
        charger, configuration=configuration, unknownConfigurationKeys=res.get("unknownKey", [])
    )


def record_change_configuration(
    svc: Services, charger: Charger, req: Payload, res: Payload
) -> None:
    if res["status"] not in ("Accepted", "RebootRequired"):
        return
    key: str = req["key"]
    if key.casefold() in WRITE_ONLY_KEYS:
        return
    configuration = dict(charger.doc.get("configuration", {}))
    known = configuration.get(key)
    readonly = known["readonly"] if known is not None else False
    configuration[key] = {
        "value": req["value"],
        "readonly": readonly,
        "rebootRequired": res["status"] == "RebootRequired",
    }
    svc.chargers.update(charger, configuration=configuration)


def record_change_availability(svc: Services, charger: Charger, req: Payload, res: Payload) -> None:
    if res["status"] not in ("Accepted", "Scheduled"):
        return
    availability = dict(charger.doc.get("availability", {}))
    connector_id = req["connectorId"]
    if connector_id == 0:
        # Connector 0 addresses the whole charger: it overrides per-connector requests.
        availability = {}
    availability[str(connector_id)] = {
        "type": req["type"],
        "status": res["status"],
        "at": svc.now_text(),
    }
    svc.chargers.update(charger, availability=availability)


def record_reset(svc: Services, charger: Charger, req: Payload, res: Payload) -> None:
    if res["status"] == "Accepted":
        svc.chargers.update(charger, lastReset={"type": req["type"], "at": svc.now_text()})


RECORDERS: dict[str, Recorder] = {
    "ChangeAvailability": record_change_availability,
    "ChangeConfiguration": record_change_configuration,
    "GetConfiguration": record_get_configuration,
    "Reset": record_reset,
}
