"""Payload validation against the OCA OCPP 1.6 JSON schemas.

The official schemas (``schemas/<Action>.json`` and ``<Action>Response.json``) are
compiled with fastjsonschema on first use per (action, direction, strictness) and kept
for the life of the process (about 1-5 ms to compile, 1-4 µs to run).

Two strictness levels, for the two directions of trust:

* ``strict=False`` for what a peer sends us. ``date-time`` accepts any ISO 8601
  date-time that :func:`edge.times.parse_time` accepts, with or without an offset: real
  chargers send naive timestamps, which the handlers treat as UTC.
* ``strict=True`` for what we send. ``date-time`` is RFC 3339 with a mandatory offset,
  because OCTT validates every CSMS message against the schemas (J errata 3.2, 3.8).

A failure raises the :class:`~edge.ocppj.errors.OcppError` subclass whose code fits
the violated rule, with a description naming the field, e.g.
``"chargePointVendor: must be at most 20 characters"``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson

from edge.times import parse_time

from .actions import ALL_ACTIONS
from .errors import (
    FormationViolation,
    OccurenceConstraintViolation,
    OcppError,
    OcppNotImplemented,
    PropertyConstraintViolation,
    TypeConstraintViolation,
)

__all__ = [
    "compile_all_validators",
    "validate_request",
    "validate_response",
]

SCHEMA_DIR = Path(__file__).parent / "schemas"

_Validator = Callable[[Any], Any]
# (action, is_response, strict) -> compiled validator. Filled lazily; a race between
# threads at most compiles a schema twice, which is harmless.
_validators: dict[tuple[str, bool, bool], _Validator] = {}

# OCPP-J errorDescription has no length limit in 1.6; 2.0.1 caps it at 255, and some
# charger firmware copies it into fixed buffers, so stay within that.
_MAX_DESCRIPTION = 255


# --------------------------------------------------------------------------- datetimes


def _is_lenient_date_time(value: str) -> bool:
    # Called by the generated validator with a str; must return a bool, never raise.
    try:
        parse_time(value)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- validators


def _compile(action: str, response: bool, strict: bool) -> _Validator:
    if action not in ALL_ACTIONS:
        raise OcppNotImplemented(f"{_clip(action, 50)!r} is not an OCPP 1.6 action")
    name = f"{action}Response.json" if response else f"{action}.json"
    schema = orjson.loads((SCHEMA_DIR / name).read_bytes())
    formats: dict[str, Callable[[Any], bool]] = (
        {} if strict else {"date-time": _is_lenient_date_time}
    )
    # use_default=False: the validator must never write into the payload.
    validator: _Validator = fastjsonschema.compile(schema, formats=formats, use_default=False)
    _validators[(action, response, strict)] = validator
    return validator


def compile_all_validators() -> int:
    """Compile every schema in both strictness levels now, instead of on first use.

    Call it at service start on slow hardware so the first message of each kind is not
    delayed. Returns the number of compiled validators (4 per action).
    """
    for action in sorted(ALL_ACTIONS):
        for response in (False, True):
            for strict in (False, True):
                if (action, response, strict) not in _validators:
                    _compile(action, response, strict)
    return len(_validators)


def validate_request(action: str, payload: object, *, strict: bool) -> None:
    """Check a CALL payload against ``schemas/<action>.json``.

    Args:
        action: the OCPP action name (case-sensitive).
        payload: the decoded payload.
        strict: ``True`` for what we send, ``False`` for what a peer sends.

    Raises:
        OcppError: the subclass matching the violation (see :func:`_translate`);
            :class:`OcppNotImplemented` when ``action`` is not an OCPP 1.6 action.
    """
    _validate(action, False, payload, strict)


def validate_response(action: str, payload: object, *, strict: bool) -> None:
    """Check a CALLRESULT payload against ``schemas/<action>Response.json``.

    Same arguments and errors as :func:`validate_request`.
    """
    _validate(action, True, payload, strict)


def _validate(action: str, response: bool, payload: object, strict: bool) -> None:
    validator = _validators.get((action, response, strict)) or _compile(action, response, strict)
    if type(payload) is not dict:
        # J §4.2.1: an empty payload is {} and never null; the schemas require an object.
        raise FormationViolation("payload must be a JSON object")
    try:
        validator(payload)
    except fastjsonschema.JsonSchemaValueException as err:
        raise _translate(err, strict) from err
    except (ValueError, ArithmeticError) as err:
        # multipleOf on NaN or infinity. orjson never decodes those, so only our own
        # payloads can contain them.
        raise PropertyConstraintViolation("payload: numbers must be finite") from err
    where = _oversized_integer(payload, "")
    if where is not None:
        raise TypeConstraintViolation(f"{where or 'payload'}: must be a 64-bit integer")


_INT64 = range(-(2**63), 2**63)


def _oversized_integer(value: object, path: str) -> str | None:
    """The path of an integer beyond 64 bits, or None. The schemas bound no integer, and
    orjson decodes up to 2**64 - 1, which SQLite (the journal) cannot store: refused here,
    at the boundary, rather than failing in a handler."""
    if type(value) is int:
        return None if value in _INT64 else path
    if type(value) is dict:
        for key, item in value.items():
            found = _oversized_integer(item, f"{path}.{key}" if path else key)
            if found is not None:
                return found
    elif type(value) is list:
        for i, item in enumerate(value):
            found = _oversized_integer(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


# --------------------------------------------------------------------------- error text

# fastjsonschema rule -> OCPP-J 1.6 error class. CiStringNType is a datatype, hence
# maxLength -> TypeConstraintViolation (as mobilityhouse/ocpp does).
_RULE_CLASS: dict[str, type[OcppError]] = {
    "type": TypeConstraintViolation,
    "maxLength": TypeConstraintViolation,
    "minLength": TypeConstraintViolation,
    "required": OccurenceConstraintViolation,
    "minItems": OccurenceConstraintViolation,
    "maxItems": OccurenceConstraintViolation,
    "additionalProperties": FormationViolation,
}
# Everything else (enum, format, multipleOf, minimum, maximum, ...) is a value that the
# datatype allows but the field does not: PropertyConstraintViolation.

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


def _clip(text: str, limit: int) -> str:
    """Shorten peer-controlled text and drop control characters before echoing it."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


