"""Commands from the cloud, relayed to the charger through the one command pipeline.

A cloud CALL for a charger goes through `Operations.send` with origin ``cloud``, like an
operator's command: the same per-charger queue, checks, effect recording and audit, and
the cloud gets the charger's real answer. Transaction ids are the cloud's in the cloud's
CALLs and the edge's toward the charger (`edge.store` keeps the map): a command naming a
transaction the edge does not know is answered Rejected, not forwarded.

The site's limits are the site's: with a grid meter, a ChargePointMaxProfile from the
cloud is not installed (it would outrank or replace the site's lease) and is answered
Rejected; a ClearChargingProfile that could reach the site's profiles clears only the
TxDefault and Tx profiles. TxDefault and Tx profiles are relayed: the site's
ChargePointMaxProfile still bounds them, since a charger applies the minimum.
"""

from __future__ import annotations

import logging
from typing import Any

from edge.ocppj.errors import GenericError, error_for_code
from edge.operations import ChargerCallError, NotConnected, OperationError, Origin, Timeout
from edge.operations.pipeline import Operations
from profiles.lease import LEASE_PROFILE_ID, SAFE_PROFILE_ID

__all__ = ["relay"]

log = logging.getLogger(__name__)

Payload = dict[str, Any]
SITE_PROFILE_IDS = frozenset({LEASE_PROFILE_ID, SAFE_PROFILE_ID})


async def relay(ops: Operations, charger_id: str, action: str, payload: Payload) -> Payload:
    """The charger's answer to the cloud's `action`; raises OcppError for a CALLERROR."""
    svc = ops.services
    charger = svc.chargers.get(charger_id)
    if charger is None or not charger.connected:
        raise GenericError(f"charger {charger_id} is not connected to the site controller")
    metered = svc.config.meter is not None
    payload = dict(payload)
    if action == "RemoteStopTransaction":
        edge_tx = svc.journal.edge_transaction(payload.get("transactionId", -1))
        if edge_tx is None:
            return {"status": "Rejected"}
        payload["transactionId"] = edge_tx
    elif action == "SetChargingProfile":
        profile = dict(payload.get("csChargingProfiles") or {})
        purpose = profile.get("chargingProfilePurpose")
        if metered and purpose == "ChargePointMaxProfile":
            log.warning("cloud ChargePointMaxProfile for %s refused: the site sets it", charger_id)
            svc.record(charger_id, "CloudProfileRefused", {"reason": "site limits", **payload})
            return {"status": "Rejected"}
        if "transactionId" in profile:
            edge_tx = svc.journal.edge_transaction(profile["transactionId"])
            if edge_tx is None:
                return {"status": "Rejected"}
            profile["transactionId"] = edge_tx
            payload["csChargingProfiles"] = profile
    elif action == "ClearChargingProfile" and metered and _reaches_site(payload):
        return await _clear_outside_site(ops, charger_id, payload)
    return await _send(ops, charger_id, action, payload)


def _reaches_site(payload: Payload) -> bool:
    """Whether a ClearChargingProfile could match the site's profiles."""
    if "id" in payload:
        return payload["id"] in SITE_PROFILE_IDS
    purpose = payload.get("chargingProfilePurpose")
    return purpose in (None, "ChargePointMaxProfile")


async def _clear_outside_site(ops: Operations, charger_id: str, payload: Payload) -> Payload:
    if payload.get("id") in SITE_PROFILE_IDS or (
        payload.get("chargingProfilePurpose") == "ChargePointMaxProfile"
    ):
        return {"status": "Unknown"}
    statuses = []
    for purpose in ("TxDefaultProfile", "TxProfile"):
        narrowed = {**payload, "chargingProfilePurpose": purpose}
        narrowed.pop("id", None)
        statuses.append((await _send(ops, charger_id, "ClearChargingProfile", narrowed))["status"])
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
