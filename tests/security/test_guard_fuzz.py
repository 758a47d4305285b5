"""Hostile input against the real server: adversarial frames at a connected charger's
session and adversarial handshakes, while other chargers are served and transactions are
started and stopped throughout.

Each test checks that every frame gets the right CALLERROR (OCPP-J 1.6 spellings) or
closes only that one connection, that a second charger is served throughout, that every
transaction the server acknowledged is in the API afterwards, and that the service still
answers. The counts each test throws and the outcomes are printed (`FUZZ-SUMMARY …`,
`pytest -s`) and reported in the README. Everything is bounded in count and in time.

The session helpers (fuzzing charger, watchdog charger, schema-driven payloads, running
hypothesis beside the event loop) are those of tests/integration/test_server_fuzz.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import itertools
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from edge.app import App
from edge.config import ChargerSettings, Config, LimitsConfig
from edge.sim.charger import RawCharger
from tests.chargepoint import ocpp_connect
from tests.conftest import TIME_SCALE, Api, api_client, make_config, ocpp_url
from tests.helpers import eventually, now_iso
from tests.integration.spec import CP_ACTIONS
from tests.integration.test_server_fuzz import (
    ANSWER_TIMEOUT,
    FUZZ_SETTINGS,
    REQUEST_SCHEMAS,
    REQUEST_VALIDATORS,
    Watchdog,
    assert_still_serving,
    check_frame_shape,
    run_property,
)

PASSWORD = "fuzz-password-0123456789"
FUZZ_SOURCE = "127.0.0.3"  # the handshake fuzzers' address; the watchdog is on 127.0.0.1
CHARGER_SOURCE = "127.0.0.2"  # the real CPAUTH charger's address
CONSTRAINT_CODES = {
    "FormationViolation",
    "OccurenceConstraintViolation",
    "PropertyConstraintViolation",
    "TypeConstraintViolation",
}
BOOT = {"chargePointVendor": "Fuzz", "chargePointModel": "Guard"}


def summary(name: str, counts: Counter[str]) -> None:
    """The numbers the README reports (printed with -s)."""
    print(f"FUZZ-SUMMARY {name} {json.dumps(dict(sorted(counts.items())))}")


# --- valid payloads, and every field of them ------------------------------------------------


def example(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """A valid value with every optional field present (arrays of one)."""
    if "$ref" in schema:
        return example(root["definitions"][schema["$ref"].rsplit("/", 1)[-1]], root)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {k: example(v, root) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [example(schema["items"], root)]
    if kind == "string":
        return "2024-05-01T12:00:00Z" if schema.get("format") == "date-time" else "x"
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return "x"


Path_ = tuple[str | int, ...]


def fields(
    value: Any, schema: dict[str, Any], root: dict[str, Any], path: Path_ = ()
) -> Iterator[tuple[Path_, Any, dict[str, Any]]]:
    """Every (path, value, schema) in `value`, below the payload itself."""
    if "$ref" in schema:
        schema = root["definitions"][schema["$ref"].rsplit("/", 1)[-1]]
    if path:
        yield path, value, schema
    if isinstance(value, dict):
        for key, item in value.items():
            yield from fields(item, schema["properties"][key], root, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from fields(item, schema["items"], root, (*path, i))


def replaced(value: Any, path: Path_, new: Any) -> Any:
    copy = json.loads(json.dumps(value))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


def removed(value: Any, path: Path_) -> Any:
    copy = json.loads(json.dumps(value))
    target = copy
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return copy


def wrong_types(value: Any) -> list[Any]:
    """Values of every other JSON type (an int is a valid number, so not offered for one)."""
    if isinstance(value, bool):
        return ["true", 1, None, [], {}]
    if isinstance(value, int):
        return ["1", 1.5, True, None, [], {}]
    if isinstance(value, float):
        return ["1.5", True, None, [], {}]
    if isinstance(value, str):
        return [1, 1.5, True, None, [], {}]
    if isinstance(value, list):
        return ["x", 1, {}, None]
    return ["x", 1, [], None]


EXAMPLES = {a: example(REQUEST_SCHEMAS[a], REQUEST_SCHEMAS[a]) for a in CP_ACTIONS}


def field_paths(action: str) -> list[tuple[Path_, Any, dict[str, Any]]]:
    schema = REQUEST_SCHEMAS[action]
    return list(fields(EXAMPLES[action], schema, schema))


# --- the target: a fuzzed charger, a watchdog, a charger running transactions ----------------


class Session:
    """A raw charger connection for adversarial frames; reconnects when the server closes it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: ClientConnection | None = None
        self.closes: Counter[int] = Counter()
        self.n = 0

    async def open(self) -> None:
        self.ws = await ocpp_connect(self.url, max_size=None)
        answers = await self.exchange(json.dumps([2, "boot", "BootNotification", BOOT]))
        assert answers is not None and answers[0][0] == 3, answers

    def uid(self) -> str:
        self.n += 1
        return f"f{self.n}"

    async def exchange(self, data: str | bytes) -> list[list[Any]] | None:
        """Send one text frame (bytes: sent as they are, UTF-8 or not) and a sentinel; the
        answers before the sentinel's. None when the server closed this connection."""
        assert self.ws is not None
        sentinel = "sentinel-" + self.uid()
        try:
            await self.ws.send(data, text=True)
            await self.ws.send(json.dumps([2, sentinel, "Heartbeat", {}]))
            answers: list[list[Any]] = []
            async with asyncio.timeout(ANSWER_TIMEOUT):
                while True:
                    frame = json.loads(await self.ws.recv())
                    if frame[1] == sentinel:
                        assert frame[0] == 3, frame
                        return answers
                    answers.append(frame)
        except ConnectionClosed:
            self.closes[self.ws.close_code or 0] += 1
            await self.open()
            return None

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


