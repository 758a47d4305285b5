"""The servers under test as subprocesses, and what /proc says about a process.

Both servers log "listening for OCPP 1.6J on ws://HOST:PORT/" on stderr once bound.
Their stderr is drained by a thread into a log file owned by the benchmark, so the
server's own write_bytes counts only what the server itself writes (its journal).
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.load import raise_nofile_limit

__all__ = ["ProcSample", "ServerProcess", "proc_sample", "seed_id_tags", "start_server"]

REPO = Path(__file__).resolve().parent.parent
PYTHON = str(REPO / ".venv" / "bin" / "python")
API_TOKEN = "bench-api-token-0123456789"
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_OCPP_LINE = re.compile(r"listening for OCPP 1\.6J on ws://([^:/]+):(\d+)/")
_HTTP_LINE = re.compile(r"listening for HTTP on http://([^:/]+):(\d+)/")


@dataclass(frozen=True, slots=True)
class ProcSample:
    """One reading of a process's counters (whole process: all threads)."""

    at: float  # time.monotonic()
    cpu_s: float  # utime + stime
    rss_kb: int  # VmRSS
    hwm_kb: int  # VmHWM, peak RSS
    write_bytes: int  # bytes sent (or queued) to the block layer
    threads: int


def proc_sample(pid: int) -> ProcSample:
    at = time.monotonic()
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    rss = hwm = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    write_bytes = 0
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                write_bytes = int(line.split()[1])
    return ProcSample(at, cpu, rss, hwm, write_bytes, threads)


class ServerProcess:
    """A running server: its port, its log, and a clean way to stop it."""

    def __init__(
        self, kind: str, argv: list[str], log_path: Path, data_dir: Path | None = None
    ) -> None:
        self.kind = kind
        self.argv = argv
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = 0
        self.web_port = 0
        self.lines: deque[str] = deque(maxlen=200)
        self.error_lines = 0  # lines at ERROR/CRITICAL or "Traceback"
        self.warning_lines = 0
        self._listening = threading.Event()
        self._web_listening = threading.Event()
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=raise_nofile_limit,
        )
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        with open(self.log_path, "ab") as log:
            for raw in self.proc.stderr:
                log.write(raw)
                line = raw.decode(errors="replace").rstrip()
                self.lines.append(line)
                if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback"):
                    self.error_lines += 1
                elif " WARNING " in line or line.startswith("WARNING:"):
                    self.warning_lines += 1
                if not self._listening.is_set() and (m := _OCPP_LINE.search(line)):
                    self.port = int(m.group(2))
                    self._listening.set()
                if not self._web_listening.is_set() and (m := _HTTP_LINE.search(line)):
                    self.web_port = int(m.group(2))
                    self._web_listening.set()

    def wait_listening(self, timeout: float = 60.0, web: bool = False) -> float:
        """Wait for the listening line(s); returns the seconds waited."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        for event in (self._listening, self._web_listening) if web else (self._listening,):
            while not event.wait(0.05):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.kind} exited: {self.tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.kind} did not start in {timeout} s: {self.tail()}")
        return time.monotonic() - t0

    def sample(self) -> ProcSample:
        return proc_sample(self.pid)

    def tail(self, n: int = 15) -> str:
        return "\n".join(list(self.lines)[-n:])

    def stop(self, timeout: float = 30.0) -> tuple[float, int | None]:
        """SIGTERM, wait (SIGKILL after `timeout`); returns (seconds, exit code or None=killed)."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code: int | None = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                code = None
        else:
            code = self.proc.returncode
        self._reader.join(5)
        return time.monotonic() - t0, code


def write_edge_config(path: Path, data_dir: Path, port: int = 0) -> None:
    path.write_text(
        "\n".join(
            [
                "[ocpp]",
                'host = "127.0.0.1"',
                f"port = {port}",
                'unknown_chargers = "accept"',
                "heartbeat_interval = 300",
                "call_timeout = 30",
                "",
                "[web]",
                'host = "127.0.0.1"',
                "port = 0",
                f'api_token = "{API_TOKEN}"',
                "",
                "[storage]",
                f'data_dir = "{data_dir}"',
                'synchronous = "FULL"',
                *(
                    [f"commit_interval = {float(os.environ['EDGE_BENCH_COMMIT_INTERVAL'])}"]
                    if "EDGE_BENCH_COMMIT_INTERVAL" in os.environ
                    else []
                ),
                "",
            ]
        )
    )


def start_server(
    kind: str, workdir: Path, *, port: int = 0, baseline_loop: str = "asyncio"
) -> ServerProcess:
    """Start edge-csms (data in workdir/data) or the baseline; returns once listening."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{kind}.log"
    if kind == "edge":
        data_dir = workdir / "data"
        config = workdir / "edge.toml"
        write_edge_config(config, data_dir, port)
        argv = [PYTHON, "-m", "edge", "serve", "--config", str(config)]
        server = ServerProcess(kind, argv, log_path, data_dir)
        server.wait_listening(web=True)
    else:
        argv = [PYTHON, "-m", "bench.baseline_server", "--port", str(port)]
        argv += ["--loop", baseline_loop]
        server = ServerProcess(kind, argv, log_path)
        server.wait_listening()
    return server


def seed_id_tags(server: ServerProcess, tags: list[str]) -> float:
    """PUT each tag as Accepted through edge-csms's HTTP API; returns the seconds taken."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", server.web_port, timeout=30)
    body = orjson.dumps({"status": "Accepted"})
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    try:
        for tag in tags:
            conn.request("PUT", f"/api/id-tags/{tag}", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status not in (200, 201):
                raise RuntimeError(f"PUT /api/id-tags/{tag}: HTTP {response.status}")
    finally:
        conn.close()
    return time.monotonic() - t0


if __name__ == "__main__":  # smoke test: start both, print ports, stop
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for k in ("edge", "baseline"):
            s = start_server(k, Path(tmp) / k)
            print(k, s.port, s.web_port, s.sample(), file=sys.stderr)
            print(s.stop())
