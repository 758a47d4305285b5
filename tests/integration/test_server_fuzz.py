"""Property tests against the running server: whatever a charger sends, the server survives.

One App serves a whole test; hypothesis runs in a worker thread and hands each
example to the event loop, so examples share the server instead of starting one
each. Per example the fuzzing charger sends one frame and then a sentinel
Heartbeat; everything it reads before the sentinel's answer answers the fuzz
frame (the server serves a connection's frames in order). Meanwhile a second
charger keeps sending Heartbeats and must get every answer.

Payloads are generated from the `ocpp` package's copy of the 1.6 schemas and
answers are checked against them with `jsonschema`, so the server's own
validation code is not used to judge the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import jsonschema
import ocpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from edge.app import App
from tests.chargepoint import ocpp_connect
from tests.conftest import TIME_SCALE, Api, api_client, make_config, ocpp_url
from tests.integration.spec import CP_ACTIONS, ERROR_CODES

MAX_EXAMPLES = 150
MAX_MESSAGE = 16 * 1024
ANSWER_TIMEOUT = 5 * TIME_SCALE
TEST_BUDGET = 240 * TIME_SCALE  # whole test, shrinking included
SCHEMAS = Path(os.path.dirname(ocpp.__file__)) / "v16" / "schemas"

CSMS_ACTIONS = ("Reset", "GetConfiguration", "RemoteStartTransaction", "TriggerMessage")
# Transaction and core messages the CSMS must always answer with a CALLRESULT when they
# are schema-valid (OCPP 1.6 §3.7.1, §4.7-4.10: sanity checks never refuse them).
ALWAYS_ANSWERED = frozenset(
    {
        "Authorize",
        "BootNotification",
        "Heartbeat",
        "MeterValues",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
    }
)

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    database=None,
)


# --- strategies ---------------------------------------------------------------------------

# No lone surrogates: a text frame must be valid UTF-8 (the client could not even send them).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
INT64 = st.integers(-(2**63), 2**63 - 1)
JSON_SCALARS = (
    st.none() | st.booleans() | INT64 | st.floats(allow_nan=False, allow_infinity=False) | TEXT
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
TIMESTAMPS = st.sampled_from(
    [
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00.123Z",
        "2024-05-01T14:00:00+02:00",
        "2024-05-01T12:00:00.123456789Z",
        "2024-02-29T23:59:59.999-08:00",
    ]
)


def _load(action: str, response: bool = False) -> dict[str, Any]:
    name = f"{action}Response.json" if response else f"{action}.json"
    schema: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    return schema


# RFC 3339 date-time (what OCPP 1.6 §3.14 asks for); the `ocpp` package checks no formats.
RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time")
def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or RFC3339.fullmatch(value) is not None


def _validator(schema: dict[str, Any]) -> Any:
    return jsonschema.validators.validator_for(schema)(schema, format_checker=FORMATS)


REQUEST_SCHEMAS = {a: _load(a) for a in CP_ACTIONS}
RESPONSE_VALIDATORS = {a: _validator(_load(a, True)) for a in CP_ACTIONS}
REQUEST_VALIDATORS = {a: _validator(s) for a, s in REQUEST_SCHEMAS.items()}


def from_schema(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for a (draft-04/06 subset) OCPP schema."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return from_schema(root["definitions"][name], root)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v, root) for k, v in props.items() if k in required},
            optional={k: from_schema(v, root) for k, v in props.items() if k not in required},
        )
    if kind == "array":
        return st.lists(
            from_schema(schema["items"], root),
            min_size=schema.get("minItems", 0),
            max_size=max(schema.get("minItems", 0), 3),
        )
    if kind == "string":
        if schema.get("format") == "date-time":
            return TIMESTAMPS
        return st.text(
            st.characters(exclude_categories=["Cs"]), max_size=schema.get("maxLength", 60)
        )
    if kind == "integer":
        return st.integers(-5, 10**7) | st.sampled_from([0, -1, 2**31 - 1, 2**53])
    if kind == "number":
        return st.decimals(-1000, 1000, places=1).map(float)
    if kind == "boolean":
        return st.booleans()
    return JSON_VALUES


def mutated(payload: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """A valid payload with one field dropped, replaced or added, or something else entirely."""

    @st.composite
    def mutate(draw: st.DrawFn) -> Any:
        value = dict(draw(payload))
        how = draw(st.sampled_from(["drop", "replace", "string", "add", "nest", "whole"]))
        keys = sorted(value)
        if how == "drop" and keys:
            del value[draw(st.sampled_from(keys))]
        elif how == "replace" and keys:
            value[draw(st.sampled_from(keys))] = draw(JSON_VALUES)
        elif how == "string" and keys:
            # Same type, likely a value outside an enumeration or a length limit.
            value[draw(st.sampled_from(keys))] = draw(TEXT | st.text(min_size=21, max_size=600))
        elif how == "nest" and keys:
            key = draw(st.sampled_from(keys))
            value[key] = [value[key]] if draw(st.booleans()) else {"x": value[key]}
        elif how == "whole":
            return draw(JSON_VALUES)
        else:
            value[draw(TEXT)] = draw(JSON_VALUES)
        return value

    return mutate()


ACTION_CALLS = st.sampled_from(CP_ACTIONS).flatmap(
    lambda action: st.tuples(
        st.just(action),
        st.one_of(
            from_schema(REQUEST_SCHEMAS[action], REQUEST_SCHEMAS[action]),
            mutated(from_schema(REQUEST_SCHEMAS[action], REQUEST_SCHEMAS[action])),
        ),
    )
)

UNIQUE_IDS = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=36)
TYPE_IDS = st.sampled_from([2, 2, 2, 3, 4]) | INT64 | JSON_VALUES
ACTION_NAMES = st.sampled_from(CP_ACTIONS + CSMS_ACTIONS) | TEXT | JSON_VALUES
JSON_FRAMES = st.one_of(
    JSON_VALUES,
    st.lists(JSON_VALUES, max_size=6),
    st.builds(
        lambda t, i, a, p, tail: [t, i, a, p, *tail],
        TYPE_IDS,
        UNIQUE_IDS | JSON_VALUES | st.text(min_size=37, max_size=60),
        ACTION_NAMES,
        JSON_VALUES,
        st.lists(JSON_VALUES, max_size=2),
    ).flatmap(lambda f: st.integers(1, len(f)).map(lambda n: f[:n])),
)
OVERSIZE = st.integers(MAX_MESSAGE + 1, MAX_MESSAGE * 2).map(
    lambda n: json.dumps([2, "big", "DataTransfer", {"vendorId": "v", "data": "z" * n}])
)
TEXT_FRAMES = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=200),
    JSON_FRAMES.map(json.dumps),
    # JSON-ish fragments: truncated frames, big numbers, NaN, duplicate keys.
    JSON_FRAMES.map(json.dumps).flatmap(lambda s: st.integers(0, len(s)).map(lambda n: s[:n])),
    st.sampled_from(
        [
            '[2, "n1", "Heartbeat", {"a": NaN}]',
            '[2, "n2", "Heartbeat", {}] ',
            '[2, "n3", "Heartbeat", {"a": 1, "a": 2}]',
            '[2, "n4", "Authorize", {"idTag": "x", "idTag": "y"}]',
            '[2, "n5", "Heartbeat", {}, ]',
            '[2, "n6", "Heartbeat", {"a": 1e99999}]',
            '[2, "n7", "Heartbeat", {"a": 123456789012345678901234567890}]',
            "[1e400]",
            '\ufeff[2, "n8", "Heartbeat", {}]',
            '[2, "n9", "Heartbeat", {}]\x00',
            "[" * 5000 + "]" * 5000,
            '[2, "n10", "Heartbeat", ' + '{"a":' * 3000 + "1" + "}" * 3000 + "]",
        ]
    ),
    OVERSIZE,
)


# --- the checks ---------------------------------------------------------------------------


def check_frame_shape(frame: Any) -> None:
    """A well-formed CALLRESULT or CALLERROR (OCPP-J §4.2.2, §4.2.3, errata 3.9)."""
    assert isinstance(frame, list), frame
    assert frame and frame[0] in (3, 4), frame
    assert isinstance(frame[1], str) and len(frame[1]) > 0, frame
    if frame[0] == 3:
        assert len(frame) == 3 and isinstance(frame[2], dict), frame
    else:
        assert len(frame) == 5, frame
        assert frame[2] in ERROR_CODES, frame
        assert isinstance(frame[3], str) and len(frame[3]) <= 255, frame
        assert "Traceback" not in frame[3] and ".py" not in frame[3], frame
        assert frame[4] == {}, frame


def expected_answer_id(sent: Any) -> str | None:
    """For a structured frame: the id of its one answer, or None when none is due."""
    if not isinstance(sent, list) or not sent:
        return "-1"
    type_id = sent[0]
    if type(type_id) is not int:
        return "-1"
    if type_id in (3, 4) or type_id not in (2, 3, 4):
        return None
    unique_id = sent[1] if len(sent) > 1 else None
    return unique_id if isinstance(unique_id, str) and unique_id else "-1"


class FuzzCharger:
    """A raw client that sends one frame and collects its answers up to a sentinel."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: ClientConnection | None = None
        self.reconnects = 0

    async def open(self) -> None:
        self.ws = await ocpp_connect(self.url, max_size=None)
        answers = await self.exchange(
            json.dumps(
                [2, "boot", "BootNotification", {"chargePointVendor": "F", "chargePointModel": "Z"}]
            )
        )
        assert answers is not None and answers[0][0] == 3, answers

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def exchange(self, text: str) -> list[list[Any]] | None:
        """Send `text` then a sentinel; the answers read before the sentinel's.

        None when the server closed the connection with 1009 (message too big).
        """
        assert self.ws is not None
        sentinel = "s-" + uuid.uuid4().hex[:20]
        try:
            await self.ws.send(text)
            await self.ws.send(json.dumps([2, sentinel, "Heartbeat", {}]))
            answers: list[list[Any]] = []
            async with asyncio.timeout(ANSWER_TIMEOUT):
                while True:
                    frame = json.loads(await self.ws.recv())
                    if isinstance(frame, list) and len(frame) > 1 and frame[1] == sentinel:
                        assert frame[0] == 3 and set(frame[2]) == {"currentTime"}, frame
                        return answers
                    answers.append(frame)
        except ConnectionClosed:
            code = self.ws.close_code
            assert len(text.encode()) > MAX_MESSAGE, f"closed ({code}) after {text[:200]!r}"
            assert code == 1009, code
            self.reconnects += 1
            await self.open()
            return None