class Transactions:
    """A charger starting and stopping transactions the whole time; keeps what was acknowledged."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.started: set[int] = set()
        self.stopped: set[int] = set()
        self.failures: list[str] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        try:
            async with RawCharger.connect(self.url) as cp:
                await cp.boot()
                n = 0
                while not self._stop.is_set():
                    n += 1
                    connector = 1 + n % 2
                    started = await cp.call(
                        "StartTransaction",
                        {
                            "connectorId": connector,
                            "idTag": f"TAG{n % 7}",
                            "meterStart": n * 10,
                            "timestamp": now_iso(),
                        },
                        timeout=ANSWER_TIMEOUT,
                    )
                    tx = started["transactionId"]
                    self.started.add(tx)
                    if n % 3:  # every third stays open: active ones count too
                        await cp.call(
                            "StopTransaction",
                            {"transactionId": tx, "meterStop": n * 10 + 5, "timestamp": now_iso()},
                            timeout=ANSWER_TIMEOUT,
                        )
                        self.stopped.add(tx)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), 0.05)
        except Exception as err:  # reported by the test
            self.failures.append(f"{type(err).__name__}: {err}")

    def stop(self) -> None:
        self._stop.set()

    async def check(self, api: Api) -> None:
        """Every acknowledged start and stop is in the API."""
        listed = {t["transactionId"]: t for t in await api.get("/api/transactions?chargerId=TX")}
        assert self.started and self.started <= set(listed), self.started - set(listed)
        for tx in self.stopped:
            assert listed[tx]["active"] is False and listed[tx]["meterStop"] is not None, tx
        assert not self.failures, self.failures


@contextlib.asynccontextmanager
async def target(
    config: Config,
) -> AsyncIterator[tuple[App, Session, Watchdog, Transactions]]:
    async with App(config) as app, api_client(app.web_port) as api:
        fuzzer = Session(ocpp_url(app, "FUZZ1"))
        await fuzzer.open()
        watchdog = Watchdog(ocpp_url(app, "WATCH1"))
        transactions = Transactions(ocpp_url(app, "TX"))
        tasks = [asyncio.create_task(watchdog.run()), asyncio.create_task(transactions.run())]
        try:
            # Transactions acknowledged before the fuzzing starts.
            await _wait_for(lambda: len(transactions.started) >= 3)
            yield app, fuzzer, watchdog, transactions
            await assert_still_serving(api)
        finally:
            watchdog.stop()
            transactions.stop()
            await asyncio.wait_for(asyncio.gather(*tasks), ANSWER_TIMEOUT * 2)
            await fuzzer.close()
        assert not watchdog.failures, watchdog.failures
        assert watchdog.answered > 0
        await transactions.check(api)


async def _wait_for(probe: Callable[[], bool]) -> None:
    await eventually(probe, timeout=10 * TIME_SCALE)


def fuzz_config(tmp_path: Path, **limits: Any) -> Config:
    config = make_config(tmp_path / "data")
    if limits:
        ocpp = dataclasses.replace(
            config.ocpp, limits=dataclasses.replace(LimitsConfig(), **limits)
        )
        config = dataclasses.replace(config, ocpp=ocpp)
    return dataclasses.replace(
        config, chargers={"CPAUTH": ChargerSettings(password=PASSWORD, security_profile=1)}
    )


def one_error(answers: list[list[Any]] | None, unique_id: str, codes: set[str]) -> str:
    """The code of the one CALLERROR answering `unique_id`, checked to be one of `codes`."""
    assert answers is not None and len(answers) == 1, answers
    frame = answers[0]
    check_frame_shape(frame)
    assert frame[0] == 4 and frame[1] == unique_id and frame[2] in codes, frame
    return str(frame[2])


# --- session: adversarial frames ------------------------------------------------------------

DEPTH = 10_000


async def test_adversarial_frames_at_a_session(tmp_path: Path) -> None:
    """Deep JSON, huge numbers, invalid UTF-8, lone surrogates, wrong types and missing
    fields in every field of every charger action, and 1,000 CALLs in a burst."""
    counts: Counter[str] = Counter()
    async with target(fuzz_config(tmp_path)) as (app, fuzzer, _watchdog, transactions):
        # Deep JSON: beyond any parser's nesting limit; the frame is refused as a whole.
        for text in (
            "[" * DEPTH + "]" * DEPTH,
            '[2,"deep1","Heartbeat",' + "[" * DEPTH + "]" * DEPTH + "]",
            '[2,"deep2","DataTransfer",{"vendorId":"v","data":'
            + '{"a":' * DEPTH
            + "1"
            + "}" * DEPTH
            + "}]",
            '[2,"deep3","DataTransfer",{"vendorId":"v","data":"' + "[" * DEPTH + '"}]',
        ):
            answers = await fuzzer.exchange(text)
            assert answers is not None and len(answers) == 1, answers
            check_frame_shape(answers[0])
            code = answers[0][2] if answers[0][0] == 4 else "CALLRESULT"
            counts[f"deep:{code}"] += 1
        # (the last is a string of brackets: valid, and DataTransfer answers it)
        assert counts["deep:FormationViolation"] == 3

        # Huge numbers in every numeric field: not representable, the frame is refused.
        for action in CP_ACTIONS:
            for path, value, _schema in field_paths(action):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                for literal in ("1e400", "-1e400", str(2**4096), str(-(2**4096))):
                    uid = fuzzer.uid()
                    text = json.dumps([2, uid, action, replaced(EXAMPLES[action], path, "@N@")])
                    answers = await fuzzer.exchange(text.replace('"@N@"', literal))
                    # Not valid JSON for any 64-bit parser: no id can be trusted (J §4.2.3).
                    one_error(answers, "-1", {"FormationViolation"})
                    counts["huge-number:FormationViolation"] += 1
                # Decodable but beyond 64 bits (what the journal stores): refused under the
                # CALL's id. Within: answered (a CALLRESULT, or a CALLERROR for the value,
                # never an InternalError).
                for big in (2**63, 2**64 - 1, 2**63 - 1, -(2**63), 1e308, -1e308):
                    uid = fuzzer.uid()
                    payload = replaced(EXAMPLES[action], path, big)
                    answers = await fuzzer.exchange(json.dumps([2, uid, action, payload]))
                    assert answers is not None and len(answers) == 1, answers
                    frame = answers[0]
                    check_frame_shape(frame)
                    assert frame[1] == uid
                    if isinstance(big, int) and big >= 2**63:
                        assert frame[0] == 4 and frame[2] == "TypeConstraintViolation", frame
                    elif frame[0] == 3:
                        assert REQUEST_VALIDATORS[action].is_valid(payload), (action, payload)
                    else:
                        assert frame[2] in CONSTRAINT_CODES, (action, payload, frame)
                    counts[f"big-number:{frame[2] if frame[0] == 4 else 'CALLRESULT'}"] += 1

        # Invalid UTF-8 in a text frame: the server closes that connection with 1007. Each
        # time right after a StartTransaction it acknowledged: that one must not be lost.
        own: list[int] = []
        for raw in (
            b'[2,"u1","Heartbeat",{"a":"\xff"}]',
            b'[2,"u2","Authorize",{"idTag":"\xc0\xaf"}]',  # overlong
            b'[2,"u3","Authorize",{"idTag":"\xed\xa0\x80"}]',  # a surrogate, UTF-8 encoded
            b'[2,"u4","Heartbeat",{}]\xe2\x82',  # truncated sequence
            b"\xfe\xff\x00[\x002",
        ):
            start = {"connectorId": 1, "idTag": "FZ", "meterStart": 7, "timestamp": now_iso()}
            answers = await fuzzer.exchange(
                json.dumps([2, fuzzer.uid(), "StartTransaction", start])
            )
            assert answers is not None and answers[0][0] == 3, answers
            own.append(answers[0][2]["transactionId"])
            assert await fuzzer.exchange(raw) is None
            counts["invalid-utf8:closed"] += 1
        assert fuzzer.closes[1007] == 5, fuzzer.closes

        # Lone surrogates (JSON escapes, valid UTF-8 on the wire): in the id, the action,
        # a key, and every string field of every action.
        for text in (
            '[2,"\\ud800","Heartbeat",{}]',
            '[2,"s1","\\udfff",{}]',
            '[2,"s2","DataTransfer",{"vendorId":"v","\\ud800":1}]',
        ):
            one_error(await fuzzer.exchange(text), "-1", {"FormationViolation"})
            counts["lone-surrogate:FormationViolation"] += 1
        for action in CP_ACTIONS:
            for path, value, _schema in field_paths(action):
                if not isinstance(value, str):
                    continue
                uid = fuzzer.uid()
                text = json.dumps([2, uid, action, replaced(EXAMPLES[action], path, "@S@")])
                answers = await fuzzer.exchange(text.replace('"@S@"', '"a\\udc80b"'))
                one_error(answers, "-1", {"FormationViolation"})
                counts["lone-surrogate:FormationViolation"] += 1

        # Wrong types in every field (nested ones included) of every action.
        for action in CP_ACTIONS:
            uid = fuzzer.uid()
            answers = await fuzzer.exchange(json.dumps([2, uid, action, EXAMPLES[action]]))
            assert answers is not None and answers[0][1] == uid, answers
            for path, value, _schema in field_paths(action):
                for wrong in wrong_types(value):
                    uid = fuzzer.uid()
                    payload = replaced(EXAMPLES[action], path, wrong)
                    answers = await fuzzer.exchange(json.dumps([2, uid, action, payload]))
                    code = one_error(answers, uid, {"TypeConstraintViolation"})
                    counts[f"wrong-type:{code}"] += 1

        # Every required field missing, one at a time.
        for action in CP_ACTIONS:
            schema = REQUEST_SCHEMAS[action]
            for path, value, node in [((), EXAMPLES[action], schema), *field_paths(action)]:
                if not isinstance(value, dict):
                    continue
                for key in node.get("required", []):
                    uid = fuzzer.uid()
                    payload = removed(EXAMPLES[action], (*path, key))
                    answers = await fuzzer.exchange(json.dumps([2, uid, action, payload]))
                    code = one_error(answers, uid, {"OccurenceConstraintViolation"})
                    counts[f"missing-field:{code}"] += 1

        # 1,000 CALLs in a burst, every tenth invalid: 1,000 answers, in order.
        before = len(transactions.started)
        counts.update(await burst(fuzzer, 1000))
        await _wait_for(lambda: len(transactions.started) > before + 2)  # and go on

        async with api_client(app.web_port) as api:
            listed = await api.get("/api/transactions?chargerId=FUZZ1")
        assert set(own) <= {t["transactionId"] for t in listed}, (own, listed)
        counts["transactions-acknowledged"] = len(transactions.started) + len(own)
    summary("session", counts)


async def burst(fuzzer: Session, count: int) -> Counter[str]:
    """Send `count` CALLs without waiting; check every answer, in order."""
    assert fuzzer.ws is not None
    ws = fuzzer.ws
    frames = []
    for n in range(count):
        uid = f"b{n}"
        if n % 10 == 9:
            status = {"connectorId": "one", "errorCode": "NoError", "status": "Available"}
            frames.append([2, uid, "StatusNotification", status])
        elif n % 3 == 0:
            frames.append([2, uid, "Heartbeat", {}])
        elif n % 3 == 1:
            frames.append([2, uid, "DataTransfer", {"vendorId": "fuzz", "data": "x" * 100}])
        else:
            status = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
            frames.append([2, uid, "StatusNotification", status])
    answers: list[list[Any]] = []

    async def read() -> None:
        while len(answers) < count:
            answers.append(json.loads(await ws.recv()))

    reader = asyncio.create_task(read())
    for frame in frames:
        await ws.send(json.dumps(frame))
    await asyncio.wait_for(reader, 60 * TIME_SCALE)
    outcome: Counter[str] = Counter()
    for sent, answer in zip(frames, answers, strict=True):
        assert answer[1] == sent[1], (sent, answer)
        if sent[1].endswith("9"):
            assert answer[0] == 4 and answer[2] == "TypeConstraintViolation", answer
            outcome["burst:TypeConstraintViolation"] += 1
        else:
            assert answer[0] == 3, answer
            outcome["burst:CALLRESULT"] += 1
    return outcome


# Random bytes as text frames: UTF-8 ones get at most one well-formed answer, the others
# close that connection with 1007 (and the charger reconnects).
BYTES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=100).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.builds(
        lambda head, junk, tail: head + junk + tail,
        st.sampled_from([b'[2,"r","Heartbeat",{"a":"', b'[2,"r","Authorize",{"idTag":"', b"["]),
        st.binary(min_size=1, max_size=20),
        st.sampled_from([b'"}]', b"]", b""]),
    ),
)


async def test_random_bytes_as_text_frames(tmp_path: Path) -> None:
    counts: Counter[str] = Counter()
    async with target(fuzz_config(tmp_path)) as (_app, fuzzer, _watchdog, _transactions):

        @FUZZ_SETTINGS
        @given(data=BYTES)
        def check(run: Callable[[Coroutine[Any, Any, Any]], Any], data: bytes) -> None:
            answers = run(fuzzer.exchange(data))
            counts["frames"] += 1
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                assert answers is None  # closed with 1007
                counts["closed-1007"] += 1
                return
            assert answers is not None and len(answers) <= 1, answers
            for frame in answers:
                check_frame_shape(frame)
                counts[f"answered:{frame[2] if frame[0] == 4 else 'CALLRESULT'}"] += 1
            if not answers:
                counts["ignored"] += 1

        await run_property(lambda run: check(run))
        assert set(fuzzer.closes) <= {1007}, fuzzer.closes
    summary("random-bytes", counts)


# --- handshakes -----------------------------------------------------------------------------


async def raw_exchange(port: int, data: bytes, *, source: str = FUZZ_SOURCE) -> bytes:
    """Send `data` and read what the server answers until it closes. A request that is
    not complete is half-closed after it (else it would wait out handshake_timeout); a
    complete one is not: websockets drops a connection at the end of its stream unanswered."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(source, 0), limit=2**20
    )
    try:
        writer.write(data)
        await writer.drain()
        if not data.endswith(b"\r\n\r\n"):
            with contextlib.suppress(OSError):
                writer.write_eof()
        answer = b""
        async with asyncio.timeout(ANSWER_TIMEOUT):
            while chunk := await reader.read(65536):
                answer += chunk
                if answer.startswith(b"HTTP/1.1 101 ") and b"\r\n\r\n" in answer:
                    break  # a WebSocket now, open until the client closes it
        return answer
    except (ConnectionResetError, BrokenPipeError):
        return b""
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def status_of(answer: bytes) -> int | None:
    """The HTTP status of a response, None when the server closed without one."""
    if not answer:
        return None
    line = answer.split(b"\r\n", 1)[0].split()
    assert line[0] == b"HTTP/1.1", answer[:200]
    return int(line[1])


