"""The one way a CSMS→charger call is made: admission, checks, the call, effects, audit.

Every caller — the operator API, the technician page, the site control loop, the
cloud relay, the CSMS's own jobs — sends through `Operations.send`, so each rule is
applied once:

1. Admission: the charger is known, connected, and its registration allows the
   action (OCPP 1.6 §4.2).
2. Checks (skipped with `force`): the action's JSON schema, then the spec rules a
   schema cannot express (`edge.features.CHECKS`). Only what the specification
   forbids (SHALL, MUST) or the schema refuses stops a call; legal content that is
   probably a mistake comes back as `Outcome.warnings`.
3. The call, through the charger's session (one outstanding CALL, a queue behind).
4. Effects: the feature's recorder for an answered call (`edge.features.RECORDERS`).
5. Audit: the operation and its outcome journalled with secrets masked, except the
   site loop's routine lease calls (one per charger per half lease: an SD card's
   worth of writes for nothing an operator asked); an `OperationCompleted` event.

Failures are raised as `OperationError`s; the web layer maps each to one HTTP status.

This package's top level holds only what callers need at import time (the errors,
`Origin`, `Outcome`), so feature modules can use them; the pipeline itself is
`edge.operations.pipeline.Operations`.
"""

from edge.operations.errors import (
    Busy,
    ChargerCallError,
    CheckFailed,
    Conflict,
    InvalidPayload,
    InvalidRequest,
    NotAccepted,
    NotConnected,
    NotFound,
    OperationError,
    Timeout,
    UnknownCharger,
)
from edge.operations.model import Origin, Outcome, Problem, Sender

__all__ = [
    "Busy",
    "ChargerCallError",
    "CheckFailed",
    "Conflict",
    "InvalidPayload",
    "InvalidRequest",
    "NotAccepted",
    "NotConnected",
    "NotFound",
    "OperationError",
    "Origin",
    "Outcome",
    "Problem",
    "Sender",
    "Timeout",
    "UnknownCharger",
]
