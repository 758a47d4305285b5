"""The benchmark scenarios: drive load workers against one server and measure it.

Each function starts a fresh server process, runs one bounded scenario and
returns a flat dict of results (see bench/README.md for what each key means).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from bench.load import LoadSpec, id_tag, worker_main
from bench.servers import ProcSample, ServerProcess, proc_sample, seed_id_tags, start_server
from bench.stats import ACTIONS, TX_ACTIONS, merge, percentile

__all__ = [
    "Settings",
    "idle_rss",
    "make_template",
    "open_loop",
    "reconnect_storm",
    "saturation",
    "wait_quiet",
]

_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    workdir: Path  # scratch: data dirs of edge-csms
    logdir: Path  # server logs
    duration: float = 15.0  # s of measurement per load scenario
    ramp: float = 3.0  # s of load before the measurement window opens
    clients: int = 2  # load generator processes
    meter_values: int = 10  # MeterValues per session
    baseline_loop: str = "asyncio"
    storm_deadline: float = 60.0
    template: Path | None = None  # edge data dir with the id tags already seeded


def make_template(settings: Settings, tags: int) -> tuple[Path, float]:
    """An edge-csms data dir holding `tags` Accepted id tags (seeded via the HTTP API)."""
    work = settings.workdir / "template"
    shutil.rmtree(work, ignore_errors=True)
    server = start_server("edge", work)
    try:
        seconds = seed_id_tags(server, [id_tag(i) for i in range(tags)])
    finally:
        server.stop()
    shutil.copy(work / "edge.log", settings.logdir / "template-edge.log")
    return work / "data", seconds


def _start(kind: str, name: str, settings: Settings, port: int = 0) -> ServerProcess:
    work = settings.workdir / f"{name}-{kind}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if kind == "edge" and settings.template is not None and port == 0:
        shutil.copytree(settings.template, work / "data")
    return start_server(kind, work, port=port, baseline_loop=settings.baseline_loop)


def _finish(server: ServerProcess, name: str, settings: Settings, out: dict[str, Any]) -> None:
    seconds, code = server.stop()
    out["server_stop_s"] = round(seconds, 3)
    out["server_exit_code"] = code
    out["server_error_lines"] = server.error_lines
    out["server_warning_lines"] = server.warning_lines
    if server.error_lines:
        out["server_log_tail"] = server.tail(10)
    shutil.copy(server.log_path, settings.logdir / f"{name}-{server.kind}.log")


class Workers:
    """The load generator processes for one scenario."""

    def __init__(self, url: str, n: int, settings: Settings, **spec: Any) -> None:
        ctx = mp.get_context("spawn")
        k = max(1, min(settings.clients, n))
        self.pipes: list[Connection] = []
        self.procs: list[BaseProcess] = []
        first = 0
        for i in range(k):
            count = n // k + (1 if i < n % k else 0)
            s = LoadSpec(
                url=url,
                first=first,
                count=count,
                seed=1000 + i,
                meter_values=settings.meter_values,
                **spec,
            )
            first += count
            ours, theirs = ctx.Pipe()
            p = ctx.Process(target=worker_main, args=(s, theirs), daemon=True)
            p.start()
            theirs.close()
            self.pipes.append(ours)
            self.procs.append(p)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.pid is not None]

    def receive(self, expected: str, timeout: float) -> list[Any]:
        deadline = time.monotonic() + timeout
        out = []
        for pipe in self.pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"load workers: no {expected!r} within {timeout:.0f} s")
            kind, payload = pipe.recv()
            assert kind == expected, kind
            out.append(payload)
        return out

    def send(self, *message: Any) -> None:
        for pipe in self.pipes:
            pipe.send(message)

    def close(self) -> None:
        for p in self.procs:
            p.join(15)
            if p.is_alive():
                p.kill()
                p.join(5)


def _system_busy() -> float:
    """Seconds of CPU busy time of the whole machine (all cores) since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / _CLK_TCK