def valid_request(path: bytes = b"/ocpp/CPX", extra: bytes = b"") -> bytes:
    return (
        b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n" + extra + b"\r\n"
    )


GARBAGE_HTTP = st.one_of(
    st.binary(max_size=600),
    st.builds(
        lambda method, path, headers: method + b" " + path + b" HTTP/1.1\r\n" + headers + b"\r\n",
        st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"G\x00T", b"CONNECT"]),
        st.binary(min_size=1, max_size=80).filter(lambda p: b" " not in p and b"\r" not in p),
        st.lists(
            st.builds(
                lambda n, v: n + b": " + v + b"\r\n",
                st.sampled_from(
                    [b"Host", b"Upgrade", b"Connection", b"Sec-WebSocket-Key", b"X-\xff"]
                ),
                st.binary(max_size=60).filter(lambda v: b"\r" not in v and b"\n" not in v),
            ),
            max_size=6,
        ).map(b"".join),
    ),
    # A valid upgrade cut anywhere: the server sees the end of the stream in the middle.
    st.integers(0, len(valid_request())).map(lambda n: valid_request()[:n]),
)


async def test_garbage_http_at_the_handshake(tmp_path: Path) -> None:
    counts: Counter[str] = Counter()
    # A generous bucket: this test is about the parser, the rate limit has its own tests.
    # A short handshake_timeout: a request announcing a body it never sends waits it out.
    config = fuzz_config(
        tmp_path,
        handshake_burst=100_000,
        handshake_rate=10_000.0,
        handshake_timeout=1.0 * TIME_SCALE,
    )
    async with target(config) as (app, _fuzzer, _watchdog, _transactions):

        @FUZZ_SETTINGS
        @given(data=GARBAGE_HTTP)
        def check(run: Callable[[Coroutine[Any, Any, Any]], Any], data: bytes) -> None:
            answer = run(raw_exchange(app.ocpp_port, data))
            status = status_of(answer)
            counts["requests"] += 1
            counts[f"status:{status}"] += 1
            # A refusal or a plain close; a 101 only for a complete valid upgrade. 505 is
            # websockets' answer to a request line of another HTTP version; a 500 would
            # be a failure of ours.
            assert status is None or 400 <= status < 500 or status in (101, 505), answer[:300]
            if status == 101:
                assert data.startswith(b"GET ") and data.endswith(b"\r\n\r\n"), data

        await run_property(lambda run: check(run))

        # Huge headers: one line beyond the limit, too many headers, a huge header block.
        for name, data in (
            ("long-line", valid_request(extra=b"X-Big: " + b"a" * 100_000 + b"\r\n")),
            ("many-headers", valid_request(extra=b"".join(b"X-%d: 1\r\n" % i for i in range(500)))),
            ("long-path", valid_request(path=b"/ocpp/" + b"C" * 100_000)),
            ("long-identity", valid_request(path=b"/ocpp/" + b"C" * 200)),
            ("huge-body", valid_request(extra=b"Content-Length: 99999999999\r\n")),
        ):
            status = status_of(await raw_exchange(app.ocpp_port, data))
            assert status is None or 400 <= status < 500, (name, status)
            counts[f"{name}:{status}"] += 1
    summary("garbage-http", counts)


