"""RpcEndpoint: pure text in, events and frames out, time passed in explicitly."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from edge.ocppj import (
    CallAborted,
    CallReceived,
    CallRejected,
    CallTimedOut,
    ErrorReceived,
    FormationViolation,
    FrameIgnored,
    FrameRejected,
    InternalError,
    NotSupported,
    OccurenceConstraintViolation,
    OcppError,
    OcppNotImplemented,
    PropertyConstraintViolation,
    ProtocolError,
    QueueFull,
    ResultInvalid,
    ResultReceived,
    RpcEndpoint,
    RpcUsageError,
)

from .helpers import RpcPair

NOW = 1000.0
TIME = "2024-05-01T12:00:00.000Z"
BOOT = {"chargePointVendor": "VendorX", "chargePointModel": "M1"}


def frames(endpoint: RpcEndpoint) -> list[Any]:
    """Drain an endpoint's outgoing frames, decoded."""
    return [orjson.loads(data) for data in endpoint.data_to_send()]


def call_frame(unique_id: str, action: str, payload: dict[str, Any]) -> bytes:
    """Encode a CALL frame as a peer would send it."""
    return orjson.dumps([2, unique_id, action, payload])


# --------------------------------------------------------------------------- basics


def test_heartbeat_round_trip_over_the_pair() -> None:
    """A charge point Heartbeat reaches the CSMS, which answers it, and the CP gets the result."""
    pair = RpcPair()
    uid = pair.cp.send_call("Heartbeat", {}, pair.now)
    pair.flush()
    [event] = pair.csms.events_received()
    assert event == CallReceived(uid, "Heartbeat", {})
    pair.csms.send_result(uid, {"currentTime": TIME})
    pair.flush()
    assert pair.cp.events_received() == [ResultReceived(uid, "Heartbeat", {"currentTime": TIME})]
    assert pair.wire == [
        ("cp->csms", [2, uid, "Heartbeat", {}]),
        ("csms->cp", [3, uid, {"currentTime": TIME}]),
    ]


def test_send_result_frame_is_exact_wire_text() -> None:
    """Answering a received CALL yields the literal CALLRESULT text."""
    endpoint = RpcEndpoint()
    endpoint.receive_text('[2,"19223201","Heartbeat",{}]', NOW)
    [event] = endpoint.events_received()
    assert isinstance(event, CallReceived)
    endpoint.send_result(event.unique_id, {"currentTime": TIME})
    assert endpoint.data_to_send() == [b'[3,"19223201",{"currentTime":"' + TIME.encode() + b'"}]']
    assert endpoint.data_to_send() == []  # drained


def test_send_error_frame() -> None:
    """send_error answers an open CALL with a 5-element CALLERROR and closes the id."""
    endpoint = RpcEndpoint()
    endpoint.receive_text(call_frame("a", "Authorize", {"idTag": "T1"}), NOW)
    endpoint.send_error("a", InternalError("storage unavailable"))
    assert frames(endpoint) == [[4, "a", "InternalError", "storage unavailable", {}]]
    with pytest.raises(RpcUsageError):
        endpoint.send_result("a", {"idTagInfo": {"status": "Accepted"}})


