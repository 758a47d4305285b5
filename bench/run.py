"""Run every scenario against edge-csms and the ocpp-package baseline; write the report.

    .venv/bin/python -m bench            # full run (several minutes)
    .venv/bin/python -m bench --quick    # smaller and shorter, about a minute

Writes bench/results/latest.md and bench/results/latest.json (git-ignored) and
prints the Markdown. Server logs go to bench/results/logs/.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.load import raise_nofile_limit
from bench.report import render
from bench.scenarios import (
    Settings,
    idle_rss,
    make_template,
    open_loop,
    reconnect_storm,
    saturation,
    wait_quiet,
)
from bench.servers import PYTHON

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = ("open", "saturation", "idle", "storm")
Scenario = Callable[[str, int, Settings], dict[str, Any]]


def _machine_info(workdir: Path, baseline_loop: str) -> dict[str, str]:
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    fs = subprocess.run(["df", "-T", str(workdir)], capture_output=True, text=True).stdout
    fs_type = fs.splitlines()[-1].split()[1] if fs.count("\n") >= 2 else "unknown"
    server_loop = subprocess.run(
        [PYTHON, "-c", "import uvloop; print('uvloop', uvloop.__version__)"],
        capture_output=True,
        text=True,
    ).stdout.strip()

    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "absent"

    return {
        "CPU": model,
        "cores": f"{os.cpu_count()} (available to us: {len(os.sched_getaffinity(0))})",
        "memory": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB",
        "kernel": platform.release(),
        "Python": platform.python_version(),
        "event loops": (
            f"edge-csms: {server_loop or 'asyncio (uvloop missing)'}; "
            f"baseline: {baseline_loop} (documented pattern: asyncio.run); load generator: uvloop"
        ),
        "packages": ", ".join(
            f"{p} {version(p)}" for p in ("websockets", "orjson", "ocpp", "uvloop", "edge-csms")
        ),
        "edge-csms code": _code_version(),
        "data dir filesystem": f"{fs_type} ({workdir})",
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "open files limit": str(raise_nofile_limit()),
    }


def _code_version() -> str:
    """HEAD, whether the tree is dirty, and a digest of edge/ as it is on disk now."""
    repo = Path(__file__).resolve().parent.parent
    git = ["git", "-C", str(repo)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "edge"], capture_output=True, text=True)
    digest = hashlib.sha256()
    for path in sorted((repo / "edge").rglob("*.py")):
        digest.update(path.read_bytes())
    state = "uncommitted changes in edge/" if dirty.stdout.strip() else "clean"
    return f"HEAD {head.stdout.strip()} ({state}); sha256(edge/**/*.py) {digest.hexdigest()[:12]}"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, 4 s windows")
    p.add_argument("--duration", type=float, help="measurement window per load scenario, s")
    p.add_argument("--ramp", type=float, help="load before the window opens, s")
    p.add_argument("--sizes", help="open-loop charger counts, comma-separated")
    p.add_argument(
        "--target-chargers",
        type=int,
        default=1000,
        help="open-loop size the CPU and p99 targets refer to",
    )
    p.add_argument("--saturation-connections", type=int)
    p.add_argument("--idle-chargers", type=int)
    p.add_argument("--storm-chargers", type=int)
    p.add_argument("--clients", type=int, default=2, help="load generator processes")
    p.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)}",
    )
    p.add_argument("--servers", default="edge,baseline", help="edge, baseline or both")
    p.add_argument("--baseline-loop", choices=["asyncio", "uvloop"], default="asyncio")
    p.add_argument(
        "--quiet-wait",
        type=float,
        help="before each run, wait up to this many s for other processes to go idle",
    )
    p.add_argument("--keep", action="store_true", help="keep the scratch data directories")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    quick = args.quick
    args.duration = args.duration or (4.0 if quick else 15.0)
    args.ramp = args.ramp if args.ramp is not None else (1.0 if quick else 3.0)
    args.sizes = [
        int(x) for x in (args.sizes or ("50,500" if quick else "50,500,1000,2000")).split(",")
    ]
    if quick and args.target_chargers not in args.sizes:
        args.target_chargers = args.sizes[-1]
    elif args.target_chargers not in args.sizes:
        args.sizes = sorted({*args.sizes, args.target_chargers})
    if args.quiet_wait is None:
        args.quiet_wait = 5.0 if quick else 30.0
    args.saturation_connections = args.saturation_connections or (100 if quick else 200)
    args.idle_chargers = args.idle_chargers or (500 if quick else 2000)
    args.storm_chargers = args.storm_chargers or (500 if quick else 2000)
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    raise_nofile_limit()
    out_dir: Path = args.out
    logdir = out_dir / "logs"
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir(parents=True)
    workdir = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    servers = [s for s in args.servers.split(",") if s]
    scenarios = [s for s in args.scenarios.split(",") if s]
    settings = Settings(
        workdir=workdir,
        logdir=logdir,
        duration=args.duration,
        ramp=args.ramp,
        clients=args.clients,
        baseline_loop=args.baseline_loop,
    )
    info: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": _machine_info(workdir, args.baseline_loop),
        "settings": (
            f"{args.duration:g} s windows after {args.ramp:g} s ramp; {args.clients} load "
            f"process(es); session = 3 StatusNotification, Authorize, StartTransaction, "
            f"{settings.meter_values} MeterValues, StopTransaction, Heartbeat; baseline loop "
            f"{args.baseline_loop}; fresh server process per scenario"
        ),
    }
    plan: list[tuple[str, Scenario, int]] = []
    if "open" in scenarios:
        plan += [(f"open-{n}", open_loop, n) for n in args.sizes]
    if "saturation" in scenarios:
        n = args.saturation_connections
        plan.append((f"saturation-{n}", saturation, n))
    if "idle" in scenarios:
        plan.append((f"idle-{args.idle_chargers}", idle_rss, args.idle_chargers))
    if "storm" in scenarios:
        plan.append((f"storm-{args.storm_chargers}", reconnect_storm, args.storm_chargers))
    results: dict[str, dict[str, Any]] = {}
    t0 = time.monotonic()
    try:
        if "edge" in servers:
            most = max(
                [*args.sizes, args.saturation_connections, args.idle_chargers, args.storm_chargers]
            )
            template, seconds = make_template(settings, most)
            settings = Settings(**{**_fields(settings), "template": template})
            info["seeding"] = f"{most} id tags seeded via PUT /api/id-tags in {seconds:.1f} s"
            print(f"[bench] {info['seeding']}", file=sys.stderr, flush=True)
        for name, scenario, n in plan:
            for kind in servers:
                print(f"[bench] {name} / {kind} ...", file=sys.stderr, flush=True)
                others = wait_quiet(args.quiet_wait)
                t = time.monotonic()
                try:
                    results[f"{name}/{kind}"] = scenario(kind, n, settings)
                except Exception as exc:
                    traceback.print_exc()
                    results[f"{name}/{kind}"] = {"server": kind, "failure": repr(exc)}
                results[f"{name}/{kind}"]["others_cores_before"] = others
                print(
                    f"[bench] {name} / {kind} done in {time.monotonic() - t:.0f} s: "
                    f"{_brief(results[f'{name}/{kind}'])}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    info["total_seconds"] = round(time.monotonic() - t0)
    markdown = render(info, results, args.target_chargers)
    markdown += f"\nTotal run time {info['total_seconds']} s.\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.md").write_text(markdown)
    (out_dir / "latest.json").write_text(json.dumps({"info": info, "results": results}, indent=1))
    print(markdown)
    return 0


def _fields(settings: Settings) -> dict[str, Any]:
    return {f: getattr(settings, f) for f in Settings.__dataclass_fields__}


def _brief(r: dict[str, Any]) -> str:
    keys = (
        "calls_per_s",
        "p99_ms",
        "cpu_ms_per_1000",
        "rss_after_mb",
        "all_booted_s",
        "refused",
        "failure",
    )
    return ", ".join(f"{k}={r[k]}" for k in keys if k in r)


if __name__ == "__main__":
    sys.exit(main())
