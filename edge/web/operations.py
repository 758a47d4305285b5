"""Operations sent to chargers: any OCPP action, the predicted schedule, operator limits.

Every operation is checked (schema, and the spec rules a schema cannot express,
unless `?force=true`), sent through the charger's session, journalled with its
outcome (secrets masked), and its accepted effects recorded.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web

from edge.chargers import Charger, Registration
from edge.features import CHECKS, smart_charging
from edge.features.core import SECRET_KEYS
from edge.ocppj import CSMS_TO_CP_ACTIONS, OcppError, QueueFull, parse_datetime, validate_request
from edge.session import CallTimeout, NotConnected, RemoteCallError
from edge.web import site
from edge.web.common import (
    SESSIONS,
    SITE,
    ApiError,
    Json,
    charger_or_404,
    json_body,
    json_response,
    query_bool,
    query_int,
    services,
)
from profiles.model import ChargingRateUnit, render_profile

__all__ = ["add_routes", "send_operation"]

# Operations whose checks are about a charging profile (error "invalid_profile").
PROFILE_ACTIONS = frozenset({"SetChargingProfile", "RemoteStartTransaction"})


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and key.casefold() in SECRET_KEYS


def _redacted_request(action: str, payload: Json) -> Json:
    """The request as journalled: write-only values (AuthorizationKey) and upload
    passwords in a location (ftp://user:password@host/) masked."""
    if action == "ChangeConfiguration" and _is_secret_key(payload.get("key")):
        return {**payload, "value": "***"}
    location = payload.get("location")
    if isinstance(location, str):
        parts = urlsplit(location)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
            return {**payload, "location": urlunsplit(parts._replace(netloc=netloc))}
    return payload


def _redacted_response(action: str, response: Json) -> Json:
    """A charger's answer with write-only values masked; a charger must never report
    AuthorizationKey (OCPP 1.6 §9.1), but a faulty one might."""
    if action != "GetConfiguration" or not isinstance(response.get("configurationKey"), list):
        return response
    keys = [
        {**entry, "value": "***"}
        if _is_secret_key(entry.get("key")) and "value" in entry
        else entry
        for entry in response["configurationKey"]
    ]
    return {**response, "configurationKey": keys}


def _registration_refusal(registration: Registration, action: str) -> str | None:
    """Why an operation must not be sent to a charger in this registration state, if so.

    OCPP 1.6 §4.2: a Rejected charger does not answer and the CSMS SHOULD NOT
    initiate anything; while Pending the CSMS may configure the charger, but
    RemoteStartTransaction and RemoteStopTransaction are not allowed.
    """
    if registration is Registration.REJECTED:
        return "the charger is Rejected; change its registration first"
    if registration is Registration.PENDING and action in (
        "RemoteStartTransaction",
        "RemoteStopTransaction",
    ):
        return f"{action} is not allowed while the charger is Pending"
    return None


async def send_operation(
    request: web.Request, charger: Charger, action: str, payload: Json, *, force: bool = False
) -> Json:
    """Check, send, journal and record one CSMS→charger call; return the charger's answer.

    Raises:
        ApiError: 400 invalid payload or profile, 409 not connected / not accepted,
            502 CALLERROR or invalid answer, 503 queue full, 504 no answer in time.
    """
    svc = services(request)
    session = request.app[SESSIONS].get(charger.id)
    if session is None:
        raise ApiError(409, "not_connected", f"charger {charger.id!r} is not connected")
    refusal = _registration_refusal(charger.registration, action)
    if refusal is not None:
        raise ApiError(409, "not_accepted", refusal)
    check = CHECKS.get(action)
    if check is not None and not force:
        try:
            validate_request(action, payload, strict=True)
        except OcppError as err:
            raise ApiError(400, "invalid_payload", err.description, errorCode=err.code) from None
        problems = check(svc, charger, payload)
        if problems:
            # Spec rules a schema cannot express; ?force=true sends it anyway.
            code = "invalid_profile" if action in PROFILE_ACTIONS else "invalid_request"
            raise ApiError(400, code, problems)
    entry: Json = {"action": action, "request": _redacted_request(action, payload)}
    try:
        response = await session.call(action, payload)
    except OcppError as err:
        raise ApiError(400, "invalid_payload", err.description, errorCode=err.code) from None
    except QueueFull:
        raise ApiError(503, "busy", "too many operations are waiting for this charger") from None
    except NotConnected as err:
        svc.record(charger.id, "Operation", {**entry, "outcome": "NotConnected"})
        raise ApiError(409, "not_connected", str(err)) from None
    except CallTimeout as err:
        svc.record(charger.id, "Operation", {**entry, "outcome": "Timeout"})
        raise ApiError(504, "timeout", str(err)) from None
    except RemoteCallError as err:
        svc.record(
            charger.id,
            "Operation",
            {**entry, "outcome": "CallError", "errorCode": err.error_code,
             "errorDescription": err.description},
        )  # fmt: skip
        raise ApiError(
            502, "CallError", err.description, errorCode=err.error_code, errorDetails=err.details
        ) from None
    response = _redacted_response(action, response)
    if action in ("TriggerMessage", "ExtendedTriggerMessage") and response.get("status") == (
        "Accepted"
    ):
        session.expect_triggered(str(payload.get("requestedMessage")))
    await svc.chargers.persist()
    svc.record(charger.id, "Operation", {**entry, "outcome": "Result", "response": response})
    svc.publish(charger.id, action, {"request": entry["request"], "response": response})
    return response


async def ocpp_operation(request: web.Request) -> web.Response:
    """POST /api/chargers/{id}/ocpp/{Action}: any CSMS→charger action, payload as given."""
    svc = services(request)
    action = request.match_info["action"]
    if action not in CSMS_TO_CP_ACTIONS:
        raise ApiError(
            404, "unknown_action", f"{action!r} is not an OCPP 1.6 action a central system sends"
        )
    payload = await json_body(request, allow_empty=True)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    force = bool(query_bool(request, "force"))
    response = await send_operation(request, charger, action, payload, force=force)
    return json_response({"response": response})


async def charger_schedule(request: web.Request) -> web.Response:
    """The composite schedule the CSMS expects a connector to apply (GetCompositeSchedule shape)."""
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    connector_id = query_int(request, "connectorId", None, 0, 1000)
    duration = query_int(request, "duration", None, 1, 31 * 86400)
    if connector_id is None or duration is None:
        raise ApiError(400, "invalid_query", "connectorId and duration are required")
    try:
        unit = ChargingRateUnit(request.query.get("unit", "A"))
    except ValueError:
        raise ApiError(400, "invalid_query", "unit must be A or W") from None
    start = svc.now()
    if "start" in request.query:
        try:
            start = parse_datetime(request.query["start"])
        except ValueError:
            raise ApiError(400, "invalid_query", "start must be an ISO 8601 time") from None
    composite = smart_charging.predicted_schedule(
        svc, charger, connector_id=connector_id, start=start, duration=duration, unit=unit
    )
    return json_response(smart_charging.schedule_json(svc, charger, composite, connector_id))


def _limit_request(
    body: Json, now: datetime
) -> tuple[int, float, ChargingRateUnit, datetime | None, int | None]:
    unknown = set(body) - {"connectorId", "limit", "unit", "until", "numberPhases"}
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown fields: {', '.join(sorted(unknown))}")
    connector_id = body.get("connectorId", 0)
    if isinstance(connector_id, bool) or not isinstance(connector_id, int) or connector_id < 0:
        raise ApiError(
            400, "invalid_request", "connectorId must be 0 (whole charger) or a connector"
        )
    limit = body.get("limit")
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not 0 <= limit <= 1e6:
        raise ApiError(400, "invalid_request", "limit must be a number of A or W, 0 or more")
    try:
        unit = ChargingRateUnit(body.get("unit", "A"))
    except ValueError:
        raise ApiError(400, "invalid_request", "unit must be A or W") from None
    until = None
    if body.get("until") is not None:
        try:
            until = parse_datetime(str(body["until"]))
        except ValueError:
            raise ApiError(400, "invalid_request", "until must be an ISO 8601 time") from None
        if until <= now:
            raise ApiError(400, "invalid_request", "until must be in the future")
    phases = body.get("numberPhases")
    if phases is not None and (isinstance(phases, bool) or phases not in (1, 2, 3)):
        raise ApiError(400, "invalid_request", "numberPhases must be 1, 2 or 3")
    return connector_id, float(limit), unit, until, phases


async def set_limit(request: web.Request) -> web.Response:
    """POST /api/chargers/{id}/limits: limit a connector (0: the whole charger) until a time."""
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    now = svc.now()
    connector_id, limit, unit, until, phases = _limit_request(await json_body(request), now)
    if connector_id == 0 and SITE in request.app:
        return await site.set_site_cap(request, charger, limit, unit, until)
    profile = smart_charging.operator_limit(
        connector_id=connector_id, limit=limit, unit=unit, now=now, until=until,
        stack_level=smart_charging.operator_stack_level(charger), number_phases=phases,
    )  # fmt: skip
    payload = {"connectorId": connector_id, "csChargingProfiles": render_profile(profile)}
    response = await send_operation(request, charger, "SetChargingProfile", payload)
    return json_response({"response": response, **payload})


async def clear_limits(request: web.Request) -> web.Response:
    """DELETE /api/chargers/{id}/limits[?connectorId=N]: remove the operator's limits."""
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    connector_id = query_int(request, "connectorId", None, 0, 1000)
    if connector_id is not None:
        ids = [smart_charging.OPERATOR_LIMIT_ID_BASE + connector_id]
    else:
        ids = sorted(
            item.profile.charging_profile_id
            for item in smart_charging.installed_profiles(charger)
            if smart_charging.is_operator_limit(item.profile.charging_profile_id)
        )
    results: list[Json] = []
    if connector_id in (None, 0) and SITE in request.app:
        cap = await site.clear_site_cap(request, charger)
        if cap is not None:
            results.append({"appliedBy": "site", "cap": cap})
    for profile_id in ids:
        response = await send_operation(
            request, charger, "ClearChargingProfile", {"id": profile_id}
        )
        results.append({"chargingProfileId": profile_id, "response": response})
    return json_response({"cleared": results})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/chargers/{charger_id}/ocpp/{action}", ocpp_operation)
    router.add_get("/api/chargers/{charger_id}/schedule", charger_schedule)
    router.add_post("/api/chargers/{charger_id}/limits", set_limit)
    router.add_delete("/api/chargers/{charger_id}/limits", clear_limits)
