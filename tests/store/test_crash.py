"""kill -9 at random moments loses nothing acknowledged and never prevents a restart."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.store import DocumentStore, Journal

WRITER = Path(__file__).with_name("crash_writer.py")
REPO = Path(__file__).resolve().parents[2]
KILLS = 25
TIME_SCALE = float(os.environ.get("EDGE_TEST_TIME_SCALE", "1"))


class Acknowledged:
    """Everything the children reported as durable, across all runs."""

    def __init__(self) -> None:
        self.version = 0
        self.started: set[int] = set()
        self.samples: dict[int, int] = {}
        self.stopped: set[int] = set()

    def read(self, output: bytes) -> None:
        # A line cut by the kill has no newline: it was never acknowledged.
        for line in output.decode().split("\n")[:-1]:
            kind, *args = line.split()
            if kind == "D":
                self.version = max(self.version, int(args[0]))
            elif kind == "T":
                assert int(args[0]) not in self.started, f"transaction id {args[0]} reused"
                self.started.add(int(args[0]))
            elif kind == "S":
                self.samples[int(args[0])] = max(self.samples.get(int(args[0]), 0), int(args[1]))
            elif kind == "P":
                self.stopped.add(int(args[0]))


def run_and_kill(data_dir: Path, rng: random.Random) -> bytes:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, str(WRITER), str(data_dir)], stdout=subprocess.PIPE, env=env
    )
    # From 0.05 s (still importing or opening) to well into the write loop.
    time.sleep(rng.uniform(0.05, 0.5) * TIME_SCALE)
    child.send_signal(signal.SIGKILL)
    output, _ = child.communicate(timeout=10)
    assert child.returncode == -signal.SIGKILL, "the writer died before the kill"
    return output


async def check(data_dir: Path, acked: Acknowledged) -> None:
    store = DocumentStore(data_dir / "state.json")
    doc = store.table("state").get(doc_id=1)
    assert (doc["version"] if doc else 0) >= acked.version  # type: ignore[index, call-overload]
    store.close()
    async with Journal(data_dir / "journal.db") as journal:
        for tid in acked.started:
            record = journal.get_transaction(tid)
            assert record is not None, tid
            assert not (tid in acked.stopped and record.active), tid
        for tid, n in acked.samples.items():
            assert len(journal.meter_samples(tid)) >= n, tid


@pytest.mark.slow
def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """Random SIGKILLs never lose an acknowledged write nor leave a file that fails to open."""
    rng = random.Random(os.environ.get("EDGE_TEST_SEED", "9"))
    acked = Acknowledged()
    started = time.monotonic()
    for _ in range(KILLS):
        acked.read(run_and_kill(tmp_path, rng))
        asyncio.run(check(tmp_path, acked))
    assert not list(tmp_path.glob("*.corrupt-*")), "a file was set aside as corrupt"
    assert acked.version > 0 and len(acked.started) > 0 and acked.stopped
    assert time.monotonic() - started < 30 * TIME_SCALE