class Watchdog:
    """A second charger sending Heartbeats the whole time; every one must be answered."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answered = 0
        self.failures: list[str] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        try:
            async with ocpp_connect(self.url) as ws:
                await ws.send(
                    json.dumps(
                        [
                            2,
                            "b",
                            "BootNotification",
                            {"chargePointVendor": "W", "chargePointModel": "D"},
                        ]
                    )
                )
                await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT)
                n = 0
                while not self._stop.is_set():
                    n += 1
                    await ws.send(json.dumps([2, f"hb{n}", "Heartbeat", {}]))
                    frame = json.loads(await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT))
                    if frame[:2] != [3, f"hb{n}"]:
                        self.failures.append(repr(frame))
                        return
                    self.answered += 1
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), 0.02)
        except Exception as err:  # reported by the test, not lost in a task
            self.failures.append(f"{type(err).__name__}: {err}")

    def stop(self) -> None:
        self._stop.set()


@contextlib.asynccontextmanager
async def fuzz_target(tmp_path: Path) -> AsyncIterator[tuple[App, FuzzCharger, Watchdog]]:
    """One App, the fuzzing charger and the watchdog charger, for a whole test."""
    config = make_config(tmp_path / "data", max_message_size=MAX_MESSAGE)
    async with App(config) as app:
        fuzzer = FuzzCharger(ocpp_url(app, "FUZZ1"))
        await fuzzer.open()
        watchdog = Watchdog(ocpp_url(app, "WATCH1"))
        task = asyncio.create_task(watchdog.run())
        try:
            yield app, fuzzer, watchdog
            async with api_client(app.web_port) as api:
                await assert_still_serving(api)
        finally:
            watchdog.stop()
            await asyncio.wait_for(task, ANSWER_TIMEOUT * 2)
            await fuzzer.close()
        assert not watchdog.failures, watchdog.failures
        assert watchdog.answered > 0


async def assert_still_serving(api: Api) -> None:
    """After the fuzzing: the service answers its health check, and the fuzzed charger
    and the watchdog are still connected."""
    assert await api.get("/api/health") == {"status": "ok"}
    chargers = {c["id"]: c for c in await api.get("/api/chargers")}
    assert chargers["WATCH1"]["connected"] is True
    assert chargers["FUZZ1"]["connected"] is True


async def run_property(
    test: Callable[[Callable[[Coroutine[Any, Any, Any]], Any]], None],
) -> None:
    """Run a hypothesis test in a worker thread; it runs its coroutines on this loop."""
    loop = asyncio.get_running_loop()
    give_up = threading.Event()
    deadline = time.monotonic() + TEST_BUDGET

    def on_loop(coroutine: Coroutine[Any, Any, Any]) -> Any:
        if give_up.is_set() or time.monotonic() > deadline:
            coroutine.close()
            raise AssertionError("fuzz test ran out of time")
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        try:
            return future.result(ANSWER_TIMEOUT * 3)
        except TimeoutError:
            future.cancel()
            raise AssertionError("no outcome in time") from None

    try:
        await asyncio.wait_for(asyncio.to_thread(test, on_loop), TEST_BUDGET + 30)
    finally:
        give_up.set()


# --- the properties -------------------------------------------------------------------------


async def test_random_text_frames(tmp_path: Path) -> None:
    """Random text frames get at most one well-formed answer each; the server stays up."""
    async with fuzz_target(tmp_path) as (_, fuzzer, _watchdog):

        @FUZZ_SETTINGS
        @given(text=TEXT_FRAMES)
        def check(run: Callable[[Coroutine[Any, Any, Any]], Any], text: str) -> None:
            answers = run(fuzzer.exchange(text))
            if answers is None:
                return  # oversize: closed with 1009 and reconnected
            assert len(answers) <= 1, answers
            for frame in answers:
                check_frame_shape(frame)

        await run_property(lambda run: check(run))


async def test_random_json_arrays(tmp_path: Path) -> None:
    """Random JSON frames get one answer per CALL-like frame and nothing for the rest."""
    async with fuzz_target(tmp_path) as (_, fuzzer, _watchdog):

        @FUZZ_SETTINGS
        @given(frame=JSON_FRAMES)
        def check(run: Callable[[Coroutine[Any, Any, Any]], Any], frame: Any) -> None:
            text = json.dumps(frame)
            answers = run(fuzzer.exchange(text))
            assert answers is not None
            expected = expected_answer_id(frame)
            if expected is None:
                assert answers == [], (frame, answers)
                return
            assert len(answers) == 1, (frame, answers)
            check_frame_shape(answers[0])
            assert answers[0][1] == expected, (frame, answers)
            if answers[0][0] == 3:
                # Only a well-formed CALL of a known action can succeed.
                assert len(frame) == 4 and isinstance(frame[3], dict), (frame, answers)
                assert frame[2] in CP_ACTIONS, (frame, answers)

        await run_property(lambda run: check(run))


async def test_random_payloads_for_real_actions(tmp_path: Path) -> None:
    """Payloads for real actions get one well-formed answer; valid core ones a CALLRESULT."""
    async with fuzz_target(tmp_path) as (_, fuzzer, _watchdog):

        @FUZZ_SETTINGS
        @given(call=ACTION_CALLS, unique_id=UNIQUE_IDS)
        def check(
            run: Callable[[Coroutine[Any, Any, Any]], Any],
            call: tuple[str, Any],
            unique_id: str,
        ) -> None:
            action, payload = call
            if unique_id.startswith("s-"):
                unique_id = "x" + unique_id[1:]
            answers = run(fuzzer.exchange(json.dumps([2, unique_id, action, payload])))
            assert answers is not None
            assert len(answers) == 1, answers
            frame = answers[0]
            check_frame_shape(frame)
            assert frame[1] == unique_id
            valid = REQUEST_VALIDATORS[action].is_valid(payload)
            if frame[0] == 3:
                assert valid, f"invalid {action} accepted: {payload!r}"
                errors = list(RESPONSE_VALIDATORS[action].iter_errors(frame[2]))
                assert not errors, (action, frame[2], [e.message for e in errors])
            elif valid and action in ALWAYS_ANSWERED:
                raise AssertionError(f"valid {action} refused with {frame[2:4]}: {payload!r}")

        await run_property(lambda run: check(run))
