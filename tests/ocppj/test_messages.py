"""Frame parsing and serialisation against literal OCPP-J wire text."""

from __future__ import annotations

import pytest

from edge.ocppj import (
    Call,
    CallError,
    CallResult,
    FormationViolation,
    FrameError,
    OcppError,
    ProtocolError,
    dump_call,
    dump_error,
    dump_message,
    dump_result,
    parse_frame,
)

BOOT = (
    b'[2,"19223201","BootNotification",'
    b'{"chargePointVendor":"VendorX","chargePointModel":"SingleSocketCharger"}]'
)
BOOT_CONF = (
    b'[3,"19223201",{"status":"Accepted","currentTime":"2013-02-01T20:53:32.486Z","interval":300}]'
)
NOT_SUPPORTED = b'[4,"162376037","NotSupported","SendLocalList.req not implemented",{}]'


def test_parse_call() -> None:
    """A CALL parses into Call with its id, action and payload."""
    assert parse_frame(BOOT) == Call(
        "19223201",
        "BootNotification",
        {"chargePointVendor": "VendorX", "chargePointModel": "SingleSocketCharger"},
    )


def test_parse_call_result() -> None:
    """A CALLRESULT parses into CallResult."""
    assert parse_frame(BOOT_CONF) == CallResult(
        "19223201",
        {"status": "Accepted", "currentTime": "2013-02-01T20:53:32.486Z", "interval": 300},
    )


def test_parse_call_error() -> None:
    """A CALLERROR parses into CallError (J errata 3.9 example)."""
    assert parse_frame(NOT_SUPPORTED) == CallError(
        "162376037", "NotSupported", "SendLocalList.req not implemented", {}
    )


def test_parse_accepts_str_and_whitespace() -> None:
    """A str frame with insignificant whitespace parses like the compact bytes frame."""
    assert parse_frame(' [ 2 , "1" , "Heartbeat" , { } ] ') == Call("1", "Heartbeat", {})


@pytest.mark.parametrize("wire", [BOOT, BOOT_CONF, NOT_SUPPORTED])
def test_round_trip(wire: bytes) -> None:
    """Parsing then dumping reproduces compact wire JSON byte for byte."""
    message = parse_frame(wire)
    assert message is not None
    assert dump_message(message) == wire


def test_dump_functions() -> None:
    """dump_call/dump_result/dump_error emit the three frame shapes as compact bytes."""
    assert dump_call("a-1", "Heartbeat", {}) == b'[2,"a-1","Heartbeat",{}]'
    assert dump_result("a-1", {"currentTime": "x"}) == b'[3,"a-1",{"currentTime":"x"}]'
    assert dump_error("a-1", "InternalError", "boom", {"k": 1}) == (
        b'[4,"a-1","InternalError","boom",{"k":1}]'
    )


def test_dump_error_defaults_to_empty_details() -> None:
    """A CALLERROR without details carries {} and an empty description (J errata 3.9)."""
    assert dump_error("7", "GenericError") == b'[4,"7","GenericError","",{}]'


def test_call_error_details_may_be_missing_or_null() -> None:
    """A 4-element CALLERROR, or one with null details, reads as details {}."""
    assert parse_frame('[4,"1","GenericError","x"]') == CallError("1", "GenericError", "x", {})
    assert parse_frame('[4,"1","GenericError","x",null]') == CallError("1", "GenericError", "x", {})


@pytest.mark.parametrize("wire", ["[5]", '[0,"1",{}]', '[-1,"x"]', '[6,"1","Heartbeat",{}]'])
def test_unknown_message_type_is_ignored(wire: str) -> None:
    """An integer MessageTypeId other than 2, 3, 4 yields None ("SHALL ignore")."""
    assert parse_frame(wire) is None


def test_id_of_36_characters_is_accepted() -> None:
    """A 36-character message id (a UUID) is the maximum and is accepted."""
    uid = "123e4567-e89b-12d3-a456-426614174000"
    assert parse_frame(f'[2,"{uid}","Heartbeat",{{}}]') == Call(uid, "Heartbeat", {})


