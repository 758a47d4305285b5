"""Cloud link benchmark: replaying the outbox after an outage, and the link's cost online.

    python -m bench.upstream                # 100 chargers, 22 000 MeterValues; 60 s windows
    python -m bench.upstream --quick        # 100 chargers, 6 000 MeterValues; 10 s windows
    python -m bench.upstream --profile      # the drain and the online windows profiled
    python -m bench.upstream --batch 1      # the outage only, the link reading 1 row, not 50
    python -m bench.upstream --chargers 3 --transactions 2 --meter-values 30 --window 2

The cloud is the tests' real OCPP 1.6J central system (`tests.upstream.cloud.Cloud`: the
`ocpp` package, every CALL schema-checked and recorded), in this process on 127.0.0.1,
with the simulated chargers (`bench.load.Charger`: raw websockets and orjson). edge-csms
runs in a process of its own (`python -m edge serve`: uvloop, ``synchronous = "FULL"``,
the default ``commit_interval``), so its costs are read from /proc for its pid alone:

- CPU: utime + stime of /proc/PID/stat (every thread; /proc/PID/task/PID/stat for the
  event loop's own part), clock ticks of 10 ms;
- memory: VmHWM of /proc/PID/status (reset through /proc/PID/clear_refs when the
  drain starts) and VmRSS sampled every 0.1 s;
- **bytes written: write_bytes of /proc/PID/io**, what the process sent to the block
  layer: journal commits into the WAL and checkpoints into the database file. Its
  log goes to a pipe this process drains, so it is not counted.

Every data directory is a temporary one, removed at the end; everything listens on
127.0.0.1, and every wait is bounded.

**Outage and replay** (a day's outage, compressed). With the cloud down (its port
closed: connections refused) N chargers connect, boot, and each runs `--transactions`
sessions (StatusNotification Preparing, StartTransaction, Charging, `--meter-values`
MeterValues, StopTransaction, Finishing, Available) as fast as the edge answers, so the
outbox fills in seconds rather than a day. Then the cloud listens again, answering
BootNotification *Pending* (retry in 1 s) until every link has reconnected, each after
its own back-off (up to 60 s with jitter: "reconnect"); then it accepts them and all the
links drain at once. Reported:

- drain throughput: CALLs the cloud received and answered during the drain (statuses
  and transaction messages; BootNotification not counted) per second, from the first
  accepted Boot to the arrival of the last charger's last message (target: 500/s);
- time to drain; the edge's CPU per message drained; bytes written per message while
  queueing (per charger message during the fill) and while draining (per message
  drained); peak RSS during the outage and during the drain; the outbox on disk after
  the fill (table and index pages from SQLite's dbstat, and the data directory's growth);
- the check: for every charger, the transaction messages the cloud got are exactly the
  charger's, once each, in its order, under the cloud's transaction ids, each answered
  with a CALLRESULT; its statuses are a subsequence of its own (offline statuses may be
  coalesced) that holds each connector's last one; the edge's outbox is empty after;
- reading the outbox: CPU of one `edge.store._outbox.pending` read of the `BATCH` rows
  (50) that `UpstreamLink._send_next` reads per message, and of one row, timed in this
  process on the filled outbox through a read-only connection with the edge reader's
  cache size (the edge idle meanwhile).

**Link overhead online.** N chargers, each in a transaction, send MeterValues every
`--interval` s for `--window` s, once with no `[upstream]` and once with the cloud up:
the edge's CPU and bytes written per charger message, and the ratio on / off (target:
at most 1.5x). With the link on, the cloud must get every message once, in order.

`--profile` runs edge-csms under `bench.instrumented_edge`: cProfile on the event loop
thread's CPU time, switched on for the drain and for the online windows only; the link's
and the outbox's functions with their share of that CPU go into the results (profiling
slows the edge down: its other numbers in that run are not comparable).
`--batch N` runs the outage alone with the link reading N rows per message (an
experiment: what the 50-row read costs the drain).

Results: ``bench/results/upstream.json`` and ``upstream.md`` (``upstream-profile.*``,
``upstream-batchN.*`` for those runs), and a README snippet ``upstream-readme.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.load import Charger, LoadSpec, id_tag, raise_nofile_limit
from bench.servers import (
    API_TOKEN,
    ProcSample,
    ServerProcess,
    proc_sample,
    seed_id_tags,
    write_edge_config,
)
from bench.site import run_info
from bench.site_fleet import run_loop
from bench.stats import ACTIONS, TX_ACTIONS, Stats, percentile
from bench.upstream_report import (
    DRAIN_TARGET,
    OVERHEAD_TARGET,
    Json,
    profile_summary,
    readme_snippet,
    render,
)
from edge.store import _outbox
from edge.upstream.link import BATCH
from edge.upstream.rules import next_to_send, to_cloud
from tests.upstream.cloud import Cloud, Received, now_text

__all__ = [
    "BenchCharger",
    "Edge",
    "Options",
    "check_delivery",
    "main",
    "online",
    "outage",
    "profile_summary",
    "read_cost",
    "render",
]

RESULTS = Path(__file__).resolve().parent / "results"
RECONNECT_TIMEOUT = 90.0  # s: a link's back-off is at most 60 s
SAMPLE_EVERY = 0.1  # s between two RSS samples
PROBE_FIRST, PROBE_CHARGERS = 901, 20  # chargers timing their Heartbeats during the drain
SETTLE = 1.0  # s after a window before the edge's counters are read


@dataclass(slots=True)
class Options:
    """One invocation; `--quick` and the defaults fill it."""

    chargers: int = 100
    transactions: int = 4  # sessions per charger in the outage
    meter_values: int = 55  # per session
    window: float = 60.0  # s of online load
    interval: float = 1.0  # s between MeterValues online
    phases: tuple[str, ...] = ("outage", "overhead")
    profile: bool = False
    batch: int | None = None
    out: Path = RESULTS
    seed: int = 1


# --- the edge under test (a subprocess) ---------------------------------------------------


class Edge:
    """`python -m edge serve` on a fresh data directory, and what /proc says about it."""

    def __init__(
        self,
        workdir: Path,
        cloud_url: str | None,
        *,
        profile: Path | None = None,
        batch: int | None = None,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = workdir / "data"
        config = workdir / "edge.toml"
        write_edge_config(config, self.data_dir)
        if cloud_url is not None:
            with config.open("a") as f:
                f.write(f'\n[upstream]\nurl = "{cloud_url}"\n')
        argv = [sys.executable, "-m", "edge"]
        if profile is not None or batch is not None:
            argv = [sys.executable, "-m", "bench.instrumented_edge"]
            argv += ["--profile", str(profile)] if profile is not None else []
            argv += ["--batch", str(batch)] if batch is not None else []
        argv += ["serve", "--config", str(config)]
        self.server = ServerProcess("edge", argv, workdir / "edge.log", self.data_dir)
        self.rss: list[tuple[float, int]] = []  # (monotonic, VmRSS kB)
        self._sampler: asyncio.Task[None] | None = None
        self.started = 0.0  # monotonic, once listening

    @property
    def pid(self) -> int:
        return self.server.pid

    @property
    def journal(self) -> Path:
        return self.data_dir / "journal.sqlite3"

    async def start(self) -> None:
        await asyncio.to_thread(self.server.wait_listening, 60.0, True)
        self.started = time.monotonic()
        self._sampler = asyncio.create_task(self._sample_rss())

    async def _sample_rss(self) -> None:
        while True:
            with contextlib.suppress(OSError):
                sample = proc_sample(self.pid)
                self.rss.append((sample.at, sample.rss_kb))
            await asyncio.sleep(SAMPLE_EVERY)

    def peak_rss_mb(self, since: float) -> float:
        """The largest VmRSS sampled since `since` (monotonic), MB."""
        return _mb(max((kb for at, kb in self.rss if at >= since), default=0))

    def sample(self) -> ProcSample:
        return proc_sample(self.pid)

    def loop_cpu(self) -> float:
        """CPU seconds of the main thread (the event loop)."""
        with open(f"/proc/{self.pid}/task/{self.pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def reset_peak(self) -> bool:
        """Reset VmHWM (``echo 5 > /proc/PID/clear_refs``); False where that is refused."""
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            return False
        return True

    def data_bytes(self) -> int:
        """Apparent size of the files in the data directory."""
        return sum(p.stat().st_size for p in self.data_dir.rglob("*") if p.is_file())

    async def get(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.server.web_port}{path}"
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        timeout = aiohttp.ClientTimeout(total=30)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, headers=headers) as resp,
        ):
            if resp.status != 200:
                raise RuntimeError(f"GET {path}: HTTP {resp.status}")
            return await resp.json()

    async def pending(self) -> tuple[int, int]:
        """Outbox rows waiting for the cloud, and rows parked, over every charger."""
        chargers = (await self.get("/api/upstream"))["chargers"]
        return sum(c["pending"] for c in chargers), sum(c.get("parked", 0) for c in chargers)

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    async def stop(self) -> Json:
        """SIGTERM (SIGKILL after 30 s); what it logged."""
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None
        seconds, code = await asyncio.to_thread(self.server.stop, 30.0)
        logged = [line for line in self.server.lines if " WARNING " in line or " ERROR " in line]
        return {
            "stop_s": round(seconds, 2),
            "exit_code": code,
            "warnings_logged": self.server.warning_lines,
            "errors_logged": self.server.error_lines,
            "last_logged": [line.split(" ", 2)[-1][:200] for line in logged[-3:]],
        }


def _mb(kb: int) -> float:
    return round(kb / 1024, 1)


def _split(cpu: float, loop: float, messages: int) -> Json:
    """The edge's CPU per message (µs) split between its event loop thread and the other
    threads (the journal's writer and checkpointer, the executor's)."""
    return {
        "event_loop_share_pct": round(loop / cpu * 100) if cpu else None,
        "event_loop_us_per_message": round(loop / max(messages, 1) * 1e6),
        "other_threads_us_per_message": round((cpu - loop) / max(messages, 1) * 1e6),
    }


# --- the chargers (this process) ----------------------------------------------------------


@dataclass(slots=True)
class Sent:
    """One message the edge answered with a CALLRESULT."""

    action: str
    payload: Json
    result: Json
    at: float  # monotonic, when the answer arrived


class BenchCharger(Charger):
    """A `bench.load.Charger` that keeps every message the edge acknowledged, in order
    (BootNotification, Authorize and Heartbeat aside: they do not go through the
    outbox), and fails loudly instead of counting a failure."""

    def __init__(self, index: int, spec: LoadSpec, stats: Stats, rng: random.Random) -> None:
        super().__init__(index, spec, stats, rng)
        self.sent: list[Sent] = []

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        result = await super().call(action, payload)
        if result is None:
            raise RuntimeError(f"{self.id}: the edge did not acknowledge {action}")
        if action not in ("BootNotification", "Authorize", "Heartbeat"):
            self.sent.append(Sent(action, payload, result, time.monotonic()))
        return result

    async def status(self, connector_id: int, status: str) -> None:
        await self.call(
            "StatusNotification",
            {
                "connectorId": connector_id,
                "errorCode": "NoError",
                "status": status,
                "timestamp": now_text(),
            },
        )

    async def available(self) -> None:
        await self.status(0, "Available")
        await self.status(1, "Available")

    async def begin(self) -> None:
        """Preparing, StartTransaction, Charging."""
        await self.status(1, "Preparing")
        await self.start()
        if self.transaction_id is None:
            raise RuntimeError(f"{self.id}: StartTransaction without a transactionId")
        await self.status(1, "Charging")

    async def end(self) -> None:
        """StopTransaction, Finishing, Available."""
        await self.stop()
        await self.status(1, "Finishing")
        await self.status(1, "Available")

    async def sessions(self, count: int, meter_values: int) -> None:
        for _ in range(count):
            await self.begin()
            for _ in range(meter_values):
                await self.meter_values()
            await self.end()

    async def periodic(self, t_start: float, t_stop: float, interval: float) -> int:
        """MeterValues every `interval` s, from a random phase, until `t_stop`; the count."""
        sent = 0
        next_t = t_start + self.rng.random() * interval
        while next_t < t_stop:
            delay = next_t - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.meter_values()
            sent += 1
            next_t += interval
        return sent


async def connect_chargers(url: str, n: int, stats: Stats, seed: int) -> list[BenchCharger]:
    """N chargers connected to the edge at `url`, booted, connectors 0 and 1 Available."""
    spec = LoadSpec(url=url, first=1, count=n, warm_start=False, connect_concurrency=50)
    rng = random.Random(seed)
    chargers = [BenchCharger(i, spec, stats, random.Random(rng.random())) for i in range(1, n + 1)]
    sem = asyncio.Semaphore(spec.connect_concurrency)
    await asyncio.gather(*(c.open(sem, time.monotonic()) for c in chargers))
    dead = [c.id for c in chargers if c.dead]
    if dead:
        await close_chargers(chargers)
        raise RuntimeError(f"{len(dead)} chargers could not connect and boot: {dead[:5]}")
    await asyncio.gather(*(c.available() for c in chargers))
    return chargers


async def close_chargers(chargers: Sequence[Charger]) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(15):
            await asyncio.gather(*(c.close() for c in chargers))


def round_trips(stats: Stats) -> Json:
    """The chargers' round trips (ms), every action."""
    values = sorted(v for action in ACTIONS for v in stats.latency[action])
    return {
        "n": len(values),
        "p50": round(percentile(values, 50) or 0.0, 2),
        "p99": round(percentile(values, 99) or 0.0, 2),
    }


