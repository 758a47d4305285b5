"""A hostile or broken cloud never crashes the edge, never costs an outbox entry, and never
stops the charger side (DESIGN §7: the cloud is informed and obeyed, never waited on; §8:
every input is bounded and validated at the boundary).

The cloud here is `tests.upstream.raw_cloud.RawCloud`, raw WebSocket frames. For each kind
of garbage it answers the edge's CALLs with it, and the test checks the same things while
it does: the charger is still answered, the message still waits in the outbox (journal
and GET /api/upstream; waiting, not parked), the problem is logged (and counted in
/metrics where it is a frame that breaks OCPP-J), and once the cloud behaves again the
outbox drains: each transaction message once, in the charger's order, under the cloud's id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import tomllib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge.app import App
from edge.config import parse_config
from edge.sim.charger import RawCharger
from tests.conftest import TIME_SCALE, Api, ocpp_url, running
from tests.helpers import eventually
from tests.integration.service import config_toml
from tests.upstream.raw_cloud import (
    Close,
    Fragments,
    RawCloud,
    RawText,
    Received,
    Reply,
    now_text,
)
from tests.upstream.test_upstream import (
    BOOT,
    TX_ACTIONS,
    Sent,
    accept_tag,
    as_cloud_sees_it,
    booted,
    charge,
    transaction_messages,
    upstream_entry,
    upstream_entry_when,
)

Payload = dict[str, Any]

TEST_TIMEOUT = 40 * TIME_SCALE
WAIT = 15 * TIME_SCALE
ANSWERED = 5 * TIME_SCALE  # bound on a charger's wait for the edge's answer
# The link waits this long for the cloud's answer to a CALL before it gives the connection
# up (30 s in production): a cloud that answers with garbage is one that did not answer.
CALL_TIMEOUT = 2.0 * TIME_SCALE
CLOUD_ERRORS = "edge_upstream_cloud_errors_total"  # by kind, in GET /metrics
HUGE = 2 * 2**20  # bytes: twice the largest message the link accepts
BIG = 2**19  # bytes: half of it
LONGEST_LOG_LINE = 1000  # characters; what the cloud sends is shortened before it is logged
CP = "JUNK1"


@pytest.fixture(autouse=True)
def short_call_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("edge.upstream.link.CALL_TIMEOUT", CALL_TIMEOUT)


@pytest.fixture
async def raw_cloud() -> AsyncIterator[RawCloud]:
    async with RawCloud() as cloud:
        yield cloud


@contextlib.asynccontextmanager
async def edge(tmp_path: Path, cloud: RawCloud) -> AsyncIterator[tuple[App, Api]]:
    """An in-process edge whose cloud is `cloud`. A transaction message the cloud refuses
    is retried (quickly, up to 100 times) rather than parked, so a broken cloud can be
    repaired while the message still waits."""
    text = config_toml(tmp_path / "data", call_timeout=2.0 * TIME_SCALE)
    text += f"\n[upstream]\nurl = {json.dumps(cloud.url)}\nmessage_attempts = 100\n"
    text += "retry_interval = 0.1\n"
    async with running(parse_config(tomllib.loads(text))) as (app, api):
        yield app, api


def logged(caplog: pytest.LogCaptureFixture, *words: str) -> list[str]:
    """What the cloud link logged at INFO or above with all of `words` (any case)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("edge.upstream")
        and r.levelno >= logging.INFO
        and all(w.lower() in r.getMessage().lower() for w in words)
    ]


async def cloud_errors(api: Api) -> dict[str, float]:
    """The counter of the cloud's protocol errors in GET /metrics, by kind."""
    async with api.session.get(api.base + "/metrics") as resp:
        text = await resp.text()
    found = re.findall(rf'^{CLOUD_ERRORS}{{kind="(\w+)"}} (\S+)$', text, re.MULTILINE)
    return {kind: float(value) for kind, value in found}


async def still_serving(sent: Sent) -> None:
    """The charger side goes on: a Heartbeat and a StatusNotification are answered."""
    frame = await sent.cp.call_raw("Heartbeat", {}, timeout=ANSWERED)
    assert frame[0] == 3 and "currentTime" in frame[2], frame
    await sent.status(1, "Available")


def waiting(app: App, charger_id: str) -> list[str]:
    """The actions waiting in the charger's outbox (parked ones not included), in order."""
    return [e.action for e in app.services.journal.outbox_pending(charger_id, 100)]


# --- the cloud answers the edge's CALLs with garbage -------------------------------------


def start_conf(transaction_id: object = 7777) -> Payload:
    return {"transactionId": transaction_id, "idTagInfo": {"status": "Accepted"}}


def previous_id(call: Received, cloud: RawCloud) -> str:
    """The message id of the edge's CALL before this one (long answered)."""
    return cloud.received(call.charge_point)[-2].unique_id


