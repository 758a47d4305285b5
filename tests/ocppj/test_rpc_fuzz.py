"""Property tests: nothing a peer sends makes receive_text raise or emit a bad CALLERROR."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.ocppj import (
    ALL_ACTIONS,
    ERROR_CODES,
    CallAborted,
    CallReceived,
    CallRejected,
    CallTimedOut,
    ErrorReceived,
    FrameIgnored,
    FrameRejected,
    ResultInvalid,
    ResultReceived,
    RpcEndpoint,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EVENT_TYPES = (
    CallReceived,
    CallRejected,
    ResultReceived,
    ResultInvalid,
    ErrorReceived,
    CallTimedOut,
    CallAborted,
    FrameRejected,
    FrameIgnored,
)
OUR_ID = "fz-1"  # the id of the CALL each fuzzed endpoint has outstanding
CHECK_ID = "\u2603 heartbeat check"

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
# Field names that occur in the OCPP schemas, so payloads reach deep into validators.
field_names = st.sampled_from(
    [
        "connectorId",
        "idTag",
        "meterValue",
        "timestamp",
        "sampledValue",
        "value",
        "status",
        "errorCode",
        "chargePointVendor",
        "chargePointModel",
        "transactionId",
        "meterStart",
        "meterStop",
        "reason",
        "transactionData",
        "vendorId",
        "data",
        "type",
        "csr",
        "idTagInfo",
        "currentTime",
        "interval",
        "configurationKey",
        "unknownKey",
    ]
)
payloads = st.dictionaries(field_names, json_values, max_size=5) | json_values
message_ids = (
    st.sampled_from([OUR_ID, "1", "-1", "", "x" * 36, "x" * 37]) | st.text(max_size=40) | scalars
)
actions = st.sampled_from(sorted(ALL_ACTIONS)) | st.text(max_size=20) | scalars
type_ids = st.sampled_from([2, 3, 4]) | st.sampled_from([0, 1, 5, -1, 2.0, True, "2", None])
frames = st.one_of(
    st.tuples(type_ids, message_ids, actions, payloads).map(list),
    st.tuples(type_ids, message_ids, payloads).map(list),
    st.tuples(st.just(4), message_ids, json_values, json_values, json_values).map(list),
    st.tuples(type_ids, message_ids).map(list),
    st.lists(json_values, max_size=6),
    json_values,
)


def fresh_endpoint(role: Any) -> RpcEndpoint:
    """An endpoint of ``role`` with one CALL of its own outstanding (id ``fz-1``)."""
    endpoint = RpcEndpoint(role=role, id_prefix="fz")
    action = "ClearCache" if role == "csms" else "Heartbeat"
    assert endpoint.send_call(action, {}, 0.0) == OUR_ID
    endpoint.data_to_send()
    return endpoint


def check_outcome(endpoint: RpcEndpoint) -> None:
    """Every event is a known type and every frame sent is a well-formed 1.6 CALLERROR."""
    for event in endpoint.events_received():
        assert isinstance(event, EVENT_TYPES)
    for data in endpoint.data_to_send():
        frame = orjson.loads(data)
        assert isinstance(frame, list) and len(frame) == 5
        kind, unique_id, code, description, details = frame
        assert kind == 4
        assert isinstance(unique_id, str) and unique_id
        assert code in ERROR_CODES
        assert isinstance(description, str) and len(description) <= 255
        assert isinstance(details, dict)


def check_still_serves_heartbeat(endpoint: RpcEndpoint) -> None:
    """After the fuzzed input the endpoint still serves a Heartbeat (CSMS) or Reset (CP)."""
    if endpoint.role == "csms":
        action, request, answer = "Heartbeat", {}, {"currentTime": "2024-05-01T12:00:00.000Z"}
    else:
        action, request, answer = "Reset", {"type": "Soft"}, {"status": "Accepted"}
    endpoint.receive_text(orjson.dumps([2, CHECK_ID, action, request]), 1.0)
    assert endpoint.events_received() == [CallReceived(CHECK_ID, action, request)]
    endpoint.send_result(CHECK_ID, answer)
    assert endpoint.data_to_send() == [orjson.dumps([3, CHECK_ID, answer])]


roles = st.sampled_from(["csms", "charge_point"])


@FUZZ
@given(role=roles, data=st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(role: Any, data: bytes) -> None:
    """Arbitrary bytes are answered or ignored, never raised."""
    endpoint = fresh_endpoint(role)
    endpoint.receive_text(data, 0.5)
    check_outcome(endpoint)
    check_still_serves_heartbeat(endpoint)


@FUZZ
@given(role=roles, text=st.text(alphabet=st.characters(exclude_categories=()), max_size=200))
def test_arbitrary_text_never_raises(role: Any, text: str) -> None:
    """Arbitrary text, lone surrogates included, is answered or ignored, never raised."""
    endpoint = fresh_endpoint(role)
    endpoint.receive_text(text, 0.5)
    check_outcome(endpoint)
    check_still_serves_heartbeat(endpoint)


@FUZZ
@given(role=roles, sequence=st.lists(frames, min_size=1, max_size=4))
def test_arbitrary_json_frames_never_raise(role: Any, sequence: list[Any]) -> None:
    """Sequences of JSON-ish frames never raise and only produce valid CALLERRORs."""
    endpoint = fresh_endpoint(role)
    for frame in sequence:
        endpoint.receive_text(orjson.dumps(frame), 0.5)
        check_outcome(endpoint)
    check_still_serves_heartbeat(endpoint)


@FUZZ
@given(
    role=roles,
    action=st.sampled_from(sorted(ALL_ACTIONS)),
    payload=st.dictionaries(field_names, json_values, max_size=6),
)
def test_schema_shaped_payloads_never_raise(role: Any, action: str, payload: Any) -> None:
    """Payloads built from real OCPP field names are accepted or rejected, never raised."""
    endpoint = fresh_endpoint(role)
    endpoint.receive_text(orjson.dumps([2, "p", action, payload]), 0.5)
    endpoint.receive_text(orjson.dumps([3, OUR_ID, payload]), 0.5)
    events = endpoint.events_received()
    assert isinstance(events[0], CallReceived | CallRejected)
    assert isinstance(events[1], ResultReceived | ResultInvalid)
    check_outcome(endpoint)
    check_still_serves_heartbeat(endpoint)
