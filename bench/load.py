"""Load generator: simulated OCPP 1.6J chargers on raw websockets + orjson.

Deliberately not the `ocpp` package: the client must stay cheaper than the server
under test. Each charger is one coroutine that sends a CALL and reads frames until
its answer arrives (a CALL from the server is answered with an empty CALLRESULT).

A worker process (`worker_main`) simulates a slice of the chargers and is driven
by the orchestrator (bench/run.py) over a multiprocessing pipe:

    worker -> ("ready", info)           all chargers connected and booted
    run    -> ("go", t_start, w0, w1)   send the session mix until w1 (monotonic clock)
    run    -> ("hold",)                 stay connected and idle until ("stop",)
    run    -> ("reconnect", t_go, t_deadline)   reconnect storm: connect + boot again
    worker -> ("done", stats)           per-action latencies/counts for answers in [w0, w1]

Session cycle of one charger (one message per step):
StatusNotification(Preparing), Authorize, StartTransaction, StatusNotification(Charging),
MeterValues x M, StopTransaction, StatusNotification(Available), Heartbeat.
Open loop: one step every 1/rate s (so MeterValues every 1/rate s while charging);
closed loop: the next step as soon as the previous answer arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import resource
import time
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

from bench.stats import ACTIONS, Stats, percentile

__all__ = [
    "LoadSpec",
    "charger_id",
    "id_tag",
    "raise_nofile_limit",
    "session_cycle",
    "worker_main",
]

LATE_SEND = 0.1  # s: an open-loop send this much behind schedule counts as late


def charger_id(index: int) -> str:
    return f"CP{index:05d}"


def id_tag(index: int) -> str:
    return f"TAG{index:05d}"


def raise_nofile_limit() -> int:
    """Raise the soft open-files limit to the hard limit; returns the new limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def session_cycle(meter_values: int) -> list[tuple[str, str]]:
    """The steps of one charging session: (action, argument)."""
    return [
        ("StatusNotification", "Preparing"),
        ("Authorize", ""),
        ("StartTransaction", ""),
        ("StatusNotification", "Charging"),
        *[("MeterValues", "")] * meter_values,
        ("StopTransaction", ""),
        ("StatusNotification", "Available"),
        ("Heartbeat", ""),
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadSpec:
    """What one worker process simulates."""

    url: str  # ws://127.0.0.1:PORT/ocpp/ ; the charger id is appended
    first: int  # index of the first charger of this worker
    count: int
    rate: float = 1.0  # open loop: messages per second per charger
    closed_loop: bool = False
    warm_start: bool = True  # start a transaction in warm-up if the cycle begins inside one
    meter_values: int = 10  # MeterValues per session
    connect_concurrency: int = 100
    connect_retries: int = 3
    call_timeout: float = 30.0
    seed: int = 0


_ts_cache: list[Any] = [0, ""]


def _timestamp() -> str:
    now = int(time.time())
    if now != _ts_cache[0]:
        _ts_cache[0] = now
        _ts_cache[1] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    return str(_ts_cache[1])


def _failure_kind(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, InvalidStatus):
        return f"http_{exc.response.status_code}"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionResetError | InvalidMessage | EOFError | ConnectionClosed):
        return "reset"
    if isinstance(exc, OSError):
        return f"oserror_{exc.errno}"
    return type(exc).__name__


