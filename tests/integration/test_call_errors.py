"""Every CALLERROR path of the OCPP-J 1.6 endpoint, over a real WebSocket.

Codes use the exact 1.6 spellings (OCPP-J Table 7, kept by the J errata):
`FormationViolation`, `OccurenceConstraintViolation`. Every CALLERROR carries
`errorDetails == {}` and a description without Python internals, and the same
connection goes on answering afterwards.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edge.app import App
from edge.sim.charger import RawCharger
from tests.conftest import TIME_SCALE, make_config, ocpp_url, running
from tests.helpers import booted
from tests.integration.spec import ERROR_CODES

TIMEOUT = 10 * TIME_SCALE
QUIET = 0.5 * TIME_SCALE  # how long "nothing was answered" is watched for

LEAKS = re.compile(
    r"Traceback|File \"|\.py\b|edge\.|fastjsonschema|orjson|JsonSchema|Exception|"
    r"\bdata\.|<[a-z_.]+ object at 0x|KeyError|TypeError|ValueError",
)


def assert_call_error(frame: list[Any], code: str, unique_id: str | None = None) -> str:
    """Check one CALLERROR frame; return its description."""
    assert isinstance(frame, list) and len(frame) == 5, frame
    assert frame[0] == 4, frame
    assert isinstance(frame[1], str) and frame[1], frame
    if unique_id is not None:
        assert frame[1] == unique_id, frame
    assert frame[2] == code, frame
    assert frame[2] in ERROR_CODES
    description = frame[3]
    assert isinstance(description, str), frame
    assert len(description) <= 255, frame
    assert not LEAKS.search(description), f"description leaks internals: {description!r}"
    assert frame[4] == {}, frame
    return description


async def assert_alive(cp: RawCharger) -> None:
    """The connection still serves a Heartbeat."""
    result = await cp.call("Heartbeat", {})
    assert set(result) == {"currentTime"}


async def assert_nothing_answered(cp: RawCharger) -> None:
    with pytest.raises(TimeoutError):
        await cp.next_unmatched(timeout=QUIET)


@pytest.fixture
async def cp(app: App) -> AsyncIterator[RawCharger]:
    async with asyncio.timeout(TIMEOUT), booted(app, "ERR1", available=()) as charger:
        yield charger


# --- frames that are not a readable CALL ---------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "this is not json",
        '[2, "abc", "Heartbeat", {}',
        "",
        "[2, 'single', 'quotes', {}]",
        "NaN",
    ],
    ids=["prose", "truncated", "empty", "single-quotes", "nan"],
)
async def test_non_json_frame(cp: RawCharger, text: str) -> None:
    """A frame that is not JSON is answered with a FormationViolation under id "-1"."""
    async with asyncio.timeout(TIMEOUT):
        await cp.send_frame(text)
        assert_call_error(await cp.next_unmatched(), "FormationViolation", "-1")
        await assert_alive(cp)


@pytest.mark.parametrize(
    "frame",
    [{"a": 1}, [], 2, "hello", None, True, {}],
    ids=["object", "empty-array", "number", "string", "null", "bool", "empty-object"],
)
async def test_frame_not_a_non_empty_array(cp: RawCharger, frame: Any) -> None:
    """JSON that is not a non-empty array is answered with a FormationViolation under id "-1"."""
    async with asyncio.timeout(TIMEOUT):
        await cp.send_frame(json.dumps(frame))
        assert_call_error(await cp.next_unmatched(), "FormationViolation", "-1")
        await assert_alive(cp)


@pytest.mark.parametrize("type_id", [0, 1, 5, 6, -2, 99, 2**40])
async def test_unknown_message_type_id_is_ignored(cp: RawCharger, type_id: int) -> None:
    """An integer MessageTypeId other than 2, 3 or 4 is ignored: nothing is answered (J §4.1.3)."""
    async with asyncio.timeout(TIMEOUT):
        await cp.send_frame([type_id, "ignored-1", "Heartbeat", {}])
        await cp.send_frame([type_id])
        await assert_nothing_answered(cp)
        await assert_alive(cp)


@pytest.mark.parametrize("type_id", ["2", 2.0, None, [2]], ids=["string", "float", "null", "list"])
async def test_message_type_id_not_an_integer(cp: RawCharger, type_id: Any) -> None:
    """A MessageTypeId that is not an integer is a FormationViolation under id "-1"."""
    async with asyncio.timeout(TIMEOUT):
        await cp.send_frame([type_id, "x1", "Heartbeat", {}])
        assert_call_error(await cp.next_unmatched(), "FormationViolation", "-1")
        await assert_alive(cp)


async def test_unique_id_longer_than_36(cp: RawCharger) -> None:
    """A CALL whose message id exceeds 36 characters is refused with a FormationViolation."""
    long_id = "x" * 37
    async with asyncio.timeout(TIMEOUT):
        await cp.send_frame([2, long_id, "Heartbeat", {}])
        frame = await cp.next_unmatched()
        assert_call_error(frame, "FormationViolation")
        assert frame[1] in (long_id, "-1")
        # Exactly 36 characters is fine.
        ok_id = "y" * 36
        await cp.send_frame([2, ok_id, "Heartbeat", {}])
        answer = await cp.next_unmatched()
        assert answer[:2] == [3, ok_id]
        await assert_alive(cp)


@pytest.mark.parametrize("unique_id", [123, None, ["a"], {"id": 1}, True, ""], ids=str)
async def test_unique_id_not_a_string(cp: RawCharger, unique_id: Any) -> None:
    """A CALL whose message id is not a non-empty string is a FormationViolation under id "-1"."""
    async with asyncio.timeout(TIMEOUT):
        await cp.send_frame([2, unique_id, "Heartbeat", {}])
        assert_call_error(await cp.next_unmatched(), "FormationViolation", "-1")
        await assert_alive(cp)


async def test_call_missing_payload(cp: RawCharger) -> None:
    """A CALL without its payload element is answered ProtocolError ("payload incomplete")."""
    async with asyncio.timeout(TIMEOUT):
        await cp.send_frame([2, "nopayload-1", "Heartbeat"])
        assert_call_error(await cp.next_unmatched(), "ProtocolError", "nopayload-1")
        await assert_alive(cp)


async def test_call_missing_action(cp: RawCharger) -> None:
    """A CALL of only a type and an id is a FormationViolation answered with that id."""
    async with asyncio.timeout(TIMEOUT):
        await cp.send_frame([2, "noaction-1"])
        assert_call_error(await cp.next_unmatched(), "FormationViolation", "noaction-1")
        await assert_alive(cp)


async def test_call_action_not_a_string(cp: RawCharger) -> None:
    """A CALL whose action is not a string is a FormationViolation."""
    async with asyncio.timeout(TIMEOUT):
        await cp.send_frame([2, "badaction-1", 42, {}])
        assert_call_error(await cp.next_unmatched(), "FormationViolation", "badaction-1")
        await assert_alive(cp)


async def test_call_with_extra_elements(cp: RawCharger) -> None:
    """A CALL with more than four elements is a FormationViolation."""
    async with asyncio.timeout(TIMEOUT):
        await cp.send_frame([2, "extra-1", "Heartbeat", {}, {}])
        assert_call_error(await cp.next_unmatched(), "FormationViolation", "extra-1")
        await assert_alive(cp)


@pytest.mark.parametrize("payload", [None, [], "x", 1, True], ids=str)
async def test_call_payload_not_an_object(cp: RawCharger, payload: Any) -> None:
    """A CALL whose payload is not a JSON object (not even null) is a FormationViolation."""
    async with asyncio.timeout(TIMEOUT):
        frame = await cp.call_raw("Heartbeat", payload)
        assert_call_error(frame, "FormationViolation")
        await assert_alive(cp)


async def test_broken_callresult_and_callerror_are_not_answered(cp: RawCharger) -> None:
    """Malformed or unsolicited CALLRESULT/CALLERROR frames are never answered."""
    async with asyncio.timeout(TIMEOUT):
        for frame in (
            [3, "nobody-asked", {}],
            [3, "nobody-asked"],
            [3, "nobody-asked", [], 1],
            [4, "nobody-asked", "GenericError", "", {}],
            [4, "nobody-asked", 5],
            [3, 17, {}],
        ):
            await cp.send_frame(frame)
        await assert_nothing_answered(cp)
        await assert_alive(cp)


# --- well-formed CALLs the CSMS refuses ---------------------------------------------------


@pytest.mark.parametrize("action", ["FooBar", "heartbeat", "HEARTBEAT", "", "Heartbeat "])
async def test_unknown_action(cp: RawCharger, action: str) -> None:
    """An action that is not an OCPP 1.6 action (names are case-sensitive) is NotImplemented."""
    async with asyncio.timeout(TIMEOUT):
        assert_call_error(await cp.call_raw(action, {}), "NotImplemented")
        await assert_alive(cp)


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("Reset", {"type": "Soft"}),
        ("RemoteStartTransaction", {"idTag": "T1"}),
        ("GetConfiguration", {}),
        ("CertificateSigned", {"certificateChain": "x"}),
    ],
)
async def test_csms_to_charger_action_from_the_charger(
    cp: RawCharger, action: str, payload: dict[str, Any]
) -> None:
    """A CSMS→charger action sent by a charger is recognised but NotSupported."""
    async with asyncio.timeout(TIMEOUT):
        assert_call_error(await cp.call_raw(action, payload), "NotSupported")
        await assert_alive(cp)


@pytest.mark.parametrize(
    ("action", "payload", "code", "field"),
    [
        # required field missing
        (
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError"},
            "OccurenceConstraintViolation",
            "status",
        ),
        ("Authorize", {}, "OccurenceConstraintViolation", "idTag"),
        (
            "MeterValues",
            {"connectorId": 1, "meterValue": [{"timestamp": "2024-05-01T12:00:00Z"}]},
            "OccurenceConstraintViolation",
            "sampledValue",
        ),
        (
            "MeterValues",
            {"connectorId": 1, "meterValue": []},
            "OccurenceConstraintViolation",
            "meterValue",
        ),
        # wrong type
        (
            "StatusNotification",
            {"connectorId": "1", "errorCode": "NoError", "status": "Available"},
            "TypeConstraintViolation",
            "connectorId",
        ),
        (
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": "T1",
                "meterStart": 10.5,
                "timestamp": "2024-05-01T12:00:00Z",
            },
            "TypeConstraintViolation",
            "meterStart",
        ),
        ("Authorize", {"idTag": 12}, "TypeConstraintViolation", "idTag"),
        # string too long (CiString20 / 20 / 50)
        ("Authorize", {"idTag": "A" * 21}, "TypeConstraintViolation", "idTag"),
        (
            "BootNotification",
            {"chargePointVendor": "V" * 21, "chargePointModel": "M"},
            "TypeConstraintViolation",
            "chargePointVendor",
        ),
        (
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Available", "info": "i" * 51},
            "TypeConstraintViolation",
            "info",
        ),
        # value outside the enumeration
        (
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"},
            "PropertyConstraintViolation",
            "status",
        ),
        (
            "StopTransaction",
            {
                "transactionId": 1,
                "meterStop": 5,
                "timestamp": "2024-05-01T12:00:00Z",
                "reason": "Bored",
            },
            "PropertyConstraintViolation",
            "reason",
        ),
        (
            "StatusNotification",
            {"connectorId": 1, "errorCode": "noerror", "status": "Available"},
            "PropertyConstraintViolation",
            "errorCode",
        ),
        # additional property
        ("Heartbeat", {"extra": 1}, "FormationViolation", "extra"),
        (
            "Authorize",
            {"idTag": "T1", "IdTag": "T1"},
            "FormationViolation",
            "IdTag",
        ),
        (
            "MeterValues",
            {
                "connectorId": 1,
                "meterValue": [
                    {
                        "timestamp": "2024-05-01T12:00:00Z",
                        "sampledValue": [{"value": "1", "colour": "red"}],
                    }
                ],
            },
            "FormationViolation",
            "colour",
        ),
    ],
    ids=[
        "missing-status",
        "missing-idTag",
        "missing-sampledValue",
        "empty-meterValue",
        "connectorId-string",
        "meterStart-float",
        "idTag-number",
        "idTag-21",
        "vendor-21",
        "info-51",
        "status-enum",
        "reason-enum",
        "errorCode-case",
        "heartbeat-extra",
        "authorize-extra",
        "nested-extra",
    ],
)
async def test_schema_violations(
    cp: RawCharger, action: str, payload: dict[str, Any], code: str, field: str
) -> None:
    """A payload breaking its schema gets the matching 1.6 error code, naming the field."""
    async with asyncio.timeout(TIMEOUT):
        description = assert_call_error(await cp.call_raw(action, payload), code)
        assert field in description
        await assert_alive(cp)


async def test_bad_timestamp_is_a_property_violation(cp: RawCharger) -> None:
    """A timestamp that is not an ISO 8601 date-time violates the field's format."""
    async with asyncio.timeout(TIMEOUT):
        frame = await cp.call_raw(
            "StartTransaction",
            {"connectorId": 1, "idTag": "T1", "meterStart": 0, "timestamp": "yesterday"},
        )
        description = assert_call_error(frame, "PropertyConstraintViolation")
        assert "timestamp" in description
        await assert_alive(cp)