@dataclass(frozen=True)
class Garbage:
    """A broken answer to every CALL of `action`."""

    action: str
    replies: Callable[[Received, RawCloud], list[Reply]]
    logged: tuple[str, ...]  # words of the log line that says what went wrong
    counted: str | None = None  # its kind in edge_upstream_cloud_errors_total


GARBAGE = {
    "text-not-json": Garbage(
        "StartTransaction", lambda c, _: ["this is {not json"], ("JSON",), "frame"
    ),
    "binary-frame": Garbage(
        "StartTransaction",
        lambda c, _: [json.dumps([3, c.unique_id, start_conf()]).encode()],
        ("binary",),
        "binary",
    ),
    "json-not-an-array": Garbage(
        "StartTransaction", lambda c, _: [start_conf()], ("array",), "frame"
    ),
    "result-with-an-unknown-message-id": Garbage(
        "StartTransaction",
        lambda c, _: [[3, "no-such-call", start_conf()]],
        ("no-such-call",),
        "unmatched",
    ),
    "result-with-an-earlier-message-id": Garbage(
        "StartTransaction",
        lambda c, cloud: [[3, previous_id(c, cloud), start_conf()]],
        ("not outstanding",),
        "unmatched",
    ),
    "boot-conf-without-status": Garbage(
        "BootNotification",
        lambda c, _: [[3, c.unique_id, {"currentTime": now_text(), "interval": 1}]],
        ("BootNotification", "status"),
        "invalid_result",
    ),
    "start-conf-without-transaction-id": Garbage(
        "StartTransaction",
        lambda c, _: [[3, c.unique_id, {"idTagInfo": {"status": "Accepted"}}]],
        ("StartTransaction", "transactionId"),
        "invalid_result",
    ),
    "start-conf-with-a-string-id": Garbage(
        "StartTransaction",
        lambda c, _: [[3, c.unique_id, start_conf("7777")]],
        ("StartTransaction", "transactionId"),
        "invalid_result",
    ),
    "start-conf-with-a-boolean-id": Garbage(
        "StartTransaction",
        lambda c, _: [[3, c.unique_id, start_conf(True)]],
        ("StartTransaction", "transactionId"),
        "invalid_result",
    ),
    "error-with-a-huge-description": Garbage(
        "StartTransaction",
        lambda c, _: [[4, c.unique_id, "InternalError", "z" * BIG, {}]],
        ("StartTransaction", "InternalError"),
    ),
    "big-start-conf-without-transaction-id": Garbage(
        "StartTransaction",
        lambda c, _: [[3, c.unique_id, {"idTagInfo": {"status": "Accepted"}, "z": "z" * BIG}]],
        ("StartTransaction", "transactionId"),
        "invalid_result",
    ),
    "error-with-an-unknown-code": Garbage(
        "StartTransaction",
        lambda c, _: [[4, c.unique_id, "NoSuchErrorCode", "what", {}]],
        ("NoSuchErrorCode",),
        "error_code",
    ),
    "enormous-frame": Garbage(
        "StartTransaction",
        lambda c, _: [[3, c.unique_id, {**start_conf(), "padding": "x" * HUGE}]],
        ("down", "1009"),
    ),
    "close-instead-of-an-answer": Garbage(
        "StartTransaction", lambda c, _: [Close(1011, "cannot store")], ("down", "1011")
    ),
    "connection-cut-instead-of-an-answer": Garbage(
        "StartTransaction", lambda c, _: [Close(abort=True)], ("down", "StartTransaction")
    ),
    # A well-formed answer but for one byte that is not UTF-8: the frame is refused
    # (RFC 6455: close 1007), never read as the answer it looks like.
    "text-not-utf-8": Garbage(
        "StartTransaction",
        lambda c, _: [
            RawText(json.dumps([3, c.unique_id, start_conf()]).encode()[:-3] + b"\xff}]")
        ],
        ("down", "1007"),
    ),
}