# --- what the cloud got -------------------------------------------------------------------


def _without_id(payload: Json) -> Json:
    """The payload without its transactionId (the cloud's differs from the charger's)."""
    return {k: v for k, v in payload.items() if k != "transactionId"}


def _last_delivered(cloud: Cloud, charger: BenchCharger) -> Received | None:
    """The cloud's record of the charger's last message, once received and answered."""
    calls = cloud.calls.get(charger.id)
    if not calls or not charger.sent:
        return None
    last = calls[-1]
    if last.accepted and _without_id(last.payload) == _without_id(charger.sent[-1].payload):
        return last
    return None


def delivered(cloud: Cloud, chargers: Sequence[BenchCharger]) -> bool:
    """Whether every charger's last message reached the cloud (and so every message
    did: a charger's outbox goes in order)."""
    return all(_last_delivered(cloud, c) is not None for c in chargers)


async def wait_for(condition: Callable[[], bool], timeout: float, every: float = 0.05) -> bool:
    """Poll `condition` until it holds (True) or `timeout` s have passed (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every)
    return True


def _problems(cloud: Cloud, charger: BenchCharger) -> list[str]:
    """What is wrong with what the cloud got of this charger (nothing: [])."""
    problems: list[str] = []
    calls = cloud.received(charger.id)
    expected_actions = {"BootNotification", "Heartbeat", "StatusNotification", *TX_ACTIONS}
    unexpected = {c.action for c in calls} - expected_actions
    if unexpected:
        problems.append(f"unexpected actions {sorted(unexpected)}")
    unanswered = sum(not c.accepted for c in calls)
    if unanswered:
        problems.append(f"{unanswered} CALLs not answered with a CALLRESULT")
    got = [c for c in calls if c.action in TX_ACTIONS]
    sent = [s for s in charger.sent if s.action in TX_ACTIONS]
    cloud_ids: dict[int, int] = {}  # the edge's transaction id -> the cloud's
    for index, (call, message) in enumerate(zip(got, sent, strict=False)):
        payload = message.payload
        if message.action == "StartTransaction":
            if call.answer is not None and call.answer[0] == 3:
                cloud_ids[message.result["transactionId"]] = call.answer[2]["transactionId"]
        elif "transactionId" in payload:
            payload = {**payload, "transactionId": cloud_ids.get(payload["transactionId"])}
        if call.action != message.action or call.payload != payload:
            problems.append(
                f"transaction message {index}: got {call.action}, sent {message.action}"
            )
            break
    if len(got) != len(sent):
        problems.append(f"{len(got)} transaction messages for {len(sent)} sent")
    statuses = [c.payload for c in calls if c.action == "StatusNotification"]
    own = [s.payload for s in charger.sent if s.action == "StatusNotification"]
    position = 0  # each status the cloud got comes later in the charger's than the one before
    for payload in statuses:
        while position < len(own) and own[position] != payload:
            position += 1
        if position == len(own):
            problems.append("statuses repeated, out of order, or not the charger's")
            break
        position += 1
    for connector_id in sorted({s["connectorId"] for s in own}):
        if [s for s in own if s["connectorId"] == connector_id][-1] not in statuses:
            problems.append(f"the last status of connector {connector_id} is missing")
    return problems


def check_delivery(cloud: Cloud, chargers: Sequence[BenchCharger]) -> Json:
    """Every charger's transaction messages exactly once, in its order, under the cloud's
    ids, each answered; its statuses in its order, each connector's last one delivered."""
    failing = {c.id: p for c in chargers if (p := _problems(cloud, c))}
    tx_sent = sum(1 for c in chargers for s in c.sent if s.action in TX_ACTIONS)
    statuses_sent = sum(1 for c in chargers for s in c.sent if s.action == "StatusNotification")
    return {
        "ok": not failing,
        "transaction_messages_sent": tx_sent,
        "transaction_messages_received": sum(
            len(cloud.received(c.id, *TX_ACTIONS)) for c in chargers
        ),
        "statuses_sent": statuses_sent,
        "statuses_received": sum(len(cloud.received(c.id, "StatusNotification")) for c in chargers),
        "chargers_failing": len(failing),
        "first_problems": dict(list(failing.items())[:5]),
    }