def wait_quiet(max_wait: float, threshold: float = 0.3) -> float:
    """Wait (at most `max_wait` s) until other processes use < `threshold` cores.

    The machine is shared; returns the cores in use by others when we went ahead.
    """
    deadline = time.monotonic() + max_wait
    while True:
        b0 = _system_busy()
        time.sleep(1.0)
        busy = _system_busy() - b0
        if busy < threshold or time.monotonic() >= deadline:
            return round(busy, 2)


def _sample_all(server: ServerProcess, workers: Workers) -> tuple[ProcSample, float, float]:
    client_cpu = 0.0
    for pid in workers.pids():
        client_cpu += proc_sample(pid).cpu_s
    return server.sample(), client_cpu, _system_busy()


def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _r(x: float | None, digits: int = 2) -> float | None:
    return None if x is None else round(x, digits)


def _run_load(kind: str, name: str, n: int, settings: Settings, **spec: Any) -> dict[str, Any]:
    server = _start(kind, name, settings)
    out: dict[str, Any] = {"server": kind, "chargers": n}
    workers = Workers(f"ws://127.0.0.1:{server.port}/ocpp/", n, settings, **spec)
    try:
        ready = workers.receive("ready", 120 + n / 10)
        out["connected"] = sum(r["alive"] for r in ready)
        out["warmup_s"] = _r(max(r["seconds"] for r in ready))
        t_start = time.monotonic() + 0.3
        w0 = t_start + settings.ramp
        w1 = w0 + settings.duration
        workers.send("go", t_start, w0, w1)
        _sleep_until(w0)
        s0, c0, b0 = _sample_all(server, workers)
        _sleep_until(w1)
        s1, c1, b1 = _sample_all(server, workers)
        merged = merge(workers.receive("done", 90))
    finally:
        workers.close()
        _finish(server, name, settings, out)
    window = s1.at - s0.at
    latency = merged["latency"]
    calls = sum(len(v) for v in latency.values())
    tx_calls = sum(len(latency[a]) for a in TX_ACTIONS)
    server_cpu = s1.cpu_s - s0.cpu_s
    client_cpu = c1 - c0
    written = s1.write_bytes - s0.write_bytes
    everything: list[float] = []
    per_action: dict[str, Any] = {}
    for action in ACTIONS:
        values = sorted(latency[action])
        everything.extend(values)
        if values:
            per_action[action] = {
                "n": len(values),
                "p50_ms": _r(percentile(values, 50)),
                "p99_ms": _r(percentile(values, 99)),
            }
    everything.sort()
    out.update(
        window_s=_r(window),
        calls=calls,
        calls_per_s=_r(calls / window, 1),
        p50_ms=_r(percentile(everything, 50)),
        p99_ms=_r(percentile(everything, 99)),
        max_ms=_r(everything[-1] if everything else None),
        actions=per_action,
        server_cpu_pct=_r(100 * server_cpu / window, 1),
        cpu_ms_per_1000=_r(1e6 * server_cpu / calls if calls else None, 1),
        client_cpu_pct=_r(100 * client_cpu / window, 1),
        client_cpu_ms_per_1000=_r(1e6 * client_cpu / calls if calls else None, 1),
        other_cpu_pct=_r(100 * max(0.0, (b1 - b0) - server_cpu - client_cpu) / window, 1),
        rss_mb=_r(s1.rss_kb / 1024, 1),
        peak_rss_mb=_r(s1.hwm_kb / 1024, 1),
        write_bytes=written,
        tx_calls=tx_calls,
        bytes_per_tx_message=_r(written / tx_calls, 0) if tx_calls else None,
        bytes_per_meter_values_upper=(
            _r(written / len(latency["MeterValues"]), 0) if latency["MeterValues"] else None
        ),
        window_errors=merged["window_errors"],
        errors=merged["errors"],
        connect_failures=merged["connect_failures"],
        late_sends=merged["late_sends"],
    )
    return out


def open_loop(kind: str, n: int, settings: Settings, rate: float = 1.0) -> dict[str, Any]:
    """N chargers, each sending about `rate` messages/s of the session mix."""
    out = _run_load(kind, f"open-{n}", n, settings, rate=rate)
    out["rate_per_charger"] = rate
    return out