def basic_header(user: bytes, password: bytes) -> str:
    return "Basic " + base64.b64encode(user + b":" + password).decode()


BAD_AUTHORIZATION = st.one_of(
    st.text(max_size=120).map(lambda t: "Basic " + t),
    st.binary(max_size=90).map(lambda b: "Basic " + base64.b64encode(b).decode()),
    st.builds(
        basic_header,
        st.sampled_from([b"CPAUTH", b"cpauth", b"", b"CPAUTH\x00"]),
        st.binary(max_size=40),
    ),
    st.sampled_from(
        [
            "Basic",
            "Basic ",
            "Basic ====",
            "Basic " + "A" * 10_000,
            "Bearer " + PASSWORD,
            "basic " + base64.b64encode(b"CPAUTH:" + PASSWORD.encode() + b"x").decode(),
            "Basic " + base64.b64encode(b"CPAUTH:" + PASSWORD.encode()[:-1]).decode(),
            "Digest username=CPAUTH",
        ]
    ),
).filter(lambda h: h.isascii() and h.isprintable() and len(h) < 8000)


async def test_bad_basic_headers_and_lockout(tmp_path: Path) -> None:
    """Bad Authorization headers are refused with 401 (each from its own address, so that
    every one reaches the credential check); then one address trying again and again is
    locked out (429); the real charger at its own address keeps connecting throughout."""
    counts: Counter[str] = Counter()
    async with target(fuzz_config(tmp_path)) as (app, _fuzzer, _watchdog, _transactions):
        url = ocpp_url(app, "CPAUTH")
        sources = (f"127.0.1.{n}" for n in itertools.cycle(range(1, 255)))

        @FUZZ_SETTINGS
        @given(header=BAD_AUTHORIZATION)
        def check(run: Callable[[Coroutine[Any, Any, Any]], Any], header: str) -> None:
            status = run(handshake_status(url, {"Authorization": header}, next(sources)))
            counts["attempts"] += 1
            counts[f"status:{status}"] += 1
            assert status in (400, 401), (header, status)

        await run_property(lambda run: check(run))
        await charger_connects(url)
        wrong = {"Authorization": basic_header(b"CPAUTH", b"not-the-password")}
        statuses = [await handshake_status(url, wrong) for _ in range(20)]
        counts.update(f"one-address:{s}" for s in statuses)
        assert statuses[:5] == [401] * 5 and statuses[6:] == [429] * 14, statuses
        # The charger itself, from its own address, is not locked out by the stranger.
        await charger_connects(url)
    summary("bad-basic", counts)