async def test_control_characters_are_not_echoed(cp: RawCharger) -> None:
    """Peer text echoed in a description is clipped and stripped of control characters."""
    async with asyncio.timeout(TIMEOUT):
        frame = await cp.call_raw("Evil\r\n\x1b[31m" + "Z" * 500, {})
        description = assert_call_error(frame, "NotImplemented")
        assert description.isprintable()
        assert "Z" * 100 not in description
        await assert_alive(cp)


async def test_reused_message_id_of_an_answered_call(cp: RawCharger) -> None:
    """Two pipelined CALLs with the same id each get exactly one well-formed answer."""
    async with asyncio.timeout(TIMEOUT):
        frame = [2, "dup-1", "Heartbeat", {}]
        await cp.send_frame(frame)
        await cp.send_frame(frame)
        first = await cp.next_unmatched()
        second = await cp.next_unmatched()
        assert first[:2] == [3, "dup-1"]
        assert second[1] == "dup-1"
        if second[0] == 4:
            # The CSMS serves CALLs one at a time, so the first is answered already;
            # if it still treats the id as in use it must say ProtocolError.
            assert_call_error(second, "ProtocolError", "dup-1")
        else:
            assert second[0] == 3
        await assert_nothing_answered(cp)
        await assert_alive(cp)