def test_send_error_refuses_a_non_1_6_code() -> None:
    """An OcppError subclass with an invented code is refused locally."""

    class Teapot(OcppError):
        code = "Teapot"

    endpoint = RpcEndpoint()
    endpoint.receive_text(call_frame("a", "Heartbeat", {}), NOW)
    with pytest.raises(RpcUsageError):
        endpoint.send_error("a", Teapot())
    endpoint.send_error("a", InternalError())  # still open


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"role": "cloud"}, "role"),
        ({"call_timeout": 0}, "call_timeout"),
        ({"max_queued_calls": -1}, "max_queued_calls"),
        ({"id_prefix": ""}, "id_prefix"),
        ({"id_prefix": "p" * 25}, "id_prefix"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    """Out-of-range constructor arguments raise ValueError."""
    with pytest.raises(ValueError, match=message):
        RpcEndpoint(**kwargs)


# --------------------------------------------------------------------------- outgoing calls


def test_one_outstanding_call_and_fifo_queue() -> None:
    """Only one CALL is on the wire at a time; the rest follow in order as answers arrive."""
    pair = RpcPair()
    ids = [
        pair.csms.send_call("ClearCache", {}, pair.now),
        pair.csms.send_call("Reset", {"type": "Soft"}, pair.now),
        pair.csms.send_call("GetLocalListVersion", {}, pair.now),
    ]
    assert pair.csms.outstanding_call == ids[0]
    assert pair.csms.queued_calls == 2
    answers: list[dict[str, Any]] = [
        {"status": "Accepted"},
        {"status": "Accepted"},
        {"listVersion": 3},
    ]
    assert pair.flush() == 1  # only the first CALL crosses
    for uid, answer in zip(ids, answers, strict=True):
        [event] = pair.cp.events_received()
        assert isinstance(event, CallReceived) and event.unique_id == uid
        pair.cp.send_result(uid, answer)
        pair.flush()  # the result, and then the next CALL
        [result] = pair.csms.events_received()
        assert result == ResultReceived(uid, event.action, answer)
    assert [kind for kind, frame in pair.wire] == ["csms->cp", "cp->csms"] * 3
    assert pair.csms.outstanding_call is None
    assert pair.csms.queued_calls == 0
    assert pair.csms.next_deadline() is None


def test_ids_unique_and_at_most_36_characters() -> None:
    """Message ids are unique per endpoint and across endpoints, and fit in 36 characters."""
    a, b = RpcEndpoint(max_queued_calls=1000), RpcEndpoint(max_queued_calls=1000)
    ids = [e.send_call("ClearCache", {}, NOW) for e in (a, b) for _ in range(500)]
    assert len(set(ids)) == 1000
    assert all(len(uid) <= 36 for uid in ids)
    wide = RpcEndpoint(id_prefix="p" * 24)
    wide._counter = 10**11 - 2  # the largest counter the length budget reserves room for
    assert len(wide.send_call("ClearCache", {}, NOW)) == 36


def test_outstanding_call_times_out_at_deadline() -> None:
    """The outstanding CALL times out exactly call_timeout after it was sent."""
    endpoint = RpcEndpoint(call_timeout=30)
    uid = endpoint.send_call("ClearCache", {}, NOW)
    assert endpoint.next_deadline() == NOW + 30
    endpoint.handle_timeouts(NOW + 29.999)
    assert endpoint.events_received() == []
    endpoint.handle_timeouts(NOW + 30)
    assert endpoint.events_received() == [CallTimedOut(uid, "ClearCache", sent=True)]
    assert endpoint.outstanding_call is None
    assert endpoint.next_deadline() is None


def test_timeout_sends_the_next_queued_call() -> None:
    """After a timeout the next queued CALL goes out, with its deadline counted from then."""
    endpoint = RpcEndpoint(call_timeout=30)
    first = endpoint.send_call("ClearCache", {}, NOW)
    second = endpoint.send_call("Reset", {"type": "Hard"}, NOW + 10)
    frames(endpoint)
    endpoint.handle_timeouts(NOW + 30)
    assert endpoint.events_received() == [CallTimedOut(first, "ClearCache", sent=True)]
    assert frames(endpoint) == [[2, second, "Reset", {"type": "Hard"}]]
    assert endpoint.outstanding_call == second
    assert endpoint.next_deadline() == NOW + 60


def test_queued_call_expires_unsent() -> None:
    """A CALL that waited a whole call_timeout in the queue is dropped without being sent."""
    endpoint = RpcEndpoint(call_timeout=30)
    first = endpoint.send_call("ClearCache", {}, NOW)
    endpoint.receive_text(b"[5]", NOW + 1)  # time passes without an answer
    second = endpoint.send_call("Reset", {"type": "Soft"}, NOW + 1)
    third = endpoint.send_call("Reset", {"type": "Hard"}, NOW + 20)
    # First answered late in its window: second goes out, third keeps waiting.
    endpoint.receive_text(orjson.dumps([3, first, {}]), NOW + 29)
    assert endpoint.outstanding_call == second
    assert endpoint.next_deadline() == NOW + 50  # third's queue expiry beats second's NOW+59
    endpoint.events_received()
    endpoint.handle_timeouts(NOW + 50)
    assert endpoint.events_received() == [CallTimedOut(third, "Reset", sent=False)]
    assert endpoint.outstanding_call == second
    assert endpoint.queued_calls == 0
    assert [f[1] for f in frames(endpoint)] == [first, second]


def test_expired_queue_entries_are_skipped_when_sending_next() -> None:
    """When the outstanding CALL times out, stale queued CALLs are dropped and a fresh one sent."""
    endpoint = RpcEndpoint(call_timeout=30)
    first = endpoint.send_call("ClearCache", {}, NOW)
    stale = endpoint.send_call("ClearCache", {}, NOW)
    fresh = endpoint.send_call("ClearCache", {}, NOW + 5)
    endpoint.handle_timeouts(NOW + 30)
    assert endpoint.events_received() == [
        CallTimedOut(first, "ClearCache", sent=True),
        CallTimedOut(stale, "ClearCache", sent=False),
    ]
    assert endpoint.outstanding_call == fresh


def test_send_call_applies_due_timeouts_first() -> None:
    """send_call at a later time first times out an overdue CALL, then sends at once."""
    endpoint = RpcEndpoint(call_timeout=30)
    first = endpoint.send_call("ClearCache", {}, NOW)
    second = endpoint.send_call("ClearCache", {}, NOW + 100)
    assert endpoint.events_received() == [CallTimedOut(first, "ClearCache", sent=True)]
    assert endpoint.outstanding_call == second


def test_queue_full() -> None:
    """With max_queued_calls waiting, send_call raises QueueFull and changes nothing."""
    endpoint = RpcEndpoint(max_queued_calls=2)
    for _ in range(3):
        endpoint.send_call("ClearCache", {}, NOW)
    with pytest.raises(QueueFull):
        endpoint.send_call("ClearCache", {}, NOW)
    assert endpoint.queued_calls == 2
    assert len(endpoint.data_to_send()) == 1


def test_send_call_validates_strictly_and_queues_nothing_on_failure() -> None:
    """An invalid outgoing payload raises its OcppError subclass and sends nothing."""
    endpoint = RpcEndpoint()
    with pytest.raises(PropertyConstraintViolation):
        endpoint.send_call("Reset", {"type": "Sideways"}, NOW)
    with pytest.raises(OccurenceConstraintViolation):
        endpoint.send_call("Reset", {}, NOW)
    expiry = {
        "connectorId": 1,
        "expiryDate": "2024-05-01T12:00:00",
        "idTag": "T",
        "reservationId": 1,
    }
    with pytest.raises(PropertyConstraintViolation):  # naive timestamps only from chargers
        endpoint.send_call("ReserveNow", expiry, NOW)
    assert endpoint.data_to_send() == []
    assert endpoint.outstanding_call is None


@pytest.mark.parametrize(
    ("role", "action"), [("csms", "Heartbeat"), ("csms", "Nope"), ("charge_point", "Reset")]
)
def test_send_call_refuses_actions_of_the_wrong_direction(role: Any, action: str) -> None:
    """An endpoint only sends the CALLs its role sends."""
    with pytest.raises(RpcUsageError):
        RpcEndpoint(role=role).send_call(action, {}, NOW)


def test_data_transfer_travels_both_ways() -> None:
    """DataTransfer may be sent and received by both roles."""
    pair = RpcPair()
    pair.csms.send_call("DataTransfer", {"vendorId": "acme"}, pair.now)
    pair.cp.send_call("DataTransfer", {"vendorId": "acme"}, pair.now)
    pair.flush()
    assert isinstance(pair.csms.events_received()[0], CallReceived)
    assert isinstance(pair.cp.events_received()[0], CallReceived)


# --------------------------------------------------------------------------- answers


def test_call_error_received_keeps_raw_code() -> None:
    """A CALLERROR answer yields ErrorReceived with the peer's code; .error normalises it."""
    endpoint = RpcEndpoint()
    uid = endpoint.send_call("Reset", {"type": "Soft"}, NOW)
    endpoint.receive_text(orjson.dumps([4, uid, "FormatViolation", "bad", {"x": 1}]), NOW + 1)
    [event] = endpoint.events_received()
    assert event == ErrorReceived(uid, "Reset", "FormatViolation", "bad", {"x": 1})
    assert isinstance(event, ErrorReceived)
    assert type(event.error) is FormationViolation
    assert event.error.details == {"x": 1}


def test_invalid_result_is_reported_with_payload() -> None:
    """A CALLRESULT failing its schema yields ResultInvalid with the payload and error."""
    endpoint = RpcEndpoint()
    uid = endpoint.send_call("Reset", {"type": "Soft"}, NOW)
    endpoint.receive_text(orjson.dumps([3, uid, {"status": "Maybe"}]), NOW + 1)
    [event] = endpoint.events_received()
    assert isinstance(event, ResultInvalid)
    assert (event.unique_id, event.action, event.payload) == (uid, "Reset", {"status": "Maybe"})
    assert type(event.error) is PropertyConstraintViolation
    assert endpoint.outstanding_call is None


def test_late_result_after_timeout_is_ignored() -> None:
    """A result arriving after its CALL timed out is FrameIgnored, not a result."""
    endpoint = RpcEndpoint(call_timeout=30)
    uid = endpoint.send_call("ClearCache", {}, NOW)
    endpoint.handle_timeouts(NOW + 30)
    endpoint.events_received()
    endpoint.data_to_send()
    endpoint.receive_text(orjson.dumps([3, uid, {"status": "Accepted"}]), NOW + 31)
    [event] = endpoint.events_received()
    assert isinstance(event, FrameIgnored) and event.unique_id == uid
    assert endpoint.data_to_send() == []


def test_overdue_result_is_ignored_even_before_the_timer_fires() -> None:
    """receive_text applies due timeouts first, so an overdue answer never counts."""
    endpoint = RpcEndpoint(call_timeout=30)
    uid = endpoint.send_call("ClearCache", {}, NOW)
    endpoint.receive_text(orjson.dumps([3, uid, {"status": "Accepted"}]), NOW + 30)
    timed_out, ignored = endpoint.events_received()
    assert timed_out == CallTimedOut(uid, "ClearCache", sent=True)
    assert isinstance(ignored, FrameIgnored)


def test_answer_with_unknown_id_is_ignored() -> None:
    """A result or error for an id that is not outstanding is ignored and not answered."""
    endpoint = RpcEndpoint()
    uid = endpoint.send_call("ClearCache", {}, NOW)
    endpoint.receive_text('[3,"other",{}]', NOW)
    endpoint.receive_text('[4,"other","GenericError","",{}]', NOW)
    assert [type(e) for e in endpoint.events_received()] == [FrameIgnored, FrameIgnored]
    assert endpoint.outstanding_call == uid
    assert len(endpoint.data_to_send()) == 1  # only our CALL


# --------------------------------------------------------------------------- incoming calls


def test_incoming_call_answered_while_own_call_outstanding() -> None:
    """The CSMS serves a CP CALL while its own CALL to that CP is still unanswered."""
    pair = RpcPair()
    ours = pair.csms.send_call("GetConfiguration", {}, pair.now)
    theirs = pair.cp.send_call(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
        pair.now,
    )
    pair.flush()
    [incoming] = pair.csms.events_received()
    assert incoming.unique_id == theirs
    pair.csms.send_result(theirs, {})
    pair.flush()
    assert pair.cp.events_received()[-1] == ResultReceived(theirs, "StatusNotification", {})
    assert pair.csms.outstanding_call == ours
    pair.cp.send_result(ours, {"configurationKey": []})
    pair.flush()
    assert pair.csms.events_received() == [
        ResultReceived(ours, "GetConfiguration", {"configurationKey": []})
    ]


def test_duplicate_open_id_is_protocol_error() -> None:
    """A CALL reusing the id of an unanswered CALL gets ProtocolError; the first stays open."""
    endpoint = RpcEndpoint()
    endpoint.receive_text(call_frame("dup", "Heartbeat", {}), NOW)
    endpoint.receive_text(call_frame("dup", "Heartbeat", {}), NOW)
    first, second = endpoint.events_received()
    assert isinstance(first, CallReceived)
    assert isinstance(second, CallRejected) and type(second.error) is ProtocolError
    assert frames(endpoint) == [
        [4, "dup", "ProtocolError", "duplicate message id: a CALL with this id is still open", {}]
    ]
    endpoint.send_result("dup", {"currentTime": TIME})
    assert frames(endpoint) == [[3, "dup", {"currentTime": TIME}]]


def test_id_may_be_reused_after_it_was_answered() -> None:
    """A retried CALL may reuse an id once the earlier CALL was answered (J errata 3.7)."""
    endpoint = RpcEndpoint()
    for _ in range(2):
        endpoint.receive_text(call_frame("r", "Heartbeat", {}), NOW)
        [event] = endpoint.events_received()
        assert isinstance(event, CallReceived)
        endpoint.send_result("r", {"currentTime": TIME})


def test_answering_a_non_open_id_raises() -> None:
    """send_result/send_error for an id that is not open is a local RpcUsageError."""
    endpoint = RpcEndpoint()
    with pytest.raises(RpcUsageError):
        endpoint.send_result("nope", {})
    with pytest.raises(RpcUsageError):
        endpoint.send_error("nope", InternalError())
    assert endpoint.data_to_send() == []


def test_invalid_own_response_raises_and_keeps_id_open() -> None:
    """An invalid response of ours raises RpcUsageError and leaves the id open for an error."""
    endpoint = RpcEndpoint()
    endpoint.receive_text(call_frame("b", "BootNotification", BOOT), NOW)
    with pytest.raises(RpcUsageError, match="interval"):
        endpoint.send_result("b", {"status": "Accepted", "currentTime": TIME, "interval": "300"})
    with pytest.raises(RpcUsageError):  # strict: naive timestamps are not ours to send
        endpoint.send_result("b", {"status": "Accepted", "currentTime": TIME[:-1], "interval": 300})
    assert endpoint.data_to_send() == []
    endpoint.send_error("b", InternalError())
    assert frames(endpoint) == [[4, "b", "InternalError", "", {}]]


@pytest.mark.parametrize(
    ("role", "action", "error"),
    [
        ("csms", "Reset", NotSupported),
        ("csms", "RemoteStartTransaction", NotSupported),
        ("csms", "FooBar", OcppNotImplemented),
        ("csms", "heartbeat", OcppNotImplemented),
        ("charge_point", "Heartbeat", NotSupported),
        ("charge_point", "BootNotification", NotSupported),
        ("charge_point", "", OcppNotImplemented),
    ],
)
def test_not_implemented_vs_not_supported_by_role(
    role: Any, action: str, error: type[OcppError]
) -> None:
    """Unknown actions get NotImplemented; 1.6 actions of the other direction NotSupported."""
    endpoint = RpcEndpoint(role=role)
    endpoint.receive_text(call_frame("x", action, {}), NOW)
    [event] = endpoint.events_received()
    assert isinstance(event, CallRejected) and type(event.error) is error
    [[kind, uid, code, _description, details]] = frames(endpoint)
    assert (kind, uid, code, details) == (4, "x", error.code, {})


def test_invalid_incoming_payload_is_rejected_with_its_code() -> None:
    """A CALL failing its schema is answered with the mapped code and a readable description."""
    endpoint = RpcEndpoint()
    endpoint.receive_text(
        call_frame("v", "BootNotification", {**BOOT, "chargePointVendor": "V" * 21}), NOW
    )
    [event] = endpoint.events_received()
    assert isinstance(event, CallRejected) and event.action == "BootNotification"
    assert frames(endpoint) == [
        [4, "v", "TypeConstraintViolation", "chargePointVendor: must be at most 20 characters", {}]
    ]


def test_naive_timestamp_from_charger_is_accepted() -> None:
    """Incoming payloads are checked leniently: a timestamp without offset is accepted."""
    endpoint = RpcEndpoint()
    payload = {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2024-05-01T12:00:00"}
    endpoint.receive_text(call_frame("s", "StartTransaction", payload), NOW)
    assert endpoint.events_received() == [CallReceived("s", "StartTransaction", payload)]


def test_validate_false_skips_schemas() -> None:
    """With validate=False payloads are not checked, but actions still are."""
    endpoint = RpcEndpoint(validate=False)
    endpoint.receive_text(call_frame("n", "BootNotification", {"junk": 1}), NOW)
    assert isinstance(endpoint.events_received()[0], CallReceived)
    endpoint.send_result("n", {"anything": True})
    endpoint.send_call("Reset", {"type": "Sideways"}, NOW)
    with pytest.raises(RpcUsageError):
        endpoint.send_call("Heartbeat", {}, NOW)


# --------------------------------------------------------------------------- bad frames


def test_malformed_call_with_id_is_answered_with_that_id() -> None:
    """A malformed CALL whose id is readable gets a CALLERROR with that id."""
    endpoint = RpcEndpoint()
    endpoint.receive_text('[2,"m","Heartbeat"]', NOW)
    [event] = endpoint.events_received()
    assert isinstance(event, FrameRejected) and event.unique_id == "m"
    assert frames(endpoint) == [
        [4, "m", "ProtocolError", "CALL is incomplete: payload missing", {}]
    ]


@pytest.mark.parametrize(
    "wire",
    ["garbage", b"\xff", "[]", '{"a":1}', '[2,5,"Heartbeat",{}]', '["2","a","Heartbeat",{}]'],
)
def test_unreadable_id_is_answered_with_minus_one(wire: str | bytes) -> None:
    """Garbage, or a CALL without a usable id, gets a FormationViolation CALLERROR with id "-1"."""
    endpoint = RpcEndpoint()
    endpoint.receive_text(wire, NOW)
    [event] = endpoint.events_received()
    assert isinstance(event, FrameRejected) and event.unique_id is None
    [[kind, uid, code, _description, details]] = frames(endpoint)
    assert (kind, uid, code, details) == (4, "-1", "FormationViolation", {})


@pytest.mark.parametrize("wire", ['[3,"x",null]', "[3,5,{}]", '[4,"x",5,"",{}]', "[4]"])
def test_malformed_result_or_error_is_not_answered(wire: str) -> None:
    """A malformed CALLRESULT/CALLERROR is reported as FrameRejected and never answered."""
    endpoint = RpcEndpoint()
    endpoint.receive_text(wire, NOW)
    [event] = endpoint.events_received()
    assert isinstance(event, FrameRejected)
    assert endpoint.data_to_send() == []


def test_unknown_message_type_is_ignored_silently() -> None:
    """A frame with MessageTypeId 5 yields FrameIgnored and no reply."""
    endpoint = RpcEndpoint()
    endpoint.receive_text('[5,"x","Heartbeat",{}]', NOW)
    [event] = endpoint.events_received()
    assert isinstance(event, FrameIgnored)
    assert endpoint.data_to_send() == []


# --------------------------------------------------------------------------- lifecycle


def test_connection_lost_aborts_everything() -> None:
    """connection_lost aborts outstanding and queued CALLs, clears open ids, and closes."""
    endpoint = RpcEndpoint()
    sent = endpoint.send_call("ClearCache", {}, NOW)
    queued = endpoint.send_call("Reset", {"type": "Hard"}, NOW)
    endpoint.receive_text(call_frame("in", "Heartbeat", {}), NOW)
    endpoint.events_received()
    endpoint.connection_lost()
    assert endpoint.events_received() == [
        CallAborted(sent, "ClearCache", sent=True),
        CallAborted(queued, "Reset", sent=False),
    ]
    assert endpoint.data_to_send() == []
    assert endpoint.outstanding_call is None and endpoint.queued_calls == 0
    assert endpoint.next_deadline() is None
    with pytest.raises(RpcUsageError):
        endpoint.send_result("in", {"currentTime": TIME})
    with pytest.raises(RpcUsageError):
        endpoint.send_call("ClearCache", {}, NOW)
    with pytest.raises(RpcUsageError):
        endpoint.receive_text(call_frame("x", "Heartbeat", {}), NOW)
    endpoint.connection_lost()  # idempotent
    assert endpoint.events_received() == []
    assert endpoint.statistics().closed


def test_statistics_snapshot() -> None:
    """statistics() returns a frozen snapshot of counters and state."""
    pair = RpcPair()
    pair.csms.send_call("ClearCache", {}, pair.now)
    pair.cp.send_call("Heartbeat", {}, pair.now)
    pair.flush()
    pair.csms.receive_text("junk", pair.now)
    stats = pair.csms.statistics()
    assert (stats.calls_sent, stats.calls_received, stats.frames_rejected) == (1, 1, 1)
    assert stats.errors_sent == 1 and stats.open_incoming == 1
    assert stats.outstanding_call == pair.csms.outstanding_call
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.calls_sent = 5  # type: ignore[misc]