LONG_ID = "x" * 37

MALFORMED: list[tuple[bytes | str, type[OcppError], str | None, int | None]] = [
    # not UTF-8 / not JSON / not an array / no integer MessageTypeId: no id to answer with
    (b"\xff\xfe", FormationViolation, None, None),
    ("not json", FormationViolation, None, None),
    ('[2,"1","Heartbeat",{}', FormationViolation, None, None),
    ('[2,"\\ud800","Heartbeat",{}]', FormationViolation, None, None),
    ('{"a":1}', FormationViolation, None, None),
    ('"text"', FormationViolation, None, None),
    ("[]", FormationViolation, None, None),
    ('[true,"1","Heartbeat",{}]', FormationViolation, None, None),
    ('[2.0,"1","Heartbeat",{}]', FormationViolation, None, None),
    ('["2","1","Heartbeat",{}]', FormationViolation, None, None),
    ('[null,"1","Heartbeat",{}]', FormationViolation, None, None),
    # unusable message id: answer with it only when it is a non-empty string
    ("[2]", FormationViolation, None, 2),
    ('[2,1,"Heartbeat",{}]', FormationViolation, None, 2),
    ('[2,null,"Heartbeat",{}]', FormationViolation, None, 2),
    ('[2,"","Heartbeat",{}]', FormationViolation, None, 2),
    (f'[2,"{LONG_ID}","Heartbeat",{{}}]', FormationViolation, LONG_ID, 2),
    # CALL structure
    ('[2,"1","Heartbeat"]', ProtocolError, "1", 2),
    ('[2,"1"]', FormationViolation, "1", 2),
    ('[2,"1","Heartbeat",{},{}]', FormationViolation, "1", 2),
    ('[2,"1",5,{}]', FormationViolation, "1", 2),
    ('[2,"1",null,{}]', FormationViolation, "1", 2),
    ('[2,"1","Heartbeat",null]', FormationViolation, "1", 2),
    ('[2,"1","Heartbeat",[]]', FormationViolation, "1", 2),
    ('[2,"1","Heartbeat","{}"]', FormationViolation, "1", 2),
    # CALLRESULT structure
    ('[3,"1"]', FormationViolation, "1", 3),
    ('[3,"1",{},{}]', FormationViolation, "1", 3),
    ('[3,"1",null]', FormationViolation, "1", 3),
    ('[3,"1",[]]', FormationViolation, "1", 3),
    ("[3,5,{}]", FormationViolation, None, 3),
    # CALLERROR structure
    ('[4,"1","GenericError"]', FormationViolation, "1", 4),
    ('[4,"1","GenericError","",{},{}]', FormationViolation, "1", 4),
    ('[4,"1",5,"",{}]', FormationViolation, "1", 4),
    ('[4,"1","GenericError",null,{}]', FormationViolation, "1", 4),
    ('[4,"1","GenericError","",[]]', FormationViolation, "1", 4),
    ('[4,"1","GenericError","","x"]', FormationViolation, "1", 4),
]


@pytest.mark.parametrize(("wire", "error", "unique_id", "type_id"), MALFORMED)
def test_malformed_frames(
    wire: bytes | str, error: type[OcppError], unique_id: str | None, type_id: int | None
) -> None:
    """Each malformed-frame branch raises FrameError with the exact code and readable id."""
    with pytest.raises(FrameError) as info:
        parse_frame(wire)
    assert type(info.value.error) is error
    assert info.value.unique_id == unique_id
    assert info.value.message_type_id == type_id
    assert info.value.error.description


def test_incomplete_call_description() -> None:
    """A CALL without payload says so in the ProtocolError description."""
    with pytest.raises(FrameError) as info:
        parse_frame('[2,"1","Heartbeat"]')
    assert info.value.error.description == "CALL is incomplete: payload missing"
