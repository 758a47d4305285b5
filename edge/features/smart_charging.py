"""OCPP 1.6 Smart Charging profile: what the CSMS believes each charger holds, and predicts.

CSMS → charger (through the API): SetChargingProfile, ClearChargingProfile,
GetCompositeSchedule, and RemoteStartTransaction carrying a TxProfile.

The CSMS mirrors each charger's installed profiles (`profiles.installed`) from the
results the charger gives: a profile is recorded only once Accepted, cleared by the
same rules the charger applies, and a TxProfile ends with its transaction. From that
mirror `profiles.composite` predicts the composite schedule; the charger's own
GetCompositeSchedule answer is kept beside the prediction with their differences.
Operator requests are checked against the spec's rules before anything is sent
(`profiles.validation`); `force` sends them regardless, as certification tools need.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from edge.chargers import Charger
from edge.events import Booted, ChargerEvent, TransactionStarted, TransactionStopped
from edge.features.base import Payload
from edge.operations import OperationError, Origin, Problem, Sender
from edge.services import Services
from edge.times import format_time, parse_time
from profiles.composite import CompositeSchedule, composite_schedule, to_charging_schedule
from profiles.installed import InstalledProfiles
from profiles.lease import LEASE_PROFILE_ID
from profiles.model import (
    ChargingProfile,
    ChargingProfileKind,
    ChargingProfilePurpose,
    ChargingRateUnit,
    ChargingSchedule,
    ChargingSchedulePeriod,
    ProfileFormatError,
    parse_profile,
    parse_schedule,
    render_profile,
    render_schedule,
)
from profiles.validation import ProfileProblem, Severity, validate_profile

__all__ = [
    "CHECKS",
    "RECORDERS",
    "clear_limits",
    "forget_charger",
    "installed_profiles",
    "is_operator_limit",
    "operator_limit",
    "operator_stack_level",
    "predicted_schedule",
    "reapply_profiles",
    "record_profile",
    "set_limit",
    "subscribe",
]

log = logging.getLogger(__name__)

# A TxProfile sent with RemoteStartTransaction waits this long for its transaction.
REMOTE_START_PROFILE_TTL = timedelta(minutes=10)

# Runs a background job in the service's task group.
Spawner = Callable[[Coroutine[Any, Any, None]], None]


# The parsed form of each charger's `chargingProfiles`, with the list it was parsed
# from: reads parse only after a change, and a lease refresh parses nothing.
_parsed: dict[str, tuple[object, InstalledProfiles]] = {}


def _stored_profiles(charger: Charger) -> InstalledProfiles:
    raw = charger.doc.get("chargingProfiles", [])
    cached = _parsed.get(charger.id)
    if cached is not None and cached[0] is raw:
        return cached[1]
    stored = InstalledProfiles.from_json(raw)
    _parsed[charger.id] = (raw, stored)
    return stored


def forget_charger(charger_id: str) -> None:
    """Drop what is cached for a charger removed from the registry."""
    _parsed.pop(charger_id, None)


def installed_profiles(svc: Services, charger: Charger) -> InstalledProfiles:
    """The profiles the CSMS believes `charger` holds (with the site controller's lease)."""
    installed = _stored_profiles(charger)
    lease = svc.leases.get(charger.id)
    if lease is not None:
        installed = installed.set(lease.connector_id, lease.profile)
    return installed


def _save(svc: Services, charger: Charger, installed: InstalledProfiles) -> None:
    """Record the mirror: the lease in the site's lease book (memory), the rest in the
    charger document, written only when it changed."""
    lease = None
    kept = []
    for item in installed:
        if item.profile.charging_profile_id == LEASE_PROFILE_ID:
            lease = item
        else:
            kept.append(item)
    svc.leases.set(charger.id, lease)
    stored = InstalledProfiles(tuple(kept))
    if stored != _stored_profiles(charger):
        raw = stored.to_json()
        svc.chargers.update(charger, chargingProfiles=raw)
        _parsed[charger.id] = (raw, stored)


def record_profile(
    svc: Services, charger: Charger, connector_id: int, profile: ChargingProfile
) -> None:
    """Record a profile the charger accepted, from the object the caller built."""
    _save(svc, charger, installed_profiles(svc, charger).set(connector_id, profile))


def _active_transaction(
    svc: Services, charger: Charger, connector_id: int
) -> tuple[int | None, datetime | None]:
    state = charger.connectors.get(connector_id)
    transaction_id = state.transaction_id if state is not None else None
    if transaction_id is None:
        return None, None
    active = svc.transactions.get(transaction_id)
    if active is None:
        return transaction_id, None
    return transaction_id, parse_time(active.start_time)


# --- checks before sending --------------------------------------------------------------


def _problem(found: ProfileProblem, prefix: str) -> Problem:
    problem: Problem = {"field": f"{prefix}.{found.field}", "message": found.message}
    if found.severity is Severity.WARNING:
        problem["severity"] = str(found.severity)
    return problem


def _problems(exc: ProfileFormatError, field: str) -> list[Problem]:
    return [{"field": field, "message": str(exc)}]


def check_set_charging_profile(svc: Services, charger: Charger, req: Payload) -> list[Problem]:
    connector_id: int = req["connectorId"]
    try:
        profile = parse_profile(req["csChargingProfiles"])
    except ProfileFormatError as exc:
        return _problems(exc, "csChargingProfiles")
    transaction_id, _ = _active_transaction(svc, charger, connector_id)
    return [
        _problem(p, "csChargingProfiles")
        for p in validate_profile(
            profile, connector_id=connector_id, active_transaction_id=transaction_id
        )
    ]


def check_remote_start(svc: Services, charger: Charger, req: Payload) -> list[Problem]:
    if "chargingProfile" not in req:
        return []
    try:
        profile = parse_profile(req["chargingProfile"])
    except ProfileFormatError as exc:
        return _problems(exc, "chargingProfile")
    # Inside RemoteStartTransaction the TxProfile precedes its transaction (1.6 §5.11).
    return [
        _problem(p, "chargingProfile")
        for p in validate_profile(
            profile,
            connector_id=req.get("connectorId", 0),
            active_transaction_id=None,
            in_remote_start=True,
        )
    ]


# --- recording results ------------------------------------------------------------------


def record_set_charging_profile(
    svc: Services, charger: Charger, req: Payload, res: Payload
) -> None:
    if res["status"] != "Accepted":
        return
    profile = parse_profile(req["csChargingProfiles"])
    _save(svc, charger, installed_profiles(svc, charger).set(req["connectorId"], profile))


def record_clear_charging_profile(
    svc: Services, charger: Charger, req: Payload, res: Payload
) -> None:
    if res["status"] != "Accepted":
        return
    purpose = req.get("chargingProfilePurpose")
    installed, removed = installed_profiles(svc, charger).clear(
        profile_id=req.get("id"),
        connector_id=req.get("connectorId"),
        purpose=ChargingProfilePurpose(purpose) if purpose is not None else None,
        stack_level=req.get("stackLevel"),
    )
    if removed:
        _save(svc, charger, installed)


def record_remote_start(svc: Services, charger: Charger, req: Payload, res: Payload) -> None:
    if res["status"] != "Accepted" or "chargingProfile" not in req:
        return
    # The charger installs the TxProfile when the transaction starts, with its id.
    pending = [p for p in charger.doc.get("pendingTxProfiles", []) if p["idTag"] != req["idTag"]]
    pending.append(
        {
            "idTag": req["idTag"],
            "connectorId": req.get("connectorId"),
            "chargingProfile": req["chargingProfile"],
            "expires": format_time(svc.now() + REMOTE_START_PROFILE_TTL),
        }
    )
    svc.chargers.update(charger, pendingTxProfiles=pending)


def record_get_composite_schedule(
    svc: Services, charger: Charger, req: Payload, res: Payload
) -> None:
    connector_id: int = req["connectorId"]
    entry: dict[str, Any] = {"at": svc.now_text(), "request": req, "reported": res}
    if res["status"] == "Accepted" and "chargingSchedule" in res:
        reported = parse_schedule(res["chargingSchedule"])
        start = parse_time(res["scheduleStart"]) if "scheduleStart" in res else svc.now()
        duration = reported.duration if reported.duration is not None else req["duration"]
        composite = predicted_schedule(
            svc, charger, connector_id=connector_id, start=start, duration=duration,
            unit=reported.charging_rate_unit,
        )  # fmt: skip
        predicted = to_charging_schedule(
            composite, default_limit=_rating(svc, charger, composite.unit)
        )
        assert predicted is not None
        entry["predicted"] = render_schedule(replace(predicted, start_schedule=None))
        entry["differences"] = schedule_differences(predicted.periods, reported.periods, duration)
        entry["matches"] = not entry["differences"]
    schedules = dict(charger.doc.get("compositeSchedules", {}))
    schedules[str(connector_id)] = entry
    svc.chargers.update(charger, compositeSchedules=schedules)


def schedule_differences(predicted: Any, reported: Any, duration: int) -> list[dict[str, Any]]:
    """Where two step functions over [0, duration) differ: one entry per differing stretch."""

    def limit_at(periods: Any, t: int) -> float | None:
        current = None
        for period in periods:
            if period.start_period <= t:
                current = round(period.limit, 1)
        return current

    breakpoints = sorted(
        {0} | {p.start_period for p in predicted} | {p.start_period for p in reported}
    )
    differences = []
    for t in breakpoints:
        if t >= duration:
            continue
        ours, theirs = limit_at(predicted, t), limit_at(reported, t)
        if ours != theirs:
            differences.append({"startPeriod": t, "predicted": ours, "reported": theirs})
    return differences


RECORDERS = {
    "ClearChargingProfile": record_clear_charging_profile,
    "GetCompositeSchedule": record_get_composite_schedule,
    "RemoteStartTransaction": record_remote_start,
    "SetChargingProfile": record_set_charging_profile,
}

CHECKS = {
    "RemoteStartTransaction": check_remote_start,
    "SetChargingProfile": check_set_charging_profile,
}


# --- prediction ---------------------------------------------------------------------------


def _rating(svc: Services, charger: Charger, unit: ChargingRateUnit) -> float:
    """What the charger applies where no profile limits it: its configured maximum."""
    settings = svc.config.chargers.get(charger.id)
    amps = settings.max_current if settings is not None else 32.0
    return amps if unit is ChargingRateUnit.A else amps * svc.config.site.nominal_voltage * 3


def predicted_schedule(
    svc: Services,
    charger: Charger,
    *,
    connector_id: int,
    start: datetime,
    duration: int,
    unit: ChargingRateUnit,
) -> CompositeSchedule:
    """The composite schedule the CSMS expects `charger` to apply on `connector_id`."""
    transaction_id, transaction_start = _active_transaction(svc, charger, connector_id)
    placed = [(item.connector_id, item.profile) for item in installed_profiles(svc, charger)]
    return composite_schedule(
        placed,
        connector_id=connector_id,
        start=start,
        duration=duration,
        unit=unit,
        transaction_id=transaction_id,
        transaction_start=transaction_start,
        voltage=svc.config.site.nominal_voltage,
    )


def schedule_json(
    svc: Services, charger: Charger, composite: CompositeSchedule, connector_id: int
) -> Payload:
    """The prediction in GetCompositeSchedule.conf's shape; unconstrained stretches get the
    charger's rating and are listed in `unconstrainedPeriods`."""
    schedule = to_charging_schedule(composite, default_limit=_rating(svc, charger, composite.unit))
    assert schedule is not None
    return {
        "connectorId": connector_id,
        "scheduleStart": format_time(composite.start),
        "chargingSchedule": render_schedule(replace(schedule, start_schedule=None)),
        "unconstrainedPeriods": [p.start_period for p in composite.periods if p.limit is None],
    }


# --- operator limits ----------------------------------------------------------------------

# Profiles the CSMS creates for "limit this charger/connector" use ids from here on:
# one per connector (id = base + connectorId), so a new limit replaces the old one
# and "clear my limits" never touches profiles someone else installed.
OPERATOR_LIMIT_ID_BASE = 900_000
# Stack level used when the charger has not reported ChargeProfileMaxStackLevel.
DEFAULT_OPERATOR_STACK_LEVEL = 8


def operator_stack_level(charger: Charger) -> int:
    """The highest stack level the charger accepts: an operator limit sits on top."""
    reported = charger.reported_int("ChargeProfileMaxStackLevel")
    return DEFAULT_OPERATOR_STACK_LEVEL if reported is None else max(0, reported)


def is_operator_limit(profile_id: int) -> bool:
    """One connector's operator limit (base + connectorId); the site controller's own
    profiles (910000, 910001) are not."""
    return OPERATOR_LIMIT_ID_BASE <= profile_id < OPERATOR_LIMIT_ID_BASE + 10_000


def operator_limit(
    *,
    connector_id: int,
    limit: float,
    unit: ChargingRateUnit,
    now: datetime,
    until: datetime | None,
    stack_level: int,
    number_phases: int | None = None,
) -> ChargingProfile:
    """The profile for "limit connector N (0: the whole charger) to `limit` until `until`".

    Connector 0 gets a ChargePointMaxProfile, which bounds every transaction. A
    connector gets a TxDefaultProfile at the top stack level: it bounds its current
    and future transactions, unless a transaction carries its own TxProfile (which
    replaces TxDefault for that transaction, OCPP 1.6 §3.13.2). The limit ends by
    validTo rather than by duration, so nothing lingers after `until`.
    """
    start = now.replace(microsecond=0)
    purpose = (
        ChargingProfilePurpose.CHARGE_POINT_MAX if connector_id == 0
        else ChargingProfilePurpose.TX_DEFAULT
    )  # fmt: skip
    return ChargingProfile(
        charging_profile_id=OPERATOR_LIMIT_ID_BASE + connector_id,
        stack_level=stack_level,
        purpose=purpose,
        kind=ChargingProfileKind.ABSOLUTE,
        valid_from=start,
        valid_to=until,
        schedule=ChargingSchedule(
            charging_rate_unit=unit,
            start_schedule=start,
            periods=(
                ChargingSchedulePeriod(start_period=0, limit=limit, number_phases=number_phases),
            ),
        ),
    )


async def set_limit(
    ops: Sender,
    charger: Charger,
    *,
    connector_id: int,
    limit: float,
    unit: ChargingRateUnit,
    until: datetime | None,
    number_phases: int | None = None,
    origin: Origin,
) -> Payload:
    """Limit a connector (0: the whole charger) to `limit` until `until`.

    With site load balancing, a whole-charger limit is a cap inside the allocation
    (`edge.site.caps`): the site owns ChargePointMaxProfile. Otherwise it is an
    operator profile (`operator_limit`) sent with SetChargingProfile.

    Raises:
        OperationError: see `Operations.send`.
    """
    if connector_id == 0 and ops.site_caps is not None:
        cap = await ops.site_caps.set(charger, limit, unit, until)
        return {"appliedBy": "site", "cap": cap}
    profile = operator_limit(
        connector_id=connector_id, limit=limit, unit=unit, now=ops.services.now(), until=until,
        stack_level=operator_stack_level(charger), number_phases=number_phases,
    )  # fmt: skip
    payload = {"connectorId": connector_id, "csChargingProfiles": render_profile(profile)}
    outcome = await ops.send(charger, "SetChargingProfile", payload, origin=origin)
    answer: Payload = {"response": outcome.response, **payload}
    if outcome.warnings:
        answer["warnings"] = outcome.warnings
    return answer


async def clear_limits(
    ops: Sender, charger: Charger, *, connector_id: int | None, origin: Origin
) -> list[Payload]:
    """Remove the operator's limits (one connector's, or all of them); what was cleared.

    Raises:
        OperationError: see `Operations.send`.
    """
    if connector_id is not None:
        ids = [OPERATOR_LIMIT_ID_BASE + connector_id]
    else:
        ids = sorted(
            item.profile.charging_profile_id
            for item in installed_profiles(ops.services, charger)
            if is_operator_limit(item.profile.charging_profile_id)
        )
    results: list[Payload] = []
    if connector_id in (None, 0) and ops.site_caps is not None:
        cap = await ops.site_caps.clear(charger)
        if cap is not None:
            results.append({"appliedBy": "site", "cap": cap})
    for profile_id in ids:
        outcome = await ops.send(charger, "ClearChargingProfile", {"id": profile_id}, origin=origin)
        results.append({"chargingProfileId": profile_id, "response": outcome.response})
    return results


# --- transactions -------------------------------------------------------------------------


def _on_event(svc: Services, event: ChargerEvent) -> None:
    charger = svc.chargers.get(event.charger_id)
    if charger is None:
        return
    if isinstance(event, TransactionStarted):
        _attach_remote_start_profile(svc, charger, event)
    elif isinstance(event, TransactionStopped):
        installed, removed = installed_profiles(svc, charger).transaction_ended(
            event.connector_id, event.transaction_id
        )
        if removed:
            _save(svc, charger, installed)


def _attach_remote_start_profile(
    svc: Services, charger: Charger, event: TransactionStarted
) -> None:
    pending = charger.doc.get("pendingTxProfiles", [])
    if not pending:
        return
    now = svc.now()
    keep, attached = [], None
    for entry in pending:
        if parse_time(entry["expires"]) <= now:
            continue
        matches = entry["idTag"].casefold() == event.id_tag.casefold() and entry["connectorId"] in (
            None,
            event.connector_id,
        )
        if matches and attached is None:
            attached = entry
        else:
            keep.append(entry)
    if attached is not None:
        profile = replace(
            parse_profile(attached["chargingProfile"]), transaction_id=event.transaction_id
        )
        _save(svc, charger, installed_profiles(svc, charger).set(event.connector_id, profile))
    svc.chargers.update(charger, pendingTxProfiles=keep)


async def reapply_profiles(ops: Sender, charger: Charger) -> int:
    """Send the charger every recorded ChargePointMax and TxDefault profile again.

    Idempotent: a profile with the same id replaces itself (OCPP 1.6 §5.16.3).
    TxProfiles are not re-sent: their transactions ended with the reboot. Returns
    how many the charger accepted; refusals and failures are logged.
    """
    svc = ops.services
    accepted = 0
    for item in installed_profiles(svc, charger):
        if item.profile.purpose is ChargingProfilePurpose.TX:
            continue
        payload = {
            "connectorId": item.connector_id,
            "csChargingProfiles": render_profile(item.profile),
        }
        try:
            outcome = await ops.send(
                charger, "SetChargingProfile", payload, origin=Origin.SYSTEM, force=True
            )
        except OperationError as exc:  # a reboot loop, a timeout: the next boot tries again
            log.warning("charger %s: re-applying profile %s failed: %s", charger.id,
                        item.profile.charging_profile_id, exc)  # fmt: skip
            continue
        if outcome.response.get("status") == "Accepted":
            accepted += 1
        else:
            log.warning("charger %s refused its recorded profile %s", charger.id,
                        item.profile.charging_profile_id)  # fmt: skip
    svc.record(charger.id, "ProfilesReapplied", {"accepted": accepted})
    return accepted


def subscribe(svc: Services, spawn: Spawner, ops: Sender) -> None:
    """Follow transactions (attach RemoteStart TxProfiles, end TxProfiles with them) and,
    for chargers configured with `reapply_profiles`, re-send profiles after a boot."""

    def on_event(event: ChargerEvent) -> None:
        _on_event(svc, event)
        if not isinstance(event, Booted) or event.registration != "Accepted":
            return
        settings = svc.config.chargers.get(event.charger_id)
        charger = svc.chargers.get(event.charger_id)
        if settings is None or not settings.reapply_profiles or charger is None:
            return
        if not ops.connected(charger.id):
            return
        if any(True for item in installed_profiles(svc, charger)):
            spawn(_reapply_quietly(ops, charger))

    svc.events.subscribe(on_event)


async def _reapply_quietly(ops: Sender, charger: Charger) -> None:
    # A background job: an error here must never take the service's task group down.
    try:
        await reapply_profiles(ops, charger)
    except Exception:
        log.exception("charger %s: re-applying profiles failed", charger.id)
