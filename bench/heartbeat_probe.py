"""Chargers in a process of their own, timing the edge's answers to their Heartbeats.

    python -m bench.heartbeat_probe --url ws://127.0.0.1:9000/ocpp/ --first 901 --count 20

`bench.upstream` runs it during the drain: timed in the benchmark's own process, whose
event loop is busy being the cloud, the round trips measured that loop as much as the
edge. This process connects and boots `--count` chargers (ids from `--first`), prints
``ready``, then each sends a Heartbeat every `--interval` s from a random phase until its
stdin closes (or `--seconds` pass), and prints one JSON line: the round trips in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time

from bench.load import Charger, LoadSpec
from bench.stats import Stats


async def _beat(charger: Charger, done: asyncio.Event, interval: float, out: list[float]) -> None:
    await asyncio.sleep(charger.rng.random() * interval)
    while not done.is_set():
        began = time.monotonic()
        if await charger.call("Heartbeat", {}) is not None:
            out.append((time.monotonic() - began) * 1000)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), interval)


async def _stdin_closed(done: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    done.set()


async def probe(url: str, first: int, count: int, interval: float, seconds: float) -> list[float]:
    spec = LoadSpec(url=url, first=first, count=count, warm_start=False, connect_concurrency=20)
    stats = Stats()
    rng = random.Random(first)
    chargers = [
        Charger(i, spec, stats, random.Random(rng.random())) for i in range(first, first + count)
    ]
    sem = asyncio.Semaphore(spec.connect_concurrency)
    await asyncio.gather(*(c.open(sem, time.monotonic()) for c in chargers))
    print("ready", flush=True)
    done = asyncio.Event()
    times: list[float] = []
    watcher = asyncio.ensure_future(_stdin_closed(done))
    try:
        beats = [asyncio.ensure_future(_beat(c, done, interval, times)) for c in chargers]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), seconds)
        done.set()
        await asyncio.gather(*beats)
    finally:
        watcher.cancel()
        await asyncio.gather(*(c.close() for c in chargers))
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="the edge's OCPP url, ending in /")
    p.add_argument("--first", type=int, default=901)
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--seconds", type=float, default=300.0, help="stop after this long at most")
    args = p.parse_args(argv)
    times = asyncio.run(probe(args.url, args.first, args.count, args.interval, args.seconds))
    print(json.dumps({"latencies_ms": [round(t, 3) for t in times]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
