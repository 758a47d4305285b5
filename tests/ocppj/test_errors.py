"""The OcppError tree and error-code lookup."""

from __future__ import annotations

import pytest

from edge.ocppj import (
    ERROR_CODES,
    FormationViolation,
    GenericError,
    InternalError,
    OccurenceConstraintViolation,
    OcppError,
    OcppNotImplemented,
    QueueFull,
    RpcUsageError,
    error_for_code,
)
from tests.integration.spec import ERROR_CODES as SPEC_ERROR_CODES


def test_error_codes_are_the_ten_1_6_spellings() -> None:
    """ERROR_CODES holds exactly the ten OCPP-J 1.6 codes, with the 1.6 spellings."""
    assert ERROR_CODES == SPEC_ERROR_CODES


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_error_for_code_round_trips(code: str) -> None:
    """Every 1.6 code maps to an OcppError subclass carrying that code."""
    cls = error_for_code(code)
    assert issubclass(cls, OcppError)
    assert cls.code == code


def test_error_for_code_aliases_and_unknown() -> None:
    """Peer aliases map to the 1.6 class and unknown codes to GenericError."""
    assert error_for_code("FormatViolation") is FormationViolation
    assert error_for_code("OccurrenceConstraintViolation") is OccurenceConstraintViolation
    assert error_for_code("MessageTypeNotSupported") is GenericError
    assert error_for_code("") is GenericError


def test_error_attributes() -> None:
    """description defaults to "" and details to a fresh {}."""
    a, b = InternalError(), InternalError()
    assert a.description == ""
    assert a.details == {} and a.details is not b.details
    err = OcppNotImplemented("nope", {"hint": 1})
    assert (err.code, err.description, err.details) == ("NotImplemented", "nope", {"hint": 1})
    assert str(err) == "NotImplemented: nope"


def test_usage_errors_are_not_ocpp_errors() -> None:
    """RpcUsageError (and QueueFull) are local errors, never CALLERRORs."""
    assert issubclass(QueueFull, RpcUsageError)
    assert not issubclass(RpcUsageError, OcppError)
