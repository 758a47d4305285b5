"""Schema validation and error-code mapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge.ocppj import (
    ALL_ACTIONS,
    FormationViolation,
    OccurenceConstraintViolation,
    OcppError,
    OcppNotImplemented,
    PropertyConstraintViolation,
    TypeConstraintViolation,
    compile_all_validators,
    validate_request,
    validate_response,
)
from edge.times import format_time

SCHEMAS = Path(__file__).parents[2] / "edge" / "ocppj" / "schemas"

BOOT = {"chargePointVendor": "VendorX", "chargePointModel": "M1"}


def meter_values(timestamp: str = "2024-05-01T12:00:00Z", **sampled: Any) -> dict[str, Any]:
    """A MeterValues.req payload with one meter value and one sampled value."""
    return {
        "connectorId": 1,
        "meterValue": [{"timestamp": timestamp, "sampledValue": [{"value": "10", **sampled}]}],
    }


def charging_profile(limit: float) -> dict[str, Any]:
    """A SetChargingProfile.req payload with a single period of ``limit``."""
    return {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
            },
        },
    }


def reject(action: str, payload: object, *, strict: bool = False) -> OcppError:
    """Validate a request that must fail and return the raised error."""
    with pytest.raises(OcppError) as info:
        validate_request(action, payload, strict=strict)
    return info.value


# --------------------------------------------------------------------------- valid input


def test_valid_request_and_response_pass() -> None:
    """Spec-conformant payloads validate in both strictness levels."""
    for strict in (False, True):
        validate_request("BootNotification", BOOT, strict=strict)
        validate_request("Heartbeat", {}, strict=strict)
        validate_request("MeterValues", meter_values(), strict=strict)
        validate_response(
            "BootNotification",
            {"status": "Accepted", "currentTime": "2024-05-01T12:00:00.000Z", "interval": 300},
            strict=strict,
        )


def test_validation_does_not_touch_the_payload() -> None:
    """Validation never adds defaults or otherwise mutates the payload."""
    payload = {"meterStop": 10, "timestamp": "2024-05-01T12:00:00Z", "transactionId": 3}
    validate_request("StopTransaction", payload, strict=False)
    assert payload == {"meterStop": 10, "timestamp": "2024-05-01T12:00:00Z", "transactionId": 3}


def test_celsius_and_celcius_both_accepted() -> None:
    """Both unit spellings are valid (J errata 2.5/2.6)."""
    validate_request("MeterValues", meter_values(unit="Celsius"), strict=False)
    validate_request("MeterValues", meter_values(unit="Celcius"), strict=False)


# --------------------------------------------------------------------------- error mapping


def test_type_violation() -> None:
    """A wrongly typed field is TypeConstraintViolation naming the field."""
    err = reject("BootNotification", {**BOOT, "chargePointVendor": 12})
    assert type(err) is TypeConstraintViolation
    assert err.description == "chargePointVendor: must be a string"


def test_bool_is_not_an_integer() -> None:
    """JSON true is not an integer field value."""
    err = reject("StatusNotification", {"connectorId": True, "errorCode": "NoError", "status": "A"})
    assert type(err) is TypeConstraintViolation
    assert err.description == "connectorId: must be an integer"


def test_max_length_violation() -> None:
    """A too-long CiString is TypeConstraintViolation (CiStringN is a datatype)."""
    err = reject("BootNotification", {**BOOT, "chargePointVendor": "V" * 21})
    assert type(err) is TypeConstraintViolation
    assert err.description == "chargePointVendor: must be at most 20 characters"


def test_required_violation() -> None:
    """A missing mandatory field is OccurenceConstraintViolation naming the field."""
    err = reject("Authorize", {})
    assert type(err) is OccurenceConstraintViolation
    assert err.description == "idTag: required field missing"


def test_nested_required_violation_has_full_path() -> None:
    """A missing nested field is reported with its full path."""
    payload = {"connectorId": 1, "meterValue": [{"timestamp": "2024-05-01T12:00:00Z"}]}
    err = reject("MeterValues", payload)
    assert type(err) is OccurenceConstraintViolation
    assert err.description == "meterValue[0].sampledValue: required field missing"


def test_min_items_violation() -> None:
    """An empty array where one item is required is OccurenceConstraintViolation."""
    err = reject("MeterValues", {"connectorId": 1, "meterValue": []})
    assert type(err) is OccurenceConstraintViolation
    assert err.description == "meterValue: must contain at least 1 item"


def test_enum_violation() -> None:
    """A value outside the enumeration is PropertyConstraintViolation."""
    err = reject("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Busy"})
    assert type(err) is PropertyConstraintViolation
    assert err.description.startswith("status: must be one of Available, Preparing,")


def test_format_violation() -> None:
    """A timestamp that is not a date-time is PropertyConstraintViolation."""
    err = reject("MeterValues", meter_values(timestamp="yesterday"))
    assert type(err) is PropertyConstraintViolation
    assert err.description.startswith("meterValue[0].timestamp: must be an ISO 8601 date-time")


def test_multiple_of_works_on_plain_floats() -> None:
    """multipleOf 0.1 accepts 21.4, 6.1, 0.3 and 16 but rejects 4.11."""
    for limit in (21.4, 6.1, 0.3, 16, 16.0):
        validate_request("SetChargingProfile", charging_profile(limit), strict=True)
    err = reject("SetChargingProfile", charging_profile(4.11), strict=True)
    assert type(err) is PropertyConstraintViolation
    assert err.description == (
        "csChargingProfiles.chargingSchedule.chargingSchedulePeriod[0].limit: "
        "must be a multiple of 0.1"
    )


def test_non_finite_number_is_a_property_violation() -> None:
    """NaN in our own payload raises PropertyConstraintViolation, not a crash."""
    err = reject("SetChargingProfile", charging_profile(float("nan")), strict=True)
    assert type(err) is PropertyConstraintViolation


def test_additional_property_violation() -> None:
    """An unknown field is FormationViolation naming the field."""
    err = reject("Heartbeat", {"foo": 1})
    assert type(err) is FormationViolation
    assert err.description == "foo: field not allowed"


def test_nested_additional_property_violation() -> None:
    """An unknown nested field is reported with its path."""
    err = reject("MeterValues", meter_values(colour="red"))
    assert type(err) is FormationViolation
    assert err.description == "meterValue[0].sampledValue[0].colour: field not allowed"


@pytest.mark.parametrize("payload", [None, [], "x", 1, [BOOT]])
def test_non_object_payload(payload: object) -> None:
    """A payload that is not a JSON object is FormationViolation."""
    err = reject("BootNotification", payload)
    assert type(err) is FormationViolation
    assert err.description == "payload must be a JSON object"


def test_unknown_action() -> None:
    """An action that is not an OCPP 1.6 action is OcppNotImplemented."""
    assert type(reject("FooBar", {})) is OcppNotImplemented
    assert type(reject("heartbeat", {})) is OcppNotImplemented  # names are case-sensitive


def test_response_schema_errata_interval_is_integer() -> None:
    """BootNotification.conf interval must be an integer (J errata 2.2)."""
    payload = {"status": "Accepted", "currentTime": "2024-05-01T12:00:00Z", "interval": 1.5}
    with pytest.raises(TypeConstraintViolation):
        validate_response("BootNotification", payload, strict=True)


def test_descriptions_leak_nothing_internal() -> None:
    """Descriptions carry no fastjsonschema wording or 'data.' prefix and stay short."""
    bad = {**BOOT, "chargePointVendor": "V" * 21, "x" * 500: 1}
    for payload in (bad, {"x" * 500: 1}, {}):
        err = reject("BootNotification", payload)
        assert "data" not in err.description
        assert len(err.description) <= 255


# --------------------------------------------------------------------------- date-time


@pytest.mark.parametrize(
    "timestamp",
    [
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00.123Z",
        "2024-05-01T12:00:00.123456789Z",
        "2024-05-01T12:00:00+02:00",
        "2024-05-01T12:00:00+0200",
        "2024-05-01t12:00:00z",
        "2024-12-31T23:59:60Z",
    ],
)
def test_rfc3339_accepted_strict_and_lenient(timestamp: str) -> None:
    """RFC 3339 date-times with an offset pass both strictness levels."""
    validate_request("MeterValues", meter_values(timestamp), strict=True)
    validate_request("MeterValues", meter_values(timestamp), strict=False)


@pytest.mark.parametrize(
    "timestamp",
    ["2024-05-01T12:00:00", "2024-05-01T12:00:00.5", "2024-05-01T12:00", "2024-05-01T12"],
)
def test_naive_accepted_lenient_rejected_strict(timestamp: str) -> None:
    """A timestamp without offset passes leniently (chargers) but not strictly (us)."""
    validate_request("MeterValues", meter_values(timestamp), strict=False)
    err = reject("MeterValues", meter_values(timestamp), strict=True)
    assert type(err) is PropertyConstraintViolation
    assert "RFC 3339" in err.description


@pytest.mark.parametrize(
    "timestamp",
    ["2024-05-01 12:00:00Z", "2024-05-01", "2024-02-30T12:00:00Z", "12:00:00", "", "T", "now"],
)
def test_invalid_date_time_rejected_in_both(timestamp: str) -> None:
    """Space separators, dates without time and impossible dates fail both levels."""
    for strict in (False, True):
        assert type(reject("MeterValues", meter_values(timestamp), strict=strict)) is (
            PropertyConstraintViolation
        )


def test_formatted_times_pass_strict() -> None:
    """What edge.times.format_time writes is an RFC 3339 date-time, as strict wants."""
    for moment in (datetime(2031, 2, 3, 4, 5, 6, 789000, tzinfo=UTC), datetime(2024, 5, 1)):
        validate_request("MeterValues", meter_values(format_time(moment)), strict=True)


# --------------------------------------------------------------------------- schemas


def test_schema_files_match_the_action_set() -> None:
    """The 78 schema files are exactly <Action>.json and <Action>Response.json per action."""
    names = {p.name for p in SCHEMAS.glob("*.json")}
    assert len(names) == 78
    assert names == {f"{a}{s}.json" for a in ALL_ACTIONS for s in ("", "Response")}


def test_every_schema_compiles() -> None:
    """All 78 schemas compile in both strictness levels (4 validators per action)."""
    assert compile_all_validators() == 4 * len(ALL_ACTIONS) == 156


@pytest.mark.parametrize("action", sorted(ALL_ACTIONS))
def test_every_schema_rejects_unknown_fields(action: str) -> None:
    """Each request and response schema forbids undeclared fields (J errata 3.2)."""
    for suffix, validate in (("", validate_request), ("Response", validate_response)):
        schema = json.loads((SCHEMAS / f"{action}{suffix}.json").read_text())
        assert schema["additionalProperties"] is False
        with pytest.raises(OcppError):
            validate(action, {"notAnOcppField": 1}, strict=True)