def _join(path: str, field: str) -> str:
    field = _clip(field, 50)
    return f"{path}.{field}" if path else field


def _translate(err: fastjsonschema.JsonSchemaValueException, strict: bool) -> OcppError:
    """Turn a fastjsonschema failure into the OcppError to send back."""
    rule = err.rule or ""
    definition = err.rule_definition
    # fastjsonschema names the checked value "data", "data.idTag", "data.meterValue[0]".
    name = err.name or "data"
    path = name[5:] if name.startswith("data.") else ("" if name == "data" else name)
    field = path or "payload"

    if rule == "type":
        if not path:
            return FormationViolation("payload must be a JSON object")
        kinds = definition if isinstance(definition, list) else [definition]
        words = " or ".join(_TYPE_WORDS.get(str(k), str(k)) for k in kinds)
        text = f"{field}: must be {words}"
    elif rule == "maxLength":
        text = f"{field}: must be at most {definition} characters"
    elif rule == "minLength":
        text = f"{field}: must be at least {definition} characters"
    elif rule == "required":
        value = err.value if isinstance(err.value, dict) else {}
        missing = [k for k in definition if k not in value] or list(definition)
        names = ", ".join(_join(path, k) for k in missing)
        text = f"{names}: required field{'s' if len(missing) > 1 else ''} missing"
    elif rule in ("minItems", "maxItems"):
        bound = "least" if rule == "minItems" else "most"
        text = f"{field}: must contain at {bound} {definition} item{'' if definition == 1 else 's'}"
    elif rule == "additionalProperties":
        value = err.value if isinstance(err.value, dict) else {}
        known = (err.definition or {}).get("properties", {})
        extra = sorted(str(k) for k in value if k not in known)
        names = ", ".join(_join(path, k) for k in extra[:3]) or field
        text = f"{names}: field not allowed"
    elif rule == "enum":
        text = f"{field}: must be one of {', '.join(str(v) for v in definition)}"
    elif rule == "format":
        if definition == "date-time":
            text = (
                f"{field}: must be an RFC 3339 date-time with offset, e.g. 2024-05-01T12:00:00Z"
                if strict
                else f"{field}: must be an ISO 8601 date-time, e.g. 2024-05-01T12:00:00Z"
            )
        elif definition == "uri":
            text = f"{field}: must be a URI"
        else:
            text = f"{field}: must be a valid {definition}"
    elif rule == "multipleOf":
        text = f"{field}: must be a multiple of {definition}"
    elif rule == "minimum":
        text = f"{field}: must be at least {definition}"
    elif rule == "maximum":
        text = f"{field}: must be at most {definition}"
    else:
        text = f"{field}: invalid value"
    cls = _RULE_CLASS.get(rule, PropertyConstraintViolation)
    if len(text) > _MAX_DESCRIPTION:
        text = text[: _MAX_DESCRIPTION - 3] + "..."
    return cls(text)
