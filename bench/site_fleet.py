"""The site simulator of `bench.site`: a grid meter and N chargers, in a worker process.

The worker serves a real Modbus TCP SDM630 (`drivers.serve_meter`) showing base load plus
every charger's draw, and runs N lightweight chargers on real WebSockets to the CSMS
under test; it takes orders (connect, start transactions, step the base load, report)
over a pipe from the orchestrator in `bench.site`, so the CSMS's CPU is measured alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from bench.load import raise_nofile_limit
from drivers import KNOWN_MODELS, MeterServer, serve_meter
from profiles.lease import LEASE_PROFILE_ID, SAFE_PROFILE_ID

__all__ = [
    "BASE_A",
    "EPS_A",
    "MARGIN_A",
    "SHARE_A",
    "SimSite",
    "WorkerSpec",
    "fuse_a",
    "id_tag",
    "recv",
    "run_loop",
    "worker_main",
]

BASE_A = 10.0  # non-EV load per phase before the steps
MARGIN_A = 2.0
SHARE_A = 16.0  # every charger's fair share before the steps
MIN_CHARGE_A = 6.0
EV_MAX_A = 32.0
EPS_A = 0.05
Json = dict[str, Any]


def charger_id(index: int) -> str:
    return f"SITE{index:04d}"


def id_tag(index: int) -> str:
    return f"STAG{index:04d}"


def fuse_a(chargers: int) -> float:
    """The fuse that gives every charger `SHARE_A` at `BASE_A` of non-EV load."""
    return BASE_A + MARGIN_A + chargers * SHARE_A


# --- pipe helpers (both processes) ---------------------------------------------------------


async def recv(conn: Connection, timeout: float | None) -> Any:
    """The next message from `conn` without blocking the event loop (or a thread)."""
    if not conn.poll():
        loop = asyncio.get_running_loop()
        ready = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(conn.fileno(), wake)
        try:
            await asyncio.wait_for(ready, timeout)
        finally:
            loop.remove_reader(conn.fileno())
    return conn.recv()


def run_loop(coroutine: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


# --- the site simulator (worker process) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    chargers: int
    meter_values_every: float = 10.0
    connect_concurrency: int = 50
    seed: int = 0


class SimPoint:
    """A lightweight charger with one connector and a 3-phase EV; keeps the site's two
    profiles (safe, lease) as a charger does for one purpose on connector 0."""

    def __init__(self, site: SimSite, index: int) -> None:
        self.site = site
        self.id = charger_id(index)
        self.tag = id_tag(index)
        self.ws: ClientConnection | None = None
        self.seq = 0
        self.pending: dict[str, asyncio.Future[list[Any]]] = {}
        self.reader: asyncio.Task[None] | None = None
        self.transaction_id: int | None = None
        self.wh = 0.0
        self.safe_a: float | None = None
        self.lease_a: float | None = None
        self.lease_to = 0.0  # epoch s
        self.shown_a = 0.0  # on the meter, and what the charger reported last
        self.sets = 0
        self.safe_sets = 0
        self.lease_changes = 0
        self.arrivals: list[tuple[float, float]] = []  # (monotonic, lease limit)
        self.next_report = math.inf
        self.dead = False

    async def connect(self, url: str) -> None:
        self.ws = await connect(
            url + self.id,
            subprotocols=[Subprotocol("ocpp1.6")],
            compression=None,
            ping_interval=None,
            proxy=None,
            open_timeout=30,
            close_timeout=2,
        )
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for text in self.ws:
                msg = orjson.loads(text)
                if msg[0] == 2:
                    await self._on_call(msg)
                    continue
                future = self.pending.pop(msg[1], None)
                if future is not None and not future.done():
                    future.set_result(msg)
        except ConnectionClosed:
            pass
        finally:
            self.dead = True
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("closed"))

    async def call(self, action: str, payload: Json, timeout: float = 30.0) -> Json:
        assert self.ws is not None
        self.seq += 1
        uid = str(self.seq)
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self.pending[uid] = future
        try:
            await self.ws.send(orjson.dumps([2, uid, action, payload]), text=True)
            msg = await asyncio.wait_for(future, timeout)
        finally:
            self.pending.pop(uid, None)
        if msg[0] != 3:
            raise RuntimeError(f"{self.id} {action}: {msg}")
        result: Json = msg[2]
        return result

    async def _on_call(self, msg: list[Any]) -> None:
        _, uid, action, payload = msg
        result: Json = {}
        if action == "SetChargingProfile":
            result = self._on_set(payload)
        assert self.ws is not None
        await self.ws.send(orjson.dumps([3, uid, result]), text=True)
        if action == "SetChargingProfile":
            self.site.follow(self)

    def _on_set(self, req: Json) -> Json:
        now = time.monotonic()
        profile = req.get("csChargingProfiles") or {}
        periods = (profile.get("chargingSchedule") or {}).get("chargingSchedulePeriod") or [{}]
        limit = float(periods[0].get("limit", 0.0))
        self.sets += 1
        if profile.get("chargingProfileId") == LEASE_PROFILE_ID:
            valid_to = profile.get("validTo")
            self.lease_to = (
                datetime.fromisoformat(valid_to).timestamp() if valid_to is not None else math.inf
            )
            if self.lease_a is not None and abs(limit - self.lease_a) > EPS_A:
                self.lease_changes += 1
            self.lease_a = limit
            self.arrivals.append((now, limit))
        elif profile.get("chargingProfileId") == SAFE_PROFILE_ID:
            self.safe_a = limit
            self.safe_sets += 1
        return {"status": "Accepted"}

    def limit_a(self, epoch: float) -> float:
        """The limit in force: the lease while valid (stacked above), else the safe value."""
        if self.lease_a is not None and self.lease_to > epoch:
            return self.lease_a
        return math.inf if self.safe_a is None else self.safe_a

    def draw_a(self, epoch: float) -> float:
        if self.transaction_id is None:
            return 0.0
        amps = min(self.limit_a(epoch), EV_MAX_A)
        return amps if amps >= MIN_CHARGE_A else 0.0

    async def report(self, amps: float) -> None:
        """MeterValues: Current.Import on L1-L3 and the energy register."""
        if self.transaction_id is None or self.dead:
            return
        self.wh += 1.0
        sampled = [
            {"value": f"{amps:.1f}", "measurand": "Current.Import", "phase": f"L{k}", "unit": "A"}
            for k in (1, 2, 3)
        ]
        sampled.append(
            {"value": f"{self.wh:.1f}", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
        )
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        await self.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": self.transaction_id,
                "meterValue": [{"timestamp": stamp, "sampledValue": sampled}],
            },
        )

    async def status(self, status: str) -> None:
        await self.call(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": status}
        )

    async def boot(self, url: str) -> None:
        await self.connect(url)
        boot = await self.call(
            "BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "SiteSim"}
        )
        if boot.get("status") != "Accepted":
            raise RuntimeError(f"{self.id}: BootNotification {boot}")
        await self.status("Available")

    async def start(self) -> None:
        await self.status("Preparing")
        conf = await self.call(
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": self.tag,
                "meterStart": int(self.wh),
                "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            },
        )
        if conf["idTagInfo"]["status"] != "Accepted":
            raise RuntimeError(f"{self.id}: StartTransaction {conf}")
        self.transaction_id = int(conf["transactionId"])
        await self.status("Charging")
        self.site.follow(self)

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self.reader is not None:
            with contextlib.suppress(Exception):
                await self.reader


class SimSite:
    """The meter and the chargers of the worker process."""

    def __init__(self, spec: WorkerSpec, meter: MeterServer) -> None:
        self.spec = spec
        self.meter = meter
        self.base_a = BASE_A
        self.points = [SimPoint(self, i) for i in range(1, spec.chargers + 1)]
        self.tasks: set[asyncio.Task[None]] = set()
        self.errors: Counter[str] = Counter()
        self._dirty = asyncio.Event()
        self.rng = random.Random(spec.seed)

    def grid_a(self) -> float:
        return self.base_a + sum(p.shown_a for p in self.points)

    async def publish(self) -> float:
        self._dirty.clear()
        amps = self.grid_a()
        await self.meter.set(current_a=(amps, amps, amps))
        return amps

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.errors[type(task.exception()).__name__] += 1

    def follow(self, point: SimPoint) -> None:
        """The EV follows the charger's limit: a drop shows on the meter at once (and is
        reported), a rise only once the charger's report of it was answered."""
        new = point.draw_a(time.time())
        if abs(new - point.shown_a) < EPS_A:
            return
        if new < point.shown_a:
            point.shown_a = new
            self._dirty.set()
            self.spawn(point.report(new))
        else:
            self.spawn(self._rise(point, new))

    async def _rise(self, point: SimPoint, amps: float) -> None:
        await point.report(amps)
        point.shown_a = min(amps, point.draw_a(time.time()))
        self._dirty.set()

    async def run_meter(self) -> None:
        """Keep the meter up to date; every charger's periodic MeterValues; expiring leases."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.25):
                    await self._dirty.wait()
            if self._dirty.is_set():
                await self.publish()
            now = time.monotonic()
            epoch = time.time()
            for p in self.points:
                if p.transaction_id is None or p.dead:
                    continue
                if abs(p.draw_a(epoch) - p.shown_a) >= EPS_A and p.shown_a > p.draw_a(epoch):
                    self.follow(p)  # a lease ended: back at the safe value
                if now >= p.next_report:
                    p.next_report = now + self.spec.meter_values_every
                    self.spawn(p.report(p.shown_a))

    async def connect(self, url: str) -> Json:
        """Connect, boot and start a transaction on every charger, then start the meter.

        Without a reading the controller sends only safe profiles (6 A), so every EV starts
        at its safe value and the first reading gives every charger its share in one raise.
        A charger that is idle when a reading arrives gets a 0 A lease instead, and then
        takes tens of seconds to reach its share (its raise waits ``min_update_interval``
        after that lease, and reclaim judges the draw the 0 A lease held down, so it climbs
        in 2 A steps), which would dominate a benchmark of the loop's reaction.
        """
        sem = asyncio.Semaphore(self.spec.connect_concurrency)
        t0 = time.monotonic()

        async def boot(p: SimPoint) -> None:
            async with sem:
                try:
                    await p.boot(url)
                except Exception as exc:
                    self.errors[f"boot:{type(exc).__name__}"] += 1
                    p.dead = True

        await asyncio.gather(*(boot(p) for p in self.points))
        booted = time.monotonic()

        async def start(p: SimPoint) -> None:
            if p.dead:
                return
            # Periodic reports from a while after the start (which reports the draw at once).
            p.next_report = (
                time.monotonic() + (1.0 + self.rng.random()) * self.spec.meter_values_every
            )
            async with sem:
                try:
                    await p.start()
                except Exception as exc:
                    self.errors[f"start:{type(exc).__name__}"] += 1

        await asyncio.gather(*(start(p) for p in self.points))
        await asyncio.gather(*list(self.tasks), return_exceptions=True)  # the first reports
        started = time.monotonic()
        await self.publish()
        await self.meter.start()
        return {
            "connected": sum(not p.dead for p in self.points),
            "charging": sum(p.transaction_id is not None for p in self.points),
            "boot_s": round(booted - t0, 2),
            "start_s": round(started - booted, 2),
        }

    def counters(self) -> list[tuple[int, int, int]]:
        return [(len(p.arrivals), p.safe_sets, p.lease_changes) for p in self.points]

    async def step(self, base_a: float, timeout: float) -> Json:
        """Set the base load; wait until every charger got a lease that moves its limit the
        same way (lower for a higher base load). Times are monotonic, s after the change."""
        epoch = time.time()
        held = {p.id: p.limit_a(epoch) for p in self.points}
        mark = {p.id: len(p.arrivals) for p in self.points}
        down = base_a > self.base_a
        before = self.grid_a()
        self.base_a = base_a
        t0 = time.monotonic()  # the registers change from here on (a few ms)
        after = await self.publish()
        got: dict[str, tuple[float, float]] = {}
        live = [p for p in self.points if p.transaction_id is not None and not p.dead]
        while len(got) < len(live) and time.monotonic() - t0 < timeout:
            for p in live:
                if p.id in got:
                    continue
                for at, limit in p.arrivals[mark[p.id] :]:
                    if (limit < held[p.id] - EPS_A) if down else (limit > held[p.id] + EPS_A):
                        got[p.id] = (at - t0, limit)
                        break
            await asyncio.sleep(0.005)
        times = sorted(at for at, _ in got.values())
        limits = [limit for _, limit in got.values()]
        return {
            "t0": t0,
            "meter_before_a": before,
            "meter_after_a": after,
            "received": len(got),
            "missing": len(live) - len(got),
            "first_s": times[0] if times else None,
            "all_s": times[-1] if times and len(got) == len(live) else None,
            "times_s": times,
            "limit_min_a": min(limits, default=None),
            "limit_max_a": max(limits, default=None),
        }

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.points))


async def _worker(spec: WorkerSpec, conn: Connection) -> None:
    async with serve_meter(KNOWN_MODELS["sdm630"]) as meter:
        site = SimSite(spec, meter)
        # The meter stays down until every charger charges (see SimSite.connect).
        await meter.stop()
        meter_task = asyncio.ensure_future(site.run_meter())
        conn.send(("meter", meter.port))
        window: list[tuple[int, int, int]] = []
        window_t = 0.0
        try:
            while True:
                cmd = await recv(conn, None)
                kind = cmd[0]
                if kind == "connect":
                    conn.send(("ready", await site.connect(cmd[1])))
                elif kind == "count":
                    window, window_t = site.counters(), time.monotonic()
                    conn.send(("counting", window_t))
                elif kind == "counted":
                    now = time.monotonic()
                    counts = [
                        (a - a0, s - s0, c - c0)
                        for (a, s, c), (a0, s0, c0) in zip(site.counters(), window, strict=True)
                    ]
                    conn.send(("counts", {"seconds": now - window_t, "per_charger": counts}))
                elif kind == "step":
                    conn.send(("stepped", await site.step(cmd[1], cmd[2])))
                elif kind == "stop":
                    errors = dict(site.errors)  # closing fails what is in flight: not counted
                    meter_task.cancel()
                    await site.close()
                    conn.send(("bye", {"errors": errors}))
                    break
        finally:
            meter_task.cancel()
            with contextlib.suppress(BaseException):
                await meter_task


def worker_main(spec: WorkerSpec, conn: Connection) -> None:
    """Process entry point of the site simulator."""
    raise_nofile_limit()
    logging.basicConfig(level=logging.WARNING)
    run_loop(_worker(spec, conn))
    conn.close()
