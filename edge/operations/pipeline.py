"""The operation pipeline; see `edge.operations`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from edge.chargers import Charger, Registration
from edge.events import OperationCompleted
from edge.ocppj import WRITE_ONLY_KEYS, OcppError, QueueFull, validate_request
from edge.operations.errors import (
    Busy,
    ChargerCallError,
    CheckFailed,
    InvalidPayload,
    NotAccepted,
    NotConnected,
    Timeout,
)
from edge.operations.model import Check, Origin, Outcome, Problem, Recorder, SiteCapsSetter
from edge.services import Services
from edge.session import CallTimeout, RemoteCallError, SessionRegistry
from edge.session import NotConnected as SessionClosed

__all__ = ["Operations", "redacted_request", "redacted_response", "registration_refusal"]

log = logging.getLogger(__name__)

Json = dict[str, Any]

# Operations whose checks are about a charging profile (error "invalid_profile").
PROFILE_ACTIONS = frozenset({"SetChargingProfile", "RemoteStartTransaction"})
# The action a trigger brings where it is not named like the requestedMessage (WP §3.1).
TRIGGERED_ACTION = {"SignChargePointCertificate": "SignCertificate"}


# --- secrets ---------------------------------------------------------------------------


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and key.casefold() in WRITE_ONLY_KEYS


def redacted_request(action: str, payload: Json) -> Json:
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


def redacted_response(action: str, response: Json) -> Json:
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


def registration_refusal(registration: Registration, action: str) -> str | None:
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


def split_problems(problems: list[Problem]) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings): a problem without a severity is an error."""
    errors = [p for p in problems if p.get("severity", "error") != "warning"]
    warnings = [p for p in problems if p.get("severity", "error") == "warning"]
    return errors, warnings


# --- the pipeline ----------------------------------------------------------------------


class Operations:
    """Sends CSMS→charger calls; see the module docstring."""

    def __init__(
        self,
        services: Services,
        sessions: SessionRegistry,
        *,
        checks: Mapping[str, Check],
        recorders: Mapping[str, Recorder],
    ) -> None:
        """`checks` and `recorders` by action: the feature modules' tables
        (`edge.features.CHECKS`, `RECORDERS`), passed in so the pipeline depends on no
        feature."""
        self.services = services
        self.sessions = sessions
        self._checks = checks
        self._recorders = recorders
        # With a grid meter, whole-charger limits are caps inside the site's allocation.
        self.site_caps: SiteCapsSetter | None = None

    def connected(self, charger_id: str) -> bool:
        """Whether the charger has a live connection."""
        return self.sessions.get(charger_id) is not None

    def check(self, charger: Charger, action: str, payload: Json) -> list[Problem]:
        """The payload against its schema and the spec's rules; returns the warnings.

        Raises:
            InvalidPayload: the schema refuses it.
            CheckFailed: it breaks a rule the specification states as SHALL or MUST.
        """
        check = self._checks.get(action)
        if check is None:
            return []
        try:
            validate_request(action, payload, strict=True)
        except OcppError as err:
            raise InvalidPayload(err.description, errorCode=err.code) from None
        errors, warnings = split_problems(check(self.services, charger, payload))
        if errors:
            code = "invalid_profile" if action in PROFILE_ACTIONS else "invalid_request"
            raise CheckFailed(errors + warnings, code=code)
        return warnings

    async def send(
        self,
        charger: Charger,
        action: str,
        payload: Json,
        *,
        origin: Origin,
        force: bool = False,
        record: Callable[[Json], None] | None = None,
    ) -> Outcome:
        """Admit, check, send, record and audit one call; the charger's answer.

        Args:
            force: send even what the checks refuse (certification tools need it);
                the schema is still enforced by the session, as nothing else can be sent.
            record: records the effects of the answer instead of the feature's recorder,
                for a caller that holds the objects it sent (the site's lease profiles:
                parsing back what was just rendered would cost every refresh).

        Raises:
            OperationError: see the tree above.
        """
        svc = self.services
        session = self.sessions.get(charger.id)
        if session is None:
            raise NotConnected(f"charger {charger.id!r} is not connected")
        refusal = registration_refusal(charger.registration, action)
        if refusal is not None:
            raise NotAccepted(refusal)
        warnings = [] if force else self.check(charger, action, payload)
        audit = origin is not Origin.SITE
        entry: Json = {"action": action, "request": redacted_request(action, payload)}
        if audit:
            entry["origin"] = str(origin)

        def on_result(response: Json) -> None:
            if record is not None:
                record(response)
            else:
                self._record_effects(charger, action, payload, response)
            if action in ("TriggerMessage", "ExtendedTriggerMessage") and (
                response.get("status") == "Accepted"
            ):
                requested = str(payload.get("requestedMessage"))
                session.expect_triggered(TRIGGERED_ACTION.get(requested, requested))

        try:
            response = await session.call(action, payload, on_result=on_result)
        except OcppError as err:
            raise InvalidPayload(err.description, errorCode=err.code) from None
        except QueueFull:
            raise Busy("too many operations are waiting for this charger") from None
        except SessionClosed as err:
            if audit:
                svc.record(charger.id, "Operation", {**entry, "outcome": "NotConnected"})
            raise NotConnected(str(err)) from None
        except CallTimeout as err:
            if audit:
                svc.record(charger.id, "Operation", {**entry, "outcome": "Timeout"})
            raise Timeout(str(err)) from None
        except RemoteCallError as err:
            if audit:
                svc.record(
                    charger.id,
                    "Operation",
                    {**entry, "outcome": "CallError", "errorCode": err.error_code,
                     "errorDescription": err.description},
                )  # fmt: skip
            raise ChargerCallError(
                err.description, errorCode=err.error_code, errorDetails=err.details
            ) from None
        response = redacted_response(action, response)
        if audit:
            # What the effects changed is on disk before the caller hears of it.
            await svc.chargers.persist()
            svc.record(
                charger.id, "Operation", {**entry, "outcome": "Result", "response": response}
            )
        svc.publish(
            OperationCompleted(
                charger_id=charger.id,
                at=svc.now(),
                action=action,
                request=entry["request"],
                response=response,
                origin=str(origin),
            )
        )
        return Outcome(response, warnings)

    def _record_effects(self, charger: Charger, action: str, request: Json, response: Json) -> None:
        recorder = self._recorders.get(action)
        if recorder is None:
            return
        try:
            recorder(self.services, charger, request, response)
        except Exception:
            # The charger did what it said; a bookkeeping bug must not turn that into
            # an error for the caller. The log has the traceback.
            log.exception("charger %s: recording %s result failed", charger.id, action)