class Charger:
    """One simulated charge point on one WebSocket connection."""

    def __init__(self, index: int, spec: LoadSpec, stats: Stats, rng: random.Random) -> None:
        self.index = index
        self.id = charger_id(index)
        self.tag = id_tag(index)
        self.spec = spec
        self.stats = stats
        self.rng = rng
        self.ws: ClientConnection | None = None
        self.seq = 0
        self.wh = float(index * 1000)
        self.transaction_id: int | None = None
        self.cycle = session_cycle(spec.meter_values)
        self.step_no = rng.randrange(len(self.cycle))
        self.dead = False

    async def connect(self) -> None:
        self.ws = await connect(
            self.spec.url + self.id,
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            compression=None,
            proxy=None,
            ping_interval=None,
            open_timeout=self.spec.call_timeout,
            close_timeout=2,
        )

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Send one CALL and wait for its answer; None (and an error recorded) on failure."""
        ws = self.ws
        assert ws is not None
        self.seq += 1
        uid = str(self.seq)
        frame = orjson.dumps([2, uid, action, payload])
        self.stats.sends += 1
        t_sent = time.monotonic()
        error: str | None = None
        result: dict[str, Any] | None = None
        try:
            async with asyncio.timeout(self.spec.call_timeout):
                await ws.send(frame, text=True)
                while True:
                    msg = orjson.loads(await ws.recv(decode=False))
                    if msg[0] == 2:  # a CALL from the server: accept whatever it is
                        await ws.send(orjson.dumps([3, msg[1], {}]), text=True)
                        continue
                    if msg[1] != uid:
                        continue
                    if msg[0] == 3:
                        result = msg[2]
                    else:
                        error = f"CallError_{msg[2]}"
                    break
        except TimeoutError:
            error = "timeout"
        except ConnectionClosed:
            error = "closed"
            self.dead = True
        self.stats.record(action, t_sent, time.monotonic(), error)
        return result

    async def boot(self) -> bool:
        result = await self.call(
            "BootNotification",
            {
                "chargePointVendor": "Bench",
                "chargePointModel": "Sim-1",
                "chargePointSerialNumber": self.id,
                "firmwareVersion": "1.0.0",
            },
        )
        return result is not None and result.get("status") == "Accepted"

    async def start(self) -> None:
        self.wh += 10.0
        result = await self.call(
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": self.tag,
                "meterStart": int(self.wh),
                "timestamp": _timestamp(),
            },
        )
        self.transaction_id = None if result is None else result.get("transactionId")

    async def step(self) -> None:
        """Send the next message of the session cycle."""
        action, arg = self.cycle[self.step_no]
        self.step_no = (self.step_no + 1) % len(self.cycle)
        if action == "StatusNotification":
            await self.call(
                action,
                {
                    "connectorId": 1,
                    "errorCode": "NoError",
                    "status": arg,
                    "timestamp": _timestamp(),
                },
            )
        elif action == "Authorize":
            await self.call(action, {"idTag": self.tag})
        elif action == "StartTransaction":
            await self.start()
        elif action == "MeterValues":
            await self.meter_values()
        elif action == "StopTransaction":
            await self.stop()
        else:
            await self.call("Heartbeat", {})

    async def meter_values(self) -> None:
        if self.transaction_id is None:
            await self.start()
            return
        self.wh += 2.0
        ts = _timestamp()
        sampled = [
            {
                "value": f"{self.wh:.1f}",
                "context": "Sample.Periodic",
                "measurand": "Energy.Active.Import.Register",
                "location": "Outlet",
                "unit": "Wh",
            },
            {"value": "7360", "measurand": "Power.Active.Import", "unit": "W"},
            *[
                {"value": "32.0", "measurand": "Current.Import", "phase": phase, "unit": "A"}
                for phase in ("L1", "L2", "L3")
            ],
        ]
        await self.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": self.transaction_id,
                "meterValue": [{"timestamp": ts, "sampledValue": sampled}],
            },
        )

    async def stop(self) -> None:
        if self.transaction_id is None:
            await self.start()
            return
        self.wh += 2.0
        await self.call(
            "StopTransaction",
            {
                "transactionId": self.transaction_id,
                "idTag": self.tag,
                "meterStop": int(self.wh),
                "timestamp": _timestamp(),
                "reason": "Local",
            },
        )
        self.transaction_id = None

    # --- phases -------------------------------------------------------------------

    async def open(self, sem: asyncio.Semaphore, t0: float) -> None:
        """Connect and boot (with retries); start a transaction if the cycle begins inside one."""
        async with sem:
            for attempt in range(self.spec.connect_retries + 1):
                try:
                    await self.connect()
                    break
                except Exception as exc:
                    self.stats.connect_failures[_failure_kind(exc)] += 1
                    if attempt == self.spec.connect_retries:
                        self.dead = True
                        return
                    await asyncio.sleep(0.5 + self.rng.random())
            self.stats.connected_at.append(time.monotonic() - t0)
            if not await self.boot():
                self.dead = True
                return
            self.stats.booted_at.append(time.monotonic() - t0)
        if not self.spec.warm_start:
            return
        actions = [a for a, _ in self.cycle]
        first_in_tx = actions.index("StartTransaction") + 1
        if first_in_tx <= self.step_no <= actions.index("StopTransaction"):
            await self.start()

    async def run(self, t_start: float, t_stop: float) -> None:
        if self.spec.closed_loop:
            while not self.dead and time.monotonic() < t_stop:
                await self.step()
            return
        interval = 1.0 / self.spec.rate
        next_t = t_start + self.rng.random() * interval
        while not self.dead and next_t < t_stop:
            delay = next_t - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > LATE_SEND:
                self.stats.late_sends += 1
            await self.step()
            next_t += interval

    async def storm(self, t_go: float, deadline: float) -> None:
        """Reconnect now (the server restarted) and boot; retry failures until the deadline."""
        old = self.ws
        if old is not None and old.close_code is None:
            old.transport.abort()
        self.dead = False
        while time.monotonic() < deadline:
            try:
                await self.connect()
            except Exception as exc:
                self.stats.connect_failures[_failure_kind(exc)] += 1
                await asyncio.sleep(0.5 + self.rng.random())
                continue
            self.stats.connected_at.append(time.monotonic() - t_go)
            if await self.boot():
                self.stats.booted_at.append(time.monotonic() - t_go)
                return
            await self.close()
            await asyncio.sleep(0.5 + self.rng.random())

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()


async def _worker(spec: LoadSpec, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    rng = random.Random(spec.seed)
    stats = Stats()
    chargers = [
        Charger(i, spec, stats, random.Random(rng.random()))
        for i in range(spec.first, spec.first + spec.count)
    ]
    t0 = time.monotonic()
    sem = asyncio.Semaphore(spec.connect_concurrency)
    await asyncio.gather(*(c.open(sem, t0) for c in chargers))
    alive = sum(not c.dead for c in chargers)
    conn.send(("ready", {"alive": alive, "seconds": time.monotonic() - t0}))
    # The warm-up is not part of any measurement.
    stats.latency = {a: array("d") for a in ACTIONS}
    while True:
        cmd = await loop.run_in_executor(None, conn.recv)
        if cmd[0] == "go":
            _, t_start, stats.w0, stats.w1 = cmd
            await asyncio.gather(*(c.run(t_start, stats.w1) for c in chargers))
            break
        if cmd[0] == "reconnect":
            _, t_go, deadline = cmd
            stats.w0, stats.w1 = t_go, deadline
            stats.connected_at = array("d")
            stats.booted_at = array("d")
            stats.connect_failures.clear()
            await asyncio.gather(*(c.storm(t_go, deadline) for c in chargers))
            break
        if cmd[0] == "stop":
            break
        # "hold": stay connected, idle, until the next command
    conn.send(("done", stats.to_dict()))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10):
            await asyncio.gather(*(c.close() for c in chargers))


def worker_main(spec: LoadSpec, conn: Connection) -> None:
    """Process entry point: run the chargers of `spec` on uvloop (asyncio if unavailable)."""
    raise_nofile_limit()
    try:
        import uvloop
    except ImportError:
        asyncio.run(_worker(spec, conn))
    else:
        uvloop.run(_worker(spec, conn))
    conn.close()


def main(argv: list[str] | None = None) -> int:
    """Ad-hoc use against a running server: one worker process, summary on stdout."""
    import multiprocessing as mp

    p = argparse.ArgumentParser(description="Simulated OCPP 1.6J chargers (one process).")
    p.add_argument("--url", default="ws://127.0.0.1:9000/ocpp/")
    p.add_argument("--chargers", type=int, default=100)
    p.add_argument("--rate", type=float, default=1.0, help="messages/s per charger")
    p.add_argument("--closed-loop", action="store_true")
    p.add_argument("--duration", type=float, default=10.0)
    args = p.parse_args(argv)
    spec = LoadSpec(
        url=args.url, first=0, count=args.chargers, rate=args.rate, closed_loop=args.closed_loop
    )
    ours, theirs = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=worker_main, args=(spec, theirs), daemon=True)
    proc.start()
    if not ours.poll(120):
        proc.kill()
        raise SystemExit("chargers did not connect within 120 s")
    print("ready:", ours.recv()[1])
    t = time.monotonic() + 0.5
    ours.send(("go", t, t + 1.0, t + 1.0 + args.duration))
    if not ours.poll(args.duration + 60):
        proc.kill()
        raise SystemExit("no result")
    stats = ours.recv()[1]
    proc.join(15)
    total = 0
    for action, values in stats["latency"].items():
        v = sorted(values)
        total += len(v)
        if v:
            print(
                f"{action:20s} n={len(v):7d} p50={percentile(v, 50):7.2f} ms "
                f"p99={percentile(v, 99):7.2f} ms"
            )
    print(f"calls/s: {total / args.duration:.0f}  errors: {stats['errors']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