# --- the outbox on disk -------------------------------------------------------------------


def _read_only(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None, timeout=5.0)
    conn.execute("PRAGMA cache_size = -1024")  # KiB, as the edge's own reader
    return conn


def outbox_on_disk(db: Path) -> Json:
    """Rows, payload bytes, and the pages of the outbox table and its index (dbstat)."""
    conn = _read_only(db)
    try:
        rows, payload = conn.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox"
        ).fetchone()
        pages = dict(
            conn.execute(
                "SELECT name, sum(pgsize) FROM dbstat WHERE name IN ('outbox', 'outbox_charger')"
                " GROUP BY name"
            ).fetchall()
        )
    finally:
        conn.close()
    table, index = int(pages.get("outbox", 0)), int(pages.get("outbox_charger", 0))
    return {
        "rows": rows,
        "payload_bytes": payload,
        "table_bytes": table,
        "index_bytes": index,
        "bytes_per_row": round((table + index) / rows) if rows else None,
    }


def read_cost(db: Path, charger_ids: Sequence[str], repeats: int = 3) -> Json:
    """CPU µs (this thread's) of one `_outbox.pending` read of BATCH rows and of 1 row,
    of `next_to_send` over the BATCH rows and of `to_cloud` of the row it picks, on the
    outbox as it is now; the mean over every charger, `repeats` times."""
    conn = _read_only(db)
    names = ("pending_batch", "pending_1", "next_to_send", "to_cloud")
    timings: dict[str, list[float]] = {name: [] for name in names}
    rows = 0
    try:
        for _ in range(repeats):
            for cid in charger_ids:
                t0 = time.thread_time()
                entries = _outbox.pending(conn, cid, BATCH)
                t1 = time.thread_time()
                _outbox.pending(conn, cid, 1)
                t2 = time.thread_time()
                step = next_to_send(entries, now_text())
                t3 = time.thread_time()
                if step.entry is not None:
                    to_cloud(step.entry, 1)
                t4 = time.thread_time()
                rows += len(entries)
                for name, seconds in zip(names, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                    timings[name].append(seconds)
    finally:
        conn.close()
    reads = len(timings["pending_batch"])
    out: Json = {"batch": BATCH, "reads": reads, "rows_per_read": round(rows / max(reads, 1))}
    for name, values in timings.items():
        out[f"{name}_us"] = round(statistics.fmean(values) * 1e6, 1) if values else None
    return out


# --- outage and replay --------------------------------------------------------------------


async def outage(opts: Options, workdir: Path) -> Json:
    """Fill the outbox with the cloud down, reconnect, drain (see the module's doc)."""
    cloud = Cloud()
    await cloud.start()
    await cloud.stop()  # the port is kept: the links are refused until it listens again
    cloud.boot_status, cloud.boot_interval = "Pending", 1
    profile = workdir / "drain.prof" if opts.profile else None
    edge = Edge(workdir / "outage", cloud.url, profile=profile, batch=opts.batch)
    chargers: list[BenchCharger] = []
    result: Json = {
        "chargers": opts.chargers,
        "transactions_per_charger": opts.transactions,
        "meter_values_per_transaction": opts.meter_values,
        "batch": BATCH if opts.batch is None else opts.batch,
    }
    try:
        await edge.start()
        tags = [id_tag(i) for i in range(1, opts.chargers + 1)]
        await asyncio.to_thread(seed_id_tags, edge.server, tags)
        stats = Stats()
        stats.w0, stats.w1 = 0.0, float("inf")
        url = f"ws://127.0.0.1:{edge.server.port}/ocpp/"
        chargers = await connect_chargers(url, opts.chargers, stats, opts.seed)

        _log("outage: the chargers send with the cloud down")
        size0, s0 = edge.data_bytes(), edge.sample()
        budget = 120 + opts.chargers * opts.transactions * opts.meter_values / 50
        async with asyncio.timeout(budget):
            await asyncio.gather(
                *(c.sessions(opts.transactions, opts.meter_values) for c in chargers)
            )
        filled = time.monotonic()
        await asyncio.sleep(SETTLE)
        s1 = edge.sample()
        sent = sum(len(c.sent) for c in chargers)
        result["fill"] = {
            "seconds": round(filled - s0.at, 2),
            "messages": sent,
            "meter_values": sum(1 for c in chargers for s in c.sent if s.action == "MeterValues"),
            "charger_round_trip_ms": round_trips(stats),
            "edge_cpu_us_per_message": round((s1.cpu_s - s0.cpu_s) / sent * 1e6),
            "bytes_written_per_message": round((s1.write_bytes - s0.write_bytes) / sent),
            "bytes_written": s1.write_bytes - s0.write_bytes,
            "data_dir_growth_bytes": edge.data_bytes() - size0,
            "peak_rss_mb": _mb(s1.hwm_kb),
        }
        result["outbox"] = outbox_on_disk(edge.journal)
        result["read_cost"] = read_cost(edge.journal, [c.id for c in chargers])
        pending, _ = await edge.pending()
        result["outbox"]["pending"] = pending

        _log("outage: the cloud is back (Pending until every link is connected)")
        up = time.monotonic()
        await cloud.start()
        ids = [c.id for c in chargers]
        all_back = await wait_for(lambda: all(cloud.connected(i) for i in ids), RECONNECT_TIMEOUT)
        back: dict[str, float] = {}
        for connection in cloud.connections:
            back.setdefault(connection.charge_point, connection.opened_at - up)
        result["reconnect"] = {
            "all_connected": all_back,
            "connected": len(back),
            "median_s": round(statistics.median(back.values()), 1) if back else None,
            "last_s": round(max(back.values()), 1) if back else None,
            "cloud_down_s": round(up - edge.started, 1),
        }

        _log("outage: the cloud accepts the links; draining")
        peak_reset = edge.reset_peak()
        if profile is not None:
            edge.signal(signal.SIGUSR1)
        loop0, process0, s2 = edge.loop_cpu(), time.process_time(), edge.sample()
        cloud.boot_status = "Accepted"
        # Chargers keep being served during the drain: PROBE_CHARGERS more, in a process of
        # their own (this one is busy being the cloud), send a Heartbeat each per second
        # (not for the cloud's outbox, so the drain's count and check are unchanged).
        prober = await _start_probe(url)
        drained = await wait_for(lambda: delivered(cloud, chargers), 120 + sent / 50, 0.02)
        served = await _stop_probe(prober)
        s3, loop1, process1 = edge.sample(), edge.loop_cpu(), time.process_time()
        if profile is not None:
            edge.signal(signal.SIGUSR2)
        lasts = [r.at for c in chargers if (r := _last_delivered(cloud, c)) is not None]
        end = max(lasts) if drained else s3.at
        flip = s2.at
        boots = [
            r.at
            for c in chargers
            for r in cloud.received(c.id, "BootNotification")
            if r.at >= flip and r.accepted
        ]
        start = min(boots, default=flip)  # the cloud accepted the first link
        messages = sum(
            1
            for c in chargers
            for r in cloud.received(c.id)
            if r.at >= flip and r.action != "BootNotification"
        )
        seconds, span = end - start, s3.at - s2.at
        cpu = s3.cpu_s - s2.cpu_s
        rate = messages / seconds if seconds > 0 else 0.0
        pending_after, parked = await edge.pending()
        result["drain"] = {
            "complete": drained,
            "seconds": round(seconds, 2),
            "seconds_from_switch": round(end - flip, 2),
            "messages": messages,
            "outbox_rows_cleared": pending - pending_after,
            "messages_per_s": round(rate),
            "target_met": drained and rate >= DRAIN_TARGET,
            "edge_cpu_s": round(cpu, 2),
            "edge_cpu_pct": round(cpu / span * 100),
            "edge_cpu_us_per_message": round(cpu / max(messages, 1) * 1e6),
            **_split(cpu, loop1 - loop0, messages),
            "bytes_written_per_message": round(
                (s3.write_bytes - s2.write_bytes) / max(messages, 1)
            ),
            "bytes_written": s3.write_bytes - s2.write_bytes,
            "peak_rss_mb": _mb(s3.hwm_kb) if peak_reset else None,
            "peak_rss_sampled_mb": edge.peak_rss_mb(flip),
            "cloud_and_chargers_cpu_pct": round((process1 - process0) / span * 100),
            "pending_after": pending_after,
            "parked_after": parked,
            "charger_heartbeats": len(served),
            "charger_p50_ms": _percentile_ms(served, 0.50),
            "charger_p99_ms": _percentile_ms(served, 0.99),
            "charger_p99_target_met": bool(served) and _percentile_ms(served, 0.99) < 10.0,
        }
        check = check_delivery(cloud, chargers)
        check["outbox_empty"] = pending_after == 0 and parked == 0
        check["ok"] = check["ok"] and check["outbox_empty"] and drained
        result["check"] = check
        result["outbox_after"] = outbox_on_disk(edge.journal)
        result["data_dir_bytes_after"] = edge.data_bytes()
        result.update(await _wind_down(edge, chargers, profile))
        chargers = []
    finally:
        await close_chargers(chargers)
        await edge.stop()
        await cloud.stop()
    return result


async def _wind_down(edge: Edge, chargers: Sequence[Charger], profile: Path | None) -> Json:
    """Chargers closed and the edge stopped: its exit, and its profile's summary if taken."""
    await close_chargers(chargers)
    out: Json = {"edge": await edge.stop()}
    if profile is not None:
        found = await wait_for(profile.exists, 10)
        out["profile"] = profile_summary(profile) if found else {"error": "none written"}
    return out


async def _start_probe(url: str) -> asyncio.subprocess.Process:
    """`bench.heartbeat_probe` with PROBE_CHARGERS chargers, connected and booted."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.heartbeat_probe", "--url", url,
        "--first", str(PROBE_FIRST), "--count", str(PROBE_CHARGERS),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    if line.strip() != b"ready":
        process.kill()
        raise RuntimeError(f"the heartbeat probe did not start: {line!r}")
    return process


async def _stop_probe(process: asyncio.subprocess.Process) -> list[float]:
    """The probe's round trips (s), once its chargers stopped."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.close()
    out = await asyncio.wait_for(process.stdout.read(), 60)
    await process.wait()
    return [ms / 1000 for ms in json.loads(out)["latencies_ms"]]


def _percentile_ms(samples: Sequence[float], share: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 2)


# --- overhead online ----------------------------------------------------------------------


async def online(opts: Options, workdir: Path, *, link: bool) -> Json:
    """The online load with the cloud up, and `[upstream]` configured (`link`) or not."""
    cloud = Cloud()
    await cloud.start()
    name = "online-link" if link else "online-no-link"
    profile = workdir / f"{name}.prof" if opts.profile else None
    edge = Edge(workdir / name, cloud.url if link else None, profile=profile)
    chargers: list[BenchCharger] = []
    result: Json = {"link": link, "chargers": opts.chargers, "interval_s": opts.interval}
    try:
        await edge.start()
        tags = [id_tag(i) for i in range(1, opts.chargers + 1)]
        await asyncio.to_thread(seed_id_tags, edge.server, tags)
        url = f"ws://127.0.0.1:{edge.server.port}/ocpp/"
        chargers = await connect_chargers(url, opts.chargers, Stats(), opts.seed)
        await asyncio.gather(*(c.begin() for c in chargers))
        if link and not await wait_for(lambda: delivered(cloud, chargers), 60):
            raise RuntimeError("the cloud did not get the chargers' first messages in 60 s")
        await asyncio.sleep(SETTLE)

        stats = Stats()
        for c in chargers:
            c.stats = stats
        before = [len(c.sent) for c in chargers]
        if profile is not None:
            edge.signal(signal.SIGUSR1)
        s0, loop0 = edge.sample(), edge.loop_cpu()
        stats.w0, stats.w1 = s0.at, s0.at + opts.window
        counts = await asyncio.gather(
            *(c.periodic(s0.at, s0.at + opts.window, opts.interval) for c in chargers)
        )
        await asyncio.sleep(SETTLE)
        caught_up = not link or await wait_for(lambda: delivered(cloud, chargers), 30)
        s1, loop1 = edge.sample(), edge.loop_cpu()
        if profile is not None:
            edge.signal(signal.SIGUSR2)
        messages = sum(counts)
        cpu = s1.cpu_s - s0.cpu_s
        result.update(
            {
                "window_s": opts.window,
                "measured_s": round(s1.at - s0.at, 2),
                "messages": messages,
                "edge_cpu_us_per_message": round(cpu / messages * 1e6),
                "edge_cpu_pct": round(cpu / (s1.at - s0.at) * 100, 1),
                **_split(cpu, loop1 - loop0, messages),
                "bytes_written_per_message": round((s1.write_bytes - s0.write_bytes) / messages),
                "peak_rss_mb": _mb(s1.hwm_kb),
                "charger_round_trip_ms": round_trips(stats),
                "caught_up": caught_up,
            }
        )
        if link and caught_up:
            lags = sorted(
                (got.at - message.at) * 1000
                for c, first in zip(chargers, before, strict=True)
                for message, got in _pairs(cloud, c, first)
            )
            result["cloud_lag_ms"] = {
                "n": len(lags),
                "p50": round(percentile(lags, 50) or 0.0, 1),
                "p99": round(percentile(lags, 99) or 0.0, 1),
            }
        await asyncio.gather(*(c.end() for c in chargers))
        if link:
            await wait_for(lambda: delivered(cloud, chargers), 60)
            result["check"] = check_delivery(cloud, chargers)
        result.update(await _wind_down(edge, chargers, profile))
        chargers = []
    finally:
        await close_chargers(chargers)
        await edge.stop()
        await cloud.stop()
    return result


def _pairs(cloud: Cloud, charger: BenchCharger, first: int) -> list[tuple[Sent, Received]]:
    """The charger's MeterValues from its message `first` on, each with the cloud's record
    of it (the cloud's last ones: it got them in the charger's order, all of them)."""
    sent = [s for s in charger.sent[first:] if s.action == "MeterValues"]
    got = cloud.received(charger.id, "MeterValues")[-len(sent) :] if sent else []
    return list(zip(sent, got, strict=False))


def overhead(off: Json, on: Json) -> Json:
    """On / off of CPU and of bytes written per charger message."""
    cpu = on["edge_cpu_us_per_message"] / max(off["edge_cpu_us_per_message"], 1)
    written = on["bytes_written_per_message"] / max(off["bytes_written_per_message"], 1)
    return {
        "cpu_ratio": round(cpu, 2),
        "bytes_ratio": round(written, 2),
        "cpu_target_met": cpu <= OVERHEAD_TARGET,
        "bytes_target_met": written <= OVERHEAD_TARGET,
    }


# --- main ---------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m bench.upstream", description=__doc__.splitlines()[0]
    )
    p.add_argument("--quick", action="store_true", help="1 session of 60 MeterValues, 10 s")
    p.add_argument("--chargers", type=int, default=100)
    p.add_argument("--transactions", type=int, help="sessions per charger (4; quick 1)")
    p.add_argument("--meter-values", type=int, help="MeterValues per session (55; quick 60)")
    p.add_argument("--window", type=float, help="online load window, s (60; quick 10)")
    p.add_argument("--interval", type=float, default=1.0, help="online: s between MeterValues")
    p.add_argument("--phases", default="outage,overhead", help="outage, overhead, or both")
    p.add_argument("--profile", action="store_true", help="profile the drain and windows")
    p.add_argument("--batch", type=int, help="the outage only, the link reading N rows")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    a = p.parse_args(argv)
    phases = tuple(x for x in a.phases.split(",") if x)
    if a.batch is not None:
        phases = ("outage",)
    if not phases or not set(phases) <= {"outage", "overhead"}:
        p.error("--phases: outage, overhead, or both")
    if a.batch is not None and a.batch < 1:
        p.error("--batch: at least 1")
    return Options(
        chargers=a.chargers,
        transactions=a.transactions or (1 if a.quick else 4),
        meter_values=a.meter_values or (60 if a.quick else 55),
        window=a.window or (10.0 if a.quick else 60.0),
        interval=a.interval,
        phases=phases,
        profile=a.profile,
        batch=a.batch,
        out=a.out,
        seed=a.seed,
    )