async def test_pipelined_calls_are_answered_in_order(cp: RawCharger) -> None:
    """A burst of good and bad CALLs sent without waiting is answered one-for-one, in order."""
    async with asyncio.timeout(TIMEOUT):
        frames: list[Any] = [
            [2, "p1", "Heartbeat", {}],
            [2, "p2", "Nope", {}],
            [2, "p3", "Heartbeat", {"x": 1}],
            [2, "p4", "Heartbeat"],
            [2, "p5", "Reset", {"type": "Hard"}],
            [2, "p6", "Heartbeat", {}],
        ]
        for frame in frames:
            await cp.send_frame(frame)
        answers = [await cp.next_unmatched() for _ in frames]
        assert [a[1] for a in answers] == ["p1", "p2", "p3", "p4", "p5", "p6"]
        assert [a[0] if a[0] == 3 else a[2] for a in answers] == [
            3,
            "NotImplemented",
            "FormationViolation",
            "ProtocolError",
            "NotSupported",
            3,
        ]
        await assert_nothing_answered(cp)


# --- CALLs before the charger is accepted ---------------------------------------------------


async def test_call_before_any_boot_is_a_security_error(app: App) -> None:
    """A charger accepted by policy gets SecurityError for CALLs before its first boot."""
    async with asyncio.timeout(TIMEOUT), RawCharger.connect(ocpp_url(app, "NOBOOT")) as cp:
        for action, payload in (
            ("Heartbeat", {}),
            (
                "StatusNotification",
                {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
            ),
            ("Authorize", {"idTag": "T1"}),
        ):
            assert_call_error(await cp.call_raw(action, payload), "SecurityError")
        assert (await cp.boot())["status"] == "Accepted"
        await assert_alive(cp)


async def test_pending_charger_gets_security_error(tmp_path: Path) -> None:
    """A Pending charger gets SecurityError for all but BootNotification until accepted."""
    config = make_config(tmp_path / "data", unknown_chargers="pending")
    async with (
        asyncio.timeout(TIMEOUT),
        running(config) as (app, api),
        RawCharger.connect(ocpp_url(app, "PEND1")) as cp,
    ):
        boot = await cp.boot()
        assert boot["status"] == "Pending"
        for action, payload in (
            ("Heartbeat", {}),
            (
                "StatusNotification",
                {"connectorId": 0, "errorCode": "NoError", "status": "Available"},
            ),
            (
                "StartTransaction",
                {
                    "connectorId": 1,
                    "idTag": "T1",
                    "meterStart": 0,
                    "timestamp": "2024-05-01T12:00:00Z",
                },
            ),
            ("DataTransfer", {"vendorId": "acme"}),
        ):
            description = assert_call_error(await cp.call_raw(action, payload), "SecurityError")
            assert description  # says why
        # The schema still comes first for a broken CALL: it is not a security matter.
        assert_call_error(await cp.call_raw("Nope", {}), "NotImplemented")

        status, _ = await api.request("PUT", "/api/chargers/PEND1", {"registration": "Accepted"})
        assert status == 200
        assert (await cp.boot())["status"] == "Accepted"
        await assert_alive(cp)
