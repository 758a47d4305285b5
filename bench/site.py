"""Site load balancing benchmark: how fast the control loop reacts, what a cycle costs.

    .venv/bin/python -m bench.site                # 10, 50 and 200 chargers: under 3 minutes
    .venv/bin/python -m bench.site --quick        # shorter window, 3 steps: under 2 minutes
    .venv/bin/python -m bench.site --sizes 200    # one size

For each size, a real `edge.app.App` with a grid meter runs in this process (instrumented:
every `SiteController.cycle` is timed), and a site simulator runs in a worker process:
a real Modbus TCP SDM630 (`drivers.serve_meter`) showing base load + every charger's draw,
and N chargers on real WebSockets, each with a transaction (started while the meter is
still down, see `SimSite.connect`). Measured:

- **step → leases**: the base load steps up on every phase (by 2 A per charger), which
  lowers every charger's fair share by 2 A (16 → 14 → 12 …). Time from the moment the
  meter serves the new value until every charger has received a lower lease, split
  into the wait for the next meter poll and the time from that reading on. One step
  back to the start measures a raise (bounded below by ``min_update_interval``).
- **CPU per control cycle**: `time.thread_time()` around every ``cycle()`` (this
  thread only), and `time.process_time()` as `SiteController.cycle_cpu_s` measures it
  (it also counts the journal and flush threads running meanwhile).
- **steady state**: SetChargingProfile calls per charger per minute over a window with
  constant meter and draws, at a short lease (``--lease-time``, 12 s) for speed. A lease
  is refreshed once every ``lease_time / 2``, so calls/min = 120 / lease_time + limit
  changes/min (and safe profiles sent again); at the default 60 s lease that is
  2 / min + the same changes.

The simulated EV follows its limit at once (min(limit, 32 A), 0 below 6 A). Its
charger reports the new draw at once (MeterValues with Current.Import per phase) and
every ``--meter-values`` s; a lower draw shows on the meter at once, a higher one only
once the charger's report was answered. That is the best case for the controller's
estimate of the non-EV load (meter minus reported draws); `bench.site_plot` shows a
realistic charger. Results: ``bench/results/site.json`` and ``site.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import math
import multiprocessing as mp
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

from bench.load import raise_nofile_limit
from bench.site_fleet import (
    BASE_A,
    EPS_A,
    MARGIN_A,
    SHARE_A,
    WorkerSpec,
    fuse_a,
    id_tag,
    recv,
    run_loop,
    worker_main,
)
from edge.app import App
from edge.config import (
    Config,
    MeterConfig,
    OcppConfig,
    SiteConfig,
    StorageConfig,
    WebConfig,
)
from edge.site.controller import SiteController

__all__ = ["Orchestrator", "Probe", "bench_config", "machine", "main", "seed_tags"]

RESULTS = Path(__file__).resolve().parent / "results"
API_TOKEN = "bench-site-token-0123456789abcdef"
STEP_A = 2.0  # each step lowers every share by this much (above the 1 A hysteresis)
LIMIT_TOLERANCE_A = 0.25  # float32 meter registers: a share may come out 0.1 A lower
Json = dict[str, Any]


# --- the CSMS side (this process) ---------------------------------------------------------


@dataclass(slots=True)
class Cycle:
    """One control cycle as the probe saw it."""

    at: float  # monotonic at the start
    thread_s: float
    process_s: float
    spawned: int  # SetChargingProfile jobs started (one per charger: safe and/or lease)
    meter_a: float | None  # the reading it judged, L1
    read_at: float | None  # when that reading was taken (monotonic)
    collections: int  # garbage collections that ran inside the cycle


def _collections() -> int:
    return sum(generation["collections"] for generation in gc.get_stats())


class Probe:
    """Times every `SiteController.cycle` and counts the jobs it spawns (no product change:
    both are instance attributes replaced by wrappers)."""

    def __init__(self, site: SiteController) -> None:
        self.site = site
        self.cycles: list[Cycle] = []
        self.spawned = 0
        cycle, spawn = site.cycle, site.spawn

        def counting_spawn(coroutine: Coroutine[Any, Any, None]) -> None:
            self.spawned += 1
            spawn(coroutine)

        def timed_cycle() -> None:
            before = self.spawned
            at = time.monotonic()
            collections = _collections()
            thread0, process0 = time.thread_time(), time.process_time()
            cycle()
            thread1, process1 = time.thread_time(), time.process_time()
            reading = site.grid.reading
            self.cycles.append(
                Cycle(
                    at,
                    thread1 - thread0,
                    process1 - process0,
                    self.spawned - before,
                    reading.current_a[0] if reading is not None else None,
                    reading.monotonic if reading is not None else None,
                    _collections() - collections,
                )
            )

        site.spawn = counting_spawn
        site.cycle = timed_cycle  # type: ignore[method-assign]


def quiet_log_handlers() -> None:
    """Run as a program: warnings are counted (WarningCounter), not printed. Called from
    a test (the root logger has handlers already, e.g. pytest's), nothing changes: the
    handlers are not ours to quiet for the rest of the session."""
    root = logging.getLogger()
    if root.handlers:
        return
    logging.basicConfig(level=logging.WARNING)
    for handler in root.handlers:
        handler.setLevel(logging.ERROR)


class WarningCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.first) < 5:
            self.first.append(f"{record.name}: {record.getMessage()}"[:300])


def machine() -> str:
    """The machine the results were measured on, as the reports name it."""
    return f"{os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.2f}"


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "CPU unknown"


def run_info(module: str, argv: list[str] | None) -> dict[str, str]:
    """When, where and how a benchmark ran, for the head of its results."""
    args = sys.argv[1:] if argv is None else argv
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "cpu": cpu_model(),
        "python": sys.version.split()[0],
        "command": " ".join([f"python -m {module}", *args]),
    }


def bench_config(
    data_dir: Path,
    meter_port: int,
    fuse: float,
    *,
    poll_interval: float = 1.0,
    lease_time: float = 60.0,
    min_update_interval: float = 5.0,
    margin: float = MARGIN_A,
) -> Config:
    """Loopback, ephemeral ports, a known API token; the site defaults otherwise."""
    return Config(
        ocpp=OcppConfig(host="127.0.0.1", port=0, unknown_chargers="accept"),
        web=WebConfig(host="127.0.0.1", port=0, api_token=API_TOKEN),
        storage=StorageConfig(data_dir=data_dir),
        meter=MeterConfig(
            driver="sdm630", host="127.0.0.1", port=meter_port, poll_interval=poll_interval
        ),
        site=SiteConfig(
            max_current=(fuse, fuse, fuse),
            margin=margin,
            lease_time=lease_time,
            min_update_interval=min_update_interval,
        ),
    )


async def seed_tags(app: App, tags: Sequence[str]) -> None:
    """Accept every tag through the operator API."""
    base = f"http://127.0.0.1:{app.web_port}/api/id-tags/"
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    sem = asyncio.Semaphore(16)
    async with aiohttp.ClientSession() as session:

        async def put(tag: str) -> None:
            async with (
                sem,
                session.put(base + tag, json={"status": "Accepted"}, headers=headers) as resp,
            ):
                if resp.status not in (200, 201):
                    raise RuntimeError(f"PUT id tag {tag}: HTTP {resp.status}")

        await asyncio.gather(*(put(tag) for tag in tags))


async def wait_shares(
    site: SiteController, chargers: int, share: float, timeout: float, hold: float = 1.5
) -> Json:
    """Wait until every charger holds a lease at its fair `share`, or up to the hysteresis
    below it (a lower previous limit within the hysteresis is kept), unchanged for `hold` s.

    Returns the seconds it took (None: not within `timeout`) and the leases' range.
    """
    t0 = time.monotonic()
    low = share - site.site.hysteresis
    since: float | None = None
    seen: list[float | None] = []  # the leases since `since`
    while (now := time.monotonic()) - t0 < timeout:
        controls = list(site.controls.values())
        leases = [c.lease_a for c in controls]
        ok = len(controls) == chargers and all(
            c.transactions
            and not c.busy
            and c.lease_a is not None
            and low - EPS_A <= c.lease_a <= share + LIMIT_TOLERANCE_A
            for c in controls
        )
        if not ok:
            since = None
        elif since is None or leases != seen:
            since, seen = now, leases
        elif now - since >= hold:
            known = [a for a in leases if a is not None]
            return {"s": round(since - t0, 2), "lease_min_a": min(known), "lease_max_a": max(known)}
        await asyncio.sleep(0.05)
    controls = list(site.controls.values())
    return {
        "s": None,
        "leases_a": dict(Counter(str(c.lease_a) for c in controls).most_common(6)),
        "busy": sum(c.busy for c in controls),
        "idle": sum(not c.transactions for c in controls),
        "controls": len(controls),
    }


def _summary(values: Sequence[float], scale: float = 1000.0, digits: int = 3) -> Json:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return {
        "n": len(values),
        "mean": round(statistics.fmean(values) * scale, digits),
        "median": round(statistics.median(values) * scale, digits),
        "p99": round(p99 * scale, digits),
        "max": round(ordered[-1] * scale, digits),
    }


@dataclass(slots=True)
class Options:
    sizes: list[int]
    window: float
    repeats: int
    lease_time: float
    poll_interval: float
    min_update_interval: float
    meter_values_every: float
    settle_timeout: float
    out: Path
    seed: int = 1


class Orchestrator:
    """One size: the worker process, the App, the phases."""

    def __init__(self, n: int, opts: Options) -> None:
        self.n = n
        self.opts = opts
        self.rng = random.Random(opts.seed * 1000 + n)
        self.conn: Connection | None = None

    async def ask(self, message: tuple[Any, ...], timeout: float) -> Any:
        assert self.conn is not None
        self.conn.send(message)
        reply = await recv(self.conn, timeout)
        return reply[1]

    def _step_cycles(self, probe: Probe, step: Json, threshold: float) -> Json:
        """The control cycles of one step: the first that saw the new reading, those that sent."""
        t0 = step["t0"]
        times = step["times_s"]
        end = t0 + (times[-1] if times else 0.0)
        rising = step["meter_after_a"] > step["meter_before_a"]
        seen = next(
            (
                c
                for c in probe.cycles
                if c.at >= t0 and c.meter_a is not None and (c.meter_a > threshold) == rising
            ),
            None,
        )
        out: Json = {}
        if seen is not None and seen.read_at is not None:
            out["reading_s"] = seen.read_at - t0
            out["cycle_s"] = seen.at - t0
            out["cycle_thread_ms"] = round(seen.thread_s * 1000, 3)
            out["cycle_spawned"] = seen.spawned
            if step["all_s"] is not None:
                out["reading_to_all_s"] = t0 + step["all_s"] - seen.read_at
            if step["first_s"] is not None:
                out["reading_to_first_s"] = t0 + step["first_s"] - seen.read_at
        out["cycles_sending"] = sum(1 for c in probe.cycles if t0 <= c.at <= end and c.spawned)
        return out

    async def run(self) -> Json:
        opts = self.opts
        n = self.n
        ctx = mp.get_context("spawn")
        ours, theirs = ctx.Pipe()
        self.conn = ours
        spec = WorkerSpec(n, meter_values_every=opts.meter_values_every, seed=opts.seed)
        proc = ctx.Process(target=worker_main, args=(spec, theirs), daemon=True)
        proc.start()
        theirs.close()
        data_dir = Path(tempfile.mkdtemp(prefix="edge-bench-site-"))
        warnings = WarningCounter()
        logging.getLogger().addHandler(warnings)
        result: Json = {"chargers": n, "fuse_a": fuse_a(n)}
        try:
            _, port = await recv(ours, 60)
            config = bench_config(
                data_dir,
                port,
                fuse_a(n),
                poll_interval=opts.poll_interval,
                lease_time=opts.lease_time,
                min_update_interval=opts.min_update_interval,
            )
            async with App(config) as app:
                assert app.site is not None
                gc.freeze()  # as `edge-csms serve` does once started
                probe = Probe(app.site)
                await seed_tags(app, [id_tag(i) for i in range(1, n + 1)])
                ready = await self.ask(("connect", f"ws://127.0.0.1:{app.ocpp_port}/ocpp/"), 120)
                result["connect"] = ready
                _log(f"{n}: {ready['charging']} charging, waiting for the fair share")
                settle = await wait_shares(app.site, n, SHARE_A, opts.settle_timeout)
                result["settle_s"] = settle["s"]
                result["settled_leases_a"] = [settle.get("lease_min_a"), settle.get("lease_max_a")]
                if settle["s"] is None:
                    result["unsettled"] = settle
                    _log(f"{n}: not settled after {opts.settle_timeout:g} s: {settle}")
                first = len(probe.cycles)  # CPU: the cycles with every charger charging
                result["steady"] = await self._steady(app.site, probe)
                result["steps_down"], result["step_up"] = await self._steps(app.site, probe)
                result["cycle_cpu"] = self._cycle_cpu(probe.cycles[first:])
                result["worker"] = await self.ask(("stop",), 60)
            gc.unfreeze()  # the next size starts from a collectable heap
        finally:
            logging.getLogger().removeHandler(warnings)
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
            ours.close()
            shutil.rmtree(data_dir, ignore_errors=True)
        result["warnings"] = warnings.count
        result["first_warnings"] = warnings.first
        return result

    async def _steady(self, site: SiteController, probe: Probe) -> Json:
        opts = self.opts
        cpu0, cycles0, spawned0 = time.process_time(), len(probe.cycles), probe.spawned
        await self.ask(("count",), 30)
        await asyncio.sleep(opts.window)
        counted = await self.ask(("counted",), 30)
        cpu = time.process_time() - cpu0
        seconds = counted["seconds"]
        per = counted["per_charger"]
        leases = [a for a, _, _ in per]
        safe = sum(s for _, s, _ in per)
        changes = sum(c for _, _, c in per)
        minute = 60.0 / seconds
        measured = (sum(leases) + safe) / len(per) * minute
        refresh = 120.0 / opts.lease_time
        change_rate = (changes + safe) / len(per) * minute
        window_cycles = probe.cycles[cycles0:]
        return {
            "window_s": round(seconds, 2),
            "lease_time_s": opts.lease_time,
            "calls_per_charger_per_min": round(measured, 2),
            "refresh_per_min_expected": round(refresh, 2),
            "changes_per_charger_per_min": round(change_rate, 3),
            "default_lease_calls_per_charger_per_min": round(2.0 + change_rate, 3),
            "leases_per_charger_min": min(leases),
            "leases_per_charger_max": max(leases),
            "safe_resends": safe,
            "limit_changes": changes,
            "cycles": len(window_cycles),
            "jobs_spawned": probe.spawned - spawned0,
            "app_cpu_pct": round(cpu / seconds * 100, 1),
            "cycles_cpu_pct": round(sum(c.thread_s for c in window_cycles) / seconds * 100, 2),
        }

    async def _steps(self, site: SiteController, probe: Probe) -> tuple[list[Json], Json]:
        opts = self.opts
        n = self.n
        downs: list[Json] = []
        timeout = 10.0 + 2 * opts.poll_interval
        for k in range(1, opts.repeats + 1):
            await asyncio.sleep(self.rng.uniform(0.0, opts.poll_interval))  # any poll phase
            cpu0 = time.process_time()
            step = await self.ask(("step", BASE_A + k * STEP_A * n, timeout), timeout + 30)
            step["app_cpu_ms"] = round((time.process_time() - cpu0) * 1000, 1)
            threshold = (step["meter_before_a"] + step["meter_after_a"]) / 2
            step.update(self._step_cycles(probe, step, threshold))
            share = SHARE_A - k * STEP_A
            settle = await wait_shares(site, n, share, opts.settle_timeout)
            step["share_a"] = share
            step["settled_s"] = settle["s"]
            step["settled_leases_a"] = [settle.get("lease_min_a"), settle.get("lease_max_a")]
            if settle["s"] is None:
                step["unsettled"] = settle
                _log(f"{n}: not settled at {share:g} A after {opts.settle_timeout:g} s: {settle}")
            downs.append(step)
            _log(f"{n}: step {k}: {_brief_step(step)}")
        await asyncio.sleep(self.rng.uniform(0.0, opts.poll_interval))
        up_timeout = opts.min_update_interval + 10.0 + 2 * opts.poll_interval
        up = await self.ask(("step", BASE_A, up_timeout), up_timeout + 30)
        threshold = (up["meter_before_a"] + up["meter_after_a"]) / 2
        up.update(self._step_cycles(probe, up, threshold))
        _log(f"{n}: step back up: {_brief_step(up)}")
        return downs, up

    def _cycle_cpu(self, cycles: Sequence[Cycle]) -> Json:
        quiet = [c.thread_s for c in cycles if not c.spawned]
        sending = [c.thread_s for c in cycles if c.spawned]
        full = [c.thread_s for c in cycles if c.spawned >= self.n]
        return {
            "cycles": len(cycles),
            "thread_ms": _summary([c.thread_s for c in cycles]),
            "process_ms": _summary([c.process_s for c in cycles]),
            "quiet_thread_ms": _summary(quiet),
            "sending_thread_ms": _summary(sending),
            "all_chargers_thread_ms": _summary(full),
            "with_gc": len([c for c in cycles if c.collections]),
            "without_gc_thread_ms": _summary([c.thread_s for c in cycles if not c.collections]),
        }


def _brief_step(step: Json) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value * 1000:.0f} ms"

    return (
        f"all {ms(step.get('all_s'))} after the meter change (reading at "
        f"{ms(step.get('reading_s'))}, then {ms(step.get('reading_to_all_s'))}), "
        f"{step['received']} received, {step['missing']} missing"
    )


def _log(text: str) -> None:
    print(f"[bench.site] {text}", file=sys.stderr, flush=True)


# --- report ---------------------------------------------------------------------------------


Getter = Callable[[Json], str]


def _ms(values: Sequence[float | None], how: Callable[[Sequence[float]], float]) -> str:
    """`how` of the known values in ms; the count of unknown ones (steps that timed out)."""
    known = [v for v in values if v is not None]
    if not known:
        return "-"
    text = f"{how(known) * 1000:.0f}"
    return text if len(known) == len(values) else f"{text} ({len(values) - len(known)} timed out)"


def _dig(r: Json, path: str) -> Any:
    value: Any = r
    for key in path.split("."):
        value = value[key]
    return value


def _steps(key: str, how: Callable[[Sequence[float]], float]) -> Getter:
    return lambda r: _ms([s.get(key) for s in r["steps_down"]], how)


def _number(path: str, digits: int) -> Getter:
    return lambda r: f"{_dig(r, path):.{digits}f}"


def _steady_calls(r: Json) -> str:
    steady = r["steady"]
    return (
        f"{steady['calls_per_charger_per_min']:.2f} (lease {steady['lease_time_s']:g} s: "
        f"{steady['refresh_per_min_expected']:g} refreshes)"
    )


def _connect(r: Json) -> str:
    return f"{r['connect']['boot_s']:.1f} / {r['connect']['start_s']:.1f}"


def _leases(r: Json) -> str:
    low, high = r["settled_leases_a"]
    return f"{low:g} / {high:g}"


def _no_gc(r: Json) -> str:
    cpu = r["cycle_cpu"]
    return f"{cpu['without_gc_thread_ms']['max']:.2f} ({cpu['with_gc']} cycles with one)"


def _tail(r: Json) -> str:
    cpu = r["cycle_cpu"]["thread_ms"]
    return f"{cpu['p99']:.2f} / {cpu['max']:.2f}"


ROWS: list[tuple[str, Getter]] = [
    (
        "load steps (base load +2 A per charger: every share 2 A lower)",
        lambda r: str(len(r["steps_down"])),
    ),
    (
        "**meter change → every charger has its lower lease**, median (ms)",
        _steps("all_s", statistics.median),
    ),
    ("… max (ms)", _steps("all_s", max)),
    (
        "… of which waiting for the next meter poll, median (ms)",
        _steps("reading_s", statistics.median),
    ),
    (
        "reading → first lease received, median (ms)",
        _steps("reading_to_first_s", statistics.median),
    ),
    (
        "**reading → every lease received**, median (ms)",
        _steps("reading_to_all_s", statistics.median),
    ),
    ("… max (ms)", _steps("reading_to_all_s", max)),
    (
        "control cycles that sent, per step (max)",
        lambda r: str(max(s["cycles_sending"] for s in r["steps_down"])),
    ),
    (
        "CSMS process CPU per step, median (ms)",
        lambda r: f"{statistics.median(s['app_cpu_ms'] for s in r['steps_down']):.0f}",
    ),
    (
        "raise (base load back): meter change → every charger raised (ms)",
        lambda r: _ms([r["step_up"].get("all_s")], max),
    ),
    ("control cycles timed", lambda r: str(r["cycle_cpu"]["cycles"])),
    ("**CPU per control cycle**, mean (ms, thread_time)", _number("cycle_cpu.thread_ms.mean", 2)),
    ("… cycles sending nothing, median (ms)", _number("cycle_cpu.quiet_thread_ms.median", 2)),
    (
        "… cycles sending to every charger, median (ms)",
        _number("cycle_cpu.all_chargers_thread_ms.median", 2),
    ),
    ("… p99 / max over all cycles (ms)", _tail),
    ("… max over cycles without a garbage collection (ms)", _no_gc),
    (
        "… mean as `cycle_cpu_s` measures it (process_time, ms)",
        _number("cycle_cpu.process_ms.mean", 2),
    ),
    ("steady: SetChargingProfile per charger per minute, measured", _steady_calls),
    (
        "… of which limit changes and safe re-sends",
        _number("steady.changes_per_charger_per_min", 2),
    ),
    (
        "**steady: SetChargingProfile per charger per minute at the default 60 s lease**",
        _number("steady.default_lease_calls_per_charger_per_min", 2),
    ),
    ("steady: CSMS process CPU (% of one core)", _number("steady.app_cpu_pct", 1)),
    ("… of which control cycles (%)", _number("steady.cycles_cpu_pct", 2)),
    ("first reading → every charger at its share (s)", _number("settle_s", 1)),
    ("… leases then, min / max (A)", _leases),
    ("connect + boot / start transactions (s)", _connect),
    ("warnings logged by the CSMS", lambda r: str(r["warnings"])),
    ("simulator errors", lambda r: str(sum(r["worker"]["errors"].values()))),
]


def render(info: Json, results: dict[str, Json]) -> str:
    """The results as a Markdown table, one column per size."""
    sizes = list(results)
    lines = [
        "# Site load balancing benchmark",
        "",
        *(f"- {k}: {v}" for k, v in info.items()),
        "",
        "| | " + " | ".join(f"{results[s]['chargers']} chargers" for s in sizes) + " |",
        "|---|" + "--:|" * len(sizes),
    ]
    for label, get in ROWS:
        cells = []
        for s in sizes:
            try:
                cells.append(get(results[s]))
            except (KeyError, TypeError, ValueError, IndexError):
                cells.append("-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.site", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="shorter steady window, 3 steps")
    p.add_argument("--sizes", default="10,50,200", help="charger counts, comma-separated")
    p.add_argument("--window", type=float, help="steady-state window, s (15; quick 6)")
    p.add_argument("--repeats", type=int, help="load steps per size, at most 5 (5; quick 3)")
    p.add_argument("--lease-time", type=float, default=12.0, help="the site's lease_time, s")
    p.add_argument("--poll-interval", type=float, default=1.0, help="meter poll interval, s")
    p.add_argument("--min-update-interval", type=float, default=5.0, help="between raises, s")
    p.add_argument(
        "--meter-values", type=float, default=10.0, help="periodic MeterValues interval, s"
    )
    p.add_argument("--settle-timeout", type=float, default=40.0, help="s")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = p.parse_args(argv)
    args.window = args.window or args.lease_time * (1.0 if args.quick else 2.0)
    args.repeats = args.repeats or (3 if args.quick else 5)
    if not 1 <= args.repeats <= 5:
        p.error("--repeats: 1 to 5 (the share goes from 16 A down to 6 A in 2 A steps)")
    return args


async def _main(opts: Options) -> dict[str, Json]:
    results: dict[str, Json] = {}
    for n in opts.sizes:
        t = time.monotonic()
        _log(f"{n} chargers ...")
        results[str(n)] = await Orchestrator(n, opts).run()
        _log(f"{n} chargers done in {time.monotonic() - t:.0f} s")
    return results


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    raise_nofile_limit()
    quiet_log_handlers()
    opts = Options(
        sizes=[int(x) for x in args.sizes.split(",") if x],
        window=args.window,
        repeats=args.repeats,
        lease_time=args.lease_time,
        poll_interval=args.poll_interval,
        min_update_interval=args.min_update_interval,
        meter_values_every=args.meter_values,
        settle_timeout=args.settle_timeout,
        out=args.out,
        seed=args.seed,
    )
    t0 = time.monotonic()
    described = machine()
    results = run_loop(_main(opts))
    info = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": described,
        "settings": (
            f"poll {opts.poll_interval:g} s, lease {opts.lease_time:g} s, min update interval "
            f"{opts.min_update_interval:g} s, hysteresis 1 A, margin {MARGIN_A:g} A; "
            f"3-phase EVs; share {SHARE_A:g} A at base load {BASE_A:g} A; steady window "
            f"{opts.window:g} s; periodic MeterValues every {opts.meter_values_every:g} s"
        ),
        "total_seconds": round(time.monotonic() - t0),
    }
    markdown = render(info, results)
    opts.out.mkdir(parents=True, exist_ok=True)
    (opts.out / "site.md").write_text(markdown)
    (opts.out / "site.json").write_text(json.dumps({"info": info, "results": results}, indent=1))
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