@pytest.mark.parametrize("kind", list(GARBAGE))
async def test_garbage_answers_cost_nothing_and_the_outbox_drains_once_repaired(
    tmp_path: Path, raw_cloud: RawCloud, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    """The cloud answers the Boot, or the StartTransaction of a whole transaction, with
    one kind of garbage: the charger is still answered, the messages wait in the outbox
    (not parked), the problem is logged (briefly) and counted; once the cloud answers properly,
    every transaction message reaches it once, in order, under its own transaction id."""
    caplog.set_level(logging.INFO)
    garbage, cloud = GARBAGE[kind], raw_cloud
    on_boot = garbage.action == "BootNotification"

    def script(call: Received) -> list[Reply]:
        return garbage.replies(call, cloud)

    if on_boot:
        cloud.script["BootNotification"] = script
    async with asyncio.timeout(TEST_TIMEOUT), edge(tmp_path, cloud) as (app, api):
        await accept_tag(api, "TAG1")
        async with RawCharger.connect(ocpp_url(app, CP)) as cp:
            sent = Sent(cp)
            await booted(sent)
            if not on_boot:
                available = sent.last_status(1)
                await cloud.wait_for(CP, "StatusNotification", lambda c: c.payload == available)
                cloud.script[garbage.action] = script
            edge_id = await charge(sent, samples=2)
            await cloud.wait_for(CP, garbage.action, lambda c: not c.good, timeout=WAIT)

            await still_serving(sent)
            queue = waiting(app, CP)
            assert [a for a in queue if a in TX_ACTIONS] == [
                a for a, _ in transaction_messages(sent.messages)
            ], queue
            if not on_boot:
                assert queue[0] == "StartTransaction", queue
            entry = await upstream_entry(api, CP)
            assert entry["pending"] >= 4 and entry["parked"] == 0, entry
            assert not cloud.good(CP, *TX_ACTIONS)
            if on_boot:
                assert {c.action for c in cloud.received(CP)} == {"BootNotification"}
            await eventually(lambda: logged(caplog, *garbage.logged), timeout=WAIT)
            assert max(map(len, logged(caplog))) <= LONGEST_LOG_LINE
            if garbage.counted is not None:
                assert (await cloud_errors(api)).get(garbage.counted, 0) >= 1

            # Repaired: everything drains, each transaction message once.
            cloud.script.clear()
            await cloud.wait_for(CP, "StopTransaction", lambda c: c.good, timeout=WAIT)
            last = sent.last_status(1)
            await cloud.wait_for(
                CP, "StatusNotification", lambda c: c.good and c.payload == last, timeout=WAIT
            )
            await upstream_entry_when(api, CP, lambda e: e["pending"] == 0 and e["connected"])
            assert (await upstream_entry(api, CP))["parked"] == 0
            (start,) = cloud.good(CP, "StartTransaction")
            result = start.result()
            assert result is not None
            expected = as_cloud_sees_it(sent.messages, edge_id, result["transactionId"])
            got = [(c.action, c.payload) for c in cloud.good(CP, *TX_ACTIONS)]
            assert got == transaction_messages(expected)
            if on_boot:
                first = cloud.good(CP)[0]
                assert first.action == "BootNotification" and first.payload == BOOT
            await still_serving(sent)


async def test_an_answer_in_fragments_is_taken_in_its_place(
    tmp_path: Path, raw_cloud: RawCloud, caplog: pytest.LogCaptureFixture
) -> None:
    """A cloud may fragment a message. The link reads an answer sent in several frames as
    that answer, and in its place: a second, whole-frame answer right behind it (to the
    same CALL, with another id) comes after it and is the one ignored."""
    caplog.set_level(logging.INFO)
    cloud = raw_cloud

    def fragmented_then_whole(call: Received) -> list[Reply]:
        text = json.dumps([3, call.unique_id, start_conf(7777)])
        return [Fragments(text[:10], text[10:25], text[25:]), [3, call.unique_id, start_conf(8888)]]

    cloud.script["StartTransaction"] = fragmented_then_whole
    async with asyncio.timeout(TEST_TIMEOUT), edge(tmp_path, cloud) as (app, api):
        await accept_tag(api, "TAG1")
        async with RawCharger.connect(ocpp_url(app, CP)) as cp:
            sent = Sent(cp)
            await booted(sent)
            edge_id = await charge(sent, samples=2)
            await cloud.wait_for(CP, "StopTransaction", lambda c: c.good, timeout=WAIT)
            got = [(c.action, c.payload) for c in cloud.received(CP, *TX_ACTIONS)]
            assert got == transaction_messages(as_cloud_sees_it(sent.messages, edge_id, 7777))
            transaction = await api.get(f"/api/transactions/{edge_id}")
            assert transaction["cloudTransactionId"] == 7777, transaction
            await eventually(lambda: logged(caplog, "not outstanding"), timeout=WAIT)
            await upstream_entry_when(api, CP, lambda e: e["pending"] == 0 and e["connected"])


# --- the cloud sends the edge CALLs that break OCPP-J ------------------------------------

AVAILABILITY = {"connectorId": 1, "type": "Inoperative"}
BAD_CALLS = {
    "unknown-action": ('"FlyToTheMoon", {}', "NotImplemented"),
    "action-a-charger-does-not-take": ('"BootNotification", {}', "NotSupported"),
    "field-missing": ('"ChangeAvailability", {"connectorId": 1}', "OccurenceConstraintViolation"),
    "field-of-the-wrong-type": (
        '"ChangeAvailability", {"connectorId": "one", "type": "Inoperative"}',
        "TypeConstraintViolation",
    ),
    "value-out-of-its-enum": (
        '"ChangeAvailability", {"connectorId": 1, "type": "Sideways"}',
        "PropertyConstraintViolation",
    ),
    "field-not-in-the-schema": (
        '"ChangeAvailability", {"connectorId": 1, "type": "Inoperative", "now": true}',
        "FormationViolation",
    ),
    "transaction-id-as-a-string": (
        '"RemoteStopTransaction", {"transactionId": "7000"}',
        "TypeConstraintViolation",
    ),
    "profile-that-is-not-an-object": (
        '"SetChargingProfile", {"connectorId": 1, "csChargingProfiles": "all"}',
        "TypeConstraintViolation",
    ),
    "payload-not-an-object": ('"Reset", ["Hard"]', "FormationViolation"),
    "payload-missing": ('"Reset"', "ProtocolError"),
}


@pytest.mark.parametrize("kind", list(BAD_CALLS))
async def test_a_bad_call_from_the_cloud_gets_the_ocpp_j_error_and_never_reaches_the_charger(
    tmp_path: Path, raw_cloud: RawCloud, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    """A CALL from the cloud with an unknown action or a payload that breaks its schema is
    answered with the CALLERROR OCPP-J names for it (NotImplemented, NotSupported,
    FormationViolation, …), logged and counted; the charger never sees it, and the link,
    the charger side and a well-formed command afterwards all go on."""
    caplog.set_level(logging.INFO)
    body, code = BAD_CALLS[kind]
    cloud = raw_cloud
    async with (
        asyncio.timeout(TEST_TIMEOUT),
        edge(tmp_path, cloud) as (app, api),
        RawCharger.connect(ocpp_url(app, CP)) as cp,
    ):
        cp.answers["ChangeAvailability"] = {"status": "Accepted"}
        sent = Sent(cp)
        await booted(sent)
        available = sent.last_status(1)
        await cloud.wait_for(CP, "StatusNotification", lambda c: c.payload == available)

        frame = await cloud.send(CP, f'[2, "bad-1", {body}]', "bad-1", timeout=WAIT)
        assert frame[:3] == [4, "bad-1", code], frame
        assert isinstance(frame[3], str) and frame[4] == {}, frame
        assert cp.received_calls == []
        await eventually(lambda: logged(caplog, code), timeout=WAIT)
        assert sum((await cloud_errors(api)).values()) >= 1

        await still_serving(sent)
        frame = await cloud.call(CP, "ChangeAvailability", AVAILABILITY, timeout=WAIT)
        assert frame[0] == 3 and frame[2] == {"status": "Accepted"}, frame
        assert cp.received_calls == [("ChangeAvailability", AVAILABILITY)]
        last = sent.last_status(1)
        await cloud.wait_for(CP, "StatusNotification", lambda c: c.good and c.payload == last)
        entry = await upstream_entry_when(api, CP, lambda e: e["pending"] == 0)
        assert entry["connected"] is True and entry["parked"] == 0, entry


async def test_a_command_the_edge_fails_to_relay_is_answered_without_its_internals(
    tmp_path: Path, raw_cloud: RawCloud, caplog: pytest.LogCaptureFixture
) -> None:
    """A RemoteStopTransaction whose transactionId is an integer beyond 64 bits (2**63):
    the cloud gets TypeConstraintViolation from the validation (no integer the edge
    stores is that big), or Rejected, or a CALLERROR that says nothing of the edge's
    internals (no exception text); the charger never sees it, and the link goes on."""
    caplog.set_level(logging.INFO)
    cloud = raw_cloud
    async with (
        asyncio.timeout(TEST_TIMEOUT),
        edge(tmp_path, cloud) as (app, _),
        RawCharger.connect(ocpp_url(app, CP)) as cp,
    ):
        cp.answers["ChangeAvailability"] = {"status": "Accepted"}
        sent = Sent(cp)
        await booted(sent)
        available = sent.last_status(1)
        await cloud.wait_for(CP, "StatusNotification", lambda c: c.payload == available)

        frame = await cloud.call(CP, "RemoteStopTransaction", {"transactionId": 2**63})
        if frame[0] == 4 and frame[2] == "TypeConstraintViolation":
            assert "transactionId" in frame[3], frame
        elif frame[0] == 4:
            assert frame[2] in ("InternalError", "GenericError"), frame
            assert "sqlite" not in frame[3].lower() and "int" not in frame[3].split(), frame
            await eventually(lambda: logged(caplog, "RemoteStopTransaction"), timeout=WAIT)
        else:
            assert frame[2] == {"status": "Rejected"}, frame
        assert cp.received_calls == []

        await still_serving(sent)
        frame = await cloud.call(CP, "ChangeAvailability", AVAILABILITY, timeout=WAIT)
        assert frame[0] == 3 and frame[2] == {"status": "Accepted"}, frame