async def charger_connects(url: str) -> None:
    ws = await connect(
        url,
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers={"Authorization": basic_header(b"CPAUTH", PASSWORD.encode())},
        proxy=None,
        local_addr=(CHARGER_SOURCE, 0),
    )
    await ws.send(json.dumps([2, "b", "BootNotification", BOOT]))
    assert json.loads(await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT))[0] == 3
    await ws.close()


async def handshake_status(url: str, headers: dict[str, str], source: str = FUZZ_SOURCE) -> int:
    try:
        ws = await connect(
            url,
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            additional_headers=headers,
            proxy=None,
            open_timeout=ANSWER_TIMEOUT,
            local_addr=(source, 0),
        )
    except InvalidStatus as err:
        assert PASSWORD.encode() not in err.response.body
        return err.response.status_code
    await ws.close()
    return 101


async def test_many_half_open_handshakes(tmp_path: Path) -> None:
    """Hundreds of connections that never finish their request: the others are served
    meanwhile, and each half-open one is closed by the server after handshake_timeout."""
    counts: Counter[str] = Counter()
    half_open = 300
    config = fuzz_config(tmp_path, handshake_timeout=2.0 * TIME_SCALE)
    async with target(config) as (app, fuzzer, watchdog, _transactions):
        streams = []
        for n in range(half_open):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", app.ocpp_port, local_addr=(FUZZ_SOURCE, 0)
            )
            # Part of a request line, or nothing at all.
            writer.write(valid_request(b"/ocpp/HALF%d" % n)[: n % 40])
            streams.append((reader, writer))
        counts["half-open"] = half_open
        # Meanwhile: charger sessions work, and a new charger connects and boots.
        answered = watchdog.answered
        assert (await fuzzer.exchange(json.dumps([2, "h1", "Heartbeat", {}])))[0][0] == 3
        async with RawCharger.connect(ocpp_url(app, "NEWCOMER")) as cp:
            assert (await cp.boot())["status"] == "Accepted"
        await _wait_for(lambda: watchdog.answered > answered)

        async def closed_by_server(reader: asyncio.StreamReader) -> bool:
            try:
                async with asyncio.timeout(30 * TIME_SCALE):
                    while await reader.read(65536):
                        pass
            except ConnectionResetError:
                return True  # aborted: closed too
            return reader.at_eof()

        results = await asyncio.gather(*(closed_by_server(r) for r, _ in streams))
        counts["closed-by-server"] = sum(results)
        assert all(results)
        for _, writer in streams:
            writer.close()
    summary("half-open", counts)