def _log(text: str) -> None:
    print(f"[bench.upstream] {text}", file=sys.stderr, flush=True)


async def run(opts: Options) -> Json:
    """Every phase of `opts`, each edge on its own temporary data directory."""
    results: Json = {}
    workdir = Path(tempfile.mkdtemp(prefix="edge-bench-upstream-"))
    try:
        if "outage" in opts.phases:
            results["outage"] = r = await outage(opts, workdir)
            drain = r["drain"]
            _log(
                f"outage: {drain['messages']} messages drained in {drain['seconds']} s, "
                f"{drain['messages_per_s']}/s; check {'ok' if r['check']['ok'] else 'FAILED'}"
            )
        if "overhead" in opts.phases:
            found: Json = {}
            for link in (False, True):
                _log(f"online, link {'on' if link else 'off'}: {opts.window:g} s")
                found["on" if link else "off"] = await online(opts, workdir, link=link)
            found["ratio"] = overhead(found["off"], found["on"])
            results["online"] = found
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    opts = _parse(argv)
    raise_nofile_limit()
    info: Json = run_info("bench.upstream", argv)
    t0 = time.monotonic()
    results = run_loop(run(opts))
    info["total_seconds"] = round(time.monotonic() - t0)
    name = "upstream"
    if opts.profile:
        name += "-profile"
    if opts.batch is not None:
        name += f"-batch{opts.batch}"
    markdown = render(info, results)
    opts.out.mkdir(parents=True, exist_ok=True)
    (opts.out / f"{name}.md").write_text(markdown)
    (opts.out / f"{name}.json").write_text(json.dumps({"info": info, "results": results}, indent=1))
    if name == "upstream":
        (opts.out / "upstream-readme.md").write_text(readme_snippet(info, results))
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
