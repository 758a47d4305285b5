"""Integers beyond 64 bits are refused at the boundary with TypeConstraintViolation
(orjson decodes up to 2**64 - 1; the journal, SQLite, stores 64-bit signed integers)."""

from __future__ import annotations

from typing import Any

import pytest

from edge.ocppj.errors import TypeConstraintViolation
from edge.ocppj.validation import validate_request

START = {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2024-05-01T12:00:00Z"}


def meter_values(value: Any) -> dict[str, Any]:
    sample = {"timestamp": "2024-05-01T12:00:00Z", "sampledValue": [{"value": "1"}]}
    return {"connectorId": 1, "transactionId": value, "meterValue": [sample]}


@pytest.mark.parametrize("value", [2**63, 2**64 - 1])
def test_integers_beyond_64_bits_are_a_type_violation(value: int) -> None:
    with pytest.raises(TypeConstraintViolation, match=r": meterStart: must be a 64-bit integer$"):
        validate_request("StartTransaction", {**START, "meterStart": value}, strict=False)
    with pytest.raises(TypeConstraintViolation, match=r": transactionId: must be a 64-bit"):
        validate_request("MeterValues", meter_values(value), strict=False)


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63), 0, 2**53])
def test_64_bit_integers_pass(value: int) -> None:
    validate_request("StartTransaction", {**START, "meterStart": value}, strict=False)
    validate_request("MeterValues", meter_values(value), strict=False)