def saturation(kind: str, n: int, settings: Settings) -> dict[str, Any]:
    """Closed loop: each connection sends its next call as soon as the answer arrives."""
    return _run_load(kind, f"saturation-{n}", n, settings, closed_loop=True)


def idle_rss(kind: str, n: int, settings: Settings) -> dict[str, Any]:
    """N chargers connect, boot and sit idle: RSS growth per idle connection."""
    name = f"idle-{n}"
    server = _start(kind, name, settings)
    out: dict[str, Any] = {"server": kind, "chargers": n}
    time.sleep(1.0)
    before = server.sample()
    workers = Workers(f"ws://127.0.0.1:{server.port}/ocpp/", n, settings, warm_start=False)
    try:
        ready = workers.receive("ready", 120 + n / 10)
        alive = sum(r["alive"] for r in ready)
        time.sleep(3.0)  # let the server settle (state flush, GC)
        after = server.sample()
        workers.send("stop")
        merged = merge(workers.receive("done", 60))
    finally:
        workers.close()
        _finish(server, name, settings, out)
    booted = sorted(merged["booted_at"])
    out.update(
        connected=alive,
        connect_boot_s=_r(booted[-1] if booted else None),
        rss_before_mb=_r(before.rss_kb / 1024, 1),
        rss_after_mb=_r(after.rss_kb / 1024, 1),
        peak_rss_mb=_r(after.hwm_kb / 1024, 1),
        rss_per_conn_kb=_r((after.rss_kb - before.rss_kb) / alive, 1) if alive else None,
        cpu_s_connect_boot=_r(after.cpu_s - before.cpu_s),
        errors=merged["errors"],
        connect_failures=merged["connect_failures"],
    )
    return out


def reconnect_storm(kind: str, n: int, settings: Settings) -> dict[str, Any]:
    """N chargers booted; restart the server; all reconnect at once and boot."""
    name = f"storm-{n}"
    first = _start(kind, name, settings)
    port = first.port
    out: dict[str, Any] = {"server": kind, "chargers": n}
    second: ServerProcess | None = None
    workers = Workers(f"ws://127.0.0.1:{port}/ocpp/", n, settings)
    try:
        ready = workers.receive("ready", 120 + n / 10)
        out["connected_before"] = sum(r["alive"] for r in ready)
        stop_s, code = first.stop()
        out.update(
            first_stop_s=_r(stop_s), first_exit_code=code, first_error_lines=first.error_lines
        )
        t_restart = time.monotonic()
        # Same data dir, port and log file: the chargers' URL does not change.
        second = start_server(
            kind, first.log_path.parent, port=port, baseline_loop=settings.baseline_loop
        )
        out["restart_s"] = _r(time.monotonic() - t_restart)
        before = second.sample()
        t_go = time.monotonic()
        workers.send("reconnect", t_go, t_go + settings.storm_deadline)
        merged = merge(workers.receive("done", settings.storm_deadline + 60))
        after = second.sample()
    finally:
        workers.close()
        if second is not None:
            _finish(second, name, settings, out)
        else:
            first.stop()
    connected = sorted(merged["connected_at"])
    booted = sorted(merged["booted_at"])
    failures = merged["connect_failures"]
    out.update(
        reconnected=len(connected),
        booted=len(booted),
        all_connected_s=_r(connected[-1]) if len(connected) == n else None,
        all_booted_s=_r(booted[-1]) if len(booted) == n else None,
        boot_p50_s=_r(percentile(booted, 50)),
        boot_p99_s=_r(percentile(booted, 99)),
        failed_handshakes=sum(failures.values()),
        refused=sum(v for k, v in failures.items() if k == "refused" or k.startswith("http_")),
        connect_failures=failures,
        errors=merged["errors"],
        storm_cpu_s=_r(after.cpu_s - before.cpu_s),
        peak_rss_mb=_r(after.hwm_kb / 1024, 1),
    )
    return out
