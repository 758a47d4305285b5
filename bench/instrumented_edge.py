"""`edge-csms` with a benchmark's instruments: cProfile switched by signals, and the cloud
link's outbox read size (`edge.upstream.link.BATCH`) changed for an experiment.

    python -m bench.instrumented_edge [--profile OUT.prof] [--batch N] serve --config FILE

Runs `edge.cli.main` with the remaining arguments, as ``python -m edge`` would.

- ``--profile OUT.prof``: SIGUSR1 starts cProfile, SIGUSR2 stops it and writes the
  statistics to OUT.prof (pstats format), so a benchmark profiles one phase only
  (`bench.upstream --profile` profiles the drain after an outage). Only the main
  thread, the event loop, is profiled, with that thread's CPU time as the clock
  (`time.thread_time`): the numbers are CPU seconds of the event loop, and the
  journal's writer and checkpoint threads are not in them. Profiling slows every
  Python call down: read the shares, not the absolute times.
- ``--batch N``: the link reads N outbox rows per message sent instead of
  `edge.upstream.link.BATCH` (50), to measure what that read costs. An experiment
  only: fewer rows also mean fewer offline statuses coalesced.
"""

from __future__ import annotations

import argparse
import cProfile
import signal
import sys
import time
from pathlib import Path
from types import FrameType

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.instrumented_edge", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--profile", type=Path, help="pstats output, written on SIGUSR2")
    parser.add_argument("--batch", type=int, help="outbox rows the link reads per message")
    parser.add_argument("edge", nargs=argparse.REMAINDER, help="edge-csms's own arguments")
    args = parser.parse_args(argv)
    if args.batch is not None:
        from edge.upstream import link

        link.BATCH = args.batch
    if args.profile is not None:
        out: Path = args.profile
        profiler = cProfile.Profile(time.thread_time)

        def start(signum: int, frame: FrameType | None) -> None:
            profiler.enable()

        def stop(signum: int, frame: FrameType | None) -> None:
            profiler.disable()
            profiler.dump_stats(out)

        signal.signal(signal.SIGUSR1, start)
        signal.signal(signal.SIGUSR2, stop)
    from edge.cli import main as edge_main

    return edge_main(args.edge)


if __name__ == "__main__":
    sys.exit(main())
