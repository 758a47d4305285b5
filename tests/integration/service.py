"""The real service, `python -m edge serve`, as a subprocess: for tests that kill it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import API_TOKEN, TIME_SCALE

REPO = Path(__file__).resolve().parents[2]
OCPP_LINE = re.compile(r"listening for OCPP 1\.6J on ws://127\.0\.0\.1:(\d+)/")
HTTP_LINE = re.compile(r"listening for HTTP on http://127\.0\.0\.1:(\d+)/")


def config_toml(data_dir: Path, *, call_timeout: float) -> str:
    """The [ocpp], [web] and [storage] sections of a service's configuration file:
    loopback, ephemeral ports, unknown chargers accepted, the tests' API token."""
    return (
        "[ocpp]\n"
        'host = "127.0.0.1"\n'
        "port = 0\n"
        'unknown_chargers = "accept"\n'
        "heartbeat_interval = 60\n"
        f"call_timeout = {call_timeout}\n"
        "\n[web]\n"
        'host = "127.0.0.1"\n'
        "port = 0\n"
        f'api_token = "{API_TOKEN}"\n'
        "\n[storage]\n"
        f'data_dir = "{data_dir}"\n'
    )


@dataclass
class Service:
    """One run of `python -m edge serve` with its stderr in a file."""

    config: Path
    log: Path
    proc: asyncio.subprocess.Process | None = None
    ocpp_port: int = 0
    web_port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    """Added to the environment the service starts with (e.g. systemd's NOTIFY_SOCKET)."""
    _log_file: Any = field(default=None, repr=False)

    async def start(self, timeout: float = 30 * TIME_SCALE) -> None:
        """Start it; return once it says on which ports it listens."""
        self._log_file = self.log.open("wb")
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(self.env)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "edge",
            "serve",
            "--config",
            str(self.config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self._log_file,
            cwd=REPO,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            ocpp, web = OCPP_LINE.search(text), HTTP_LINE.search(text)
            if ocpp and web:
                self.ocpp_port, self.web_port = int(ocpp[1]), int(web[1])
                return
            if self.proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"service did not start (rc={self.proc.returncode}):\n{self.text()}")

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def url(self, charger_id: str) -> str:
        return f"ws://127.0.0.1:{self.ocpp_port}/ocpp/{charger_id}"

    async def signal(self, signum: int, timeout: float = 15 * TIME_SCALE) -> int:
        assert self.proc is not None
        self.proc.send_signal(signum)
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def stop(self) -> None:
        """Make sure the process is gone (cleanup after a failed test too)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


@contextlib.asynccontextmanager
async def serve(config: Path, log: Path) -> AsyncIterator[Service]:
    """The service on configuration file `config`, its stderr in `log`; killed on the way out."""
    svc = Service(config=config, log=log)
    try:
        await svc.start()
        yield svc
    finally:
        await svc.stop()
