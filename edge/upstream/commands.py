"""Commands from the cloud, relayed to the charger through the one command pipeline.

A cloud CALL for a charger goes through `Operations.send` with origin ``cloud``, like an
operator's command: the same per-charger queue, checks, effect recording and audit, and
the cloud gets the charger's real answer. Transaction ids are the cloud's in the cloud's
CALLs and the edge's toward the charger (`edge.store` keeps the map): a command naming a
transaction the edge does not know is answered Rejected, not forwarded. Reservation ids
likewise: the edge numbers every reservation toward the charger and keeps the cloud's id
beside it (`edge.features.reservation`).

With a grid meter the site controller owns ChargePointMaxProfile on every charger (its
safe profile and its lease). A ChargePointMaxProfile from the cloud is then not
installed on the charger (it would outrank or replace the lease): it is kept as the
cloud's cap on the charger inside the site's allocation (`edge.site.caps`), answered
Accepted, and the lease carries the lower of the two. A ClearChargingProfile that could
reach ChargePointMaxProfiles removes the cloud's caps it matches and clears only the
TxDefault and Tx profiles on the charger, never the site's. TxDefault and Tx profiles
are relayed: the site's ChargePointMaxProfile still bounds them, since a charger
applies the minimum.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from edge.chargers import Charger
from edge.features import reservation
from edge.ocppj.errors import GenericError, error_for_code
from edge.operations import ChargerCallError, NotConnected, OperationError, Origin, Timeout
from edge.operations.pipeline import Operations
from profiles.lease import LEASE_PROFILE_ID, SAFE_PROFILE_ID
from profiles.model import ChargingProfilePurpose, ProfileFormatError, parse_profile

__all__ = ["relay"]

log = logging.getLogger(__name__)

Payload = dict[str, Any]
SITE_PROFILE_IDS = frozenset({LEASE_PROFILE_ID, SAFE_PROFILE_ID})


async def relay(
    ops: Operations,
    charger_id: str,
    action: str,
    payload: Payload,
    settled: Callable[[], Awaitable[None]] | None = None,
) -> Payload:
    """The charger's answer to the cloud's `action`; raises OcppError for a CALLERROR.

    `settled` waits until the link's message in hand has its answer on disk: a command
    naming a transaction id the edge does not know yet may name the one the cloud has
    just given in a StartTransaction.conf."""

    async def edge_transaction(cloud_tx: object) -> int | None:
        found = svc.journal.edge_transaction(cloud_tx)
        if found is None and settled is not None:
            await settled()
            found = svc.journal.edge_transaction(cloud_tx)
        return found

    svc = ops.services
    charger = svc.chargers.get(charger_id)
    if charger is None or not charger.connected:
        raise GenericError(f"charger {charger_id} is not connected to the site controller")
    metered = svc.config.meter is not None
    payload = dict(payload)
    if action == "RemoteStopTransaction":
        edge_tx = await edge_transaction(payload.get("transactionId"))
        if edge_tx is None:
            return {"status": "Rejected"}
        payload["transactionId"] = edge_tx
    elif action == "SetChargingProfile":
        profile = dict(payload.get("csChargingProfiles") or {})
        purpose = profile.get("chargingProfilePurpose")
        if metered and purpose == "ChargePointMaxProfile" and ops.site_caps is not None:
            return await _cloud_cap(ops, charger, payload, profile)
        if "transactionId" in profile:
            edge_tx = await edge_transaction(profile["transactionId"])
            if edge_tx is None:
                return {"status": "Rejected"}
            profile["transactionId"] = edge_tx
            payload["csChargingProfiles"] = profile
    elif action == "ClearChargingProfile" and metered:
        return await _clear_on_site(ops, charger, payload)
    elif action == "ReserveNow":
        # The edge's own id toward the charger (`edge.features.reservation`): the same
        # one again when the cloud replaces its reservation.
        cloud_id = payload.get("reservationId")
        edge_id = reservation.edge_reservation_id(svc, charger, cloud_id)
        if edge_id is None:
            edge_id = reservation.allocate_id(svc, charger)
        payload["reservationId"] = edge_id
        answer = await _send(ops, charger_id, action, payload)
        if answer.get("status") == "Accepted" and isinstance(cloud_id, int):
            await reservation.note_cloud_id(svc, charger, edge_id, cloud_id)
        return answer
    elif action == "CancelReservation":
        edge_id = reservation.edge_reservation_id(svc, charger, payload.get("reservationId"))
        if edge_id is None:
            return {"status": "Rejected"}
        payload["reservationId"] = edge_id
    return await _send(ops, charger_id, action, payload)


async def _cloud_cap(
    ops: Operations, charger: Charger, payload: Payload, profile: Payload
) -> Payload:
    """Keep the cloud's ChargePointMaxProfile as a cap inside the site's allocation."""
    assert ops.site_caps is not None
    problem = None
    parsed = None
    if payload.get("connectorId") != 0:
        problem = "a ChargePointMaxProfile applies to connector 0 only"
    else:
        try:
            parsed = parse_profile(profile)
        except (ProfileFormatError, KeyError, TypeError, ValueError) as err:
            problem = str(err)
    if parsed is None:
        log.warning("cloud ChargePointMaxProfile for %s refused: %s", charger.id, problem)
        ops.services.record(charger.id, "CloudProfileRefused", {"reason": problem, **payload})
        return {"status": "Rejected"}
    await ops.site_caps.set_cloud_profile(charger, parsed)
    return {"status": "Accepted"}


async def _clear_on_site(ops: Operations, charger: Charger, payload: Payload) -> Payload:
    """ClearChargingProfile on a site whose controller owns ChargePointMaxProfile: the
    cloud's caps it matches go, the site's profiles stay, the rest reaches the charger."""
    purpose = payload.get("chargingProfilePurpose")
    removed = 0
    if ops.site_caps is not None:
        # Matched as the charger matches its own profiles (the schema checked the enum).
        removed = await ops.site_caps.clear_cloud_profiles(
            charger,
            profile_id=payload.get("id"),
            connector_id=payload.get("connectorId"),
            purpose=ChargingProfilePurpose(purpose) if purpose is not None else None,
            stack_level=payload.get("stackLevel"),
        )
    cleared = "Accepted" if removed else "Unknown"
    if "id" in payload:
        if removed or payload["id"] in SITE_PROFILE_IDS:
            return {"status": cleared}
        return await _send(ops, charger.id, "ClearChargingProfile", payload)
    if purpose == "ChargePointMaxProfile":
        return {"status": cleared}
    if purpose is not None:
        return await _send(ops, charger.id, "ClearChargingProfile", payload)
    # Every purpose: the charger's TxDefault and Tx profiles, never the site's.
    statuses = [cleared]
    for narrowed_purpose in ("TxDefaultProfile", "TxProfile"):
        narrowed = {**payload, "chargingProfilePurpose": narrowed_purpose}
        answer = await _send(ops, charger.id, "ClearChargingProfile", narrowed)
        statuses.append(answer["status"])
    return {"status": "Accepted" if "Accepted" in statuses else "Unknown"}


async def _send(ops: Operations, charger_id: str, action: str, payload: Payload) -> Payload:
    charger = ops.services.chargers.get(charger_id)
    if charger is None:
        raise GenericError(f"charger {charger_id} is unknown to the site controller")
    try:
        outcome = await ops.send(charger, action, payload, origin=Origin.CLOUD)
    except ChargerCallError as err:
        code = str(err.extra.get("errorCode", "GenericError"))
        raise error_for_code(code)(str(err.detail or "")) from err
    except NotConnected as err:
        raise GenericError(str(err)) from err
    except Timeout as err:
        raise GenericError(f"the charger did not answer: {err}") from err
    except OperationError as err:
        raise GenericError(f"{err.code}: {err}") from err
    response: Payload = outcome.response
    return response
