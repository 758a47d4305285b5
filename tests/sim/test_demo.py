"""`edge-csms demo` as a subprocess: it starts, serves a site that charges, and stops cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edge.app import App
from tests.conftest import TIME_SCALE, Api, api_client, make_config
from tests.helpers import eventually

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30 * TIME_SCALE
STOP_TIMEOUT = 15 * TIME_SCALE


class Demo:
    """One `python -m edge demo` with ephemeral ports on 127.0.0.1; its output in files."""

    def __init__(self, tmp: Path, *extra: str) -> None:
        self.tmp = tmp
        self.ready = tmp / "ready.json"
        self.out = tmp / "demo.out"
        self.args = [
            "demo",
            "--chargers",
            "3",
            "--host",
            "127.0.0.1",
            "--web-port",
            "0",
            "--ocpp-port",
            "0",
            "--ready-file",
            str(self.ready),
            *extra,
        ]
        self.proc: asyncio.subprocess.Process | None = None
        self.facts: dict[str, Any] = {}

    async def start(self) -> None:
        """Start it; return once it wrote its ready file."""
        # Its temporary data directory goes under the test's own, where the test can look.
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env["TMPDIR"] = str(self.tmp)
        with self.out.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "edge",
                *self.args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                cwd=REPO,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ready.exists():
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"demo not ready (rc={self.proc.returncode}):\n{self.text()}")
            await asyncio.sleep(0.1)
        self.facts = json.loads(self.ready.read_text())

    def text(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    async def terminate(self) -> int:
        """SIGTERM; its exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 10)


@contextlib.asynccontextmanager
async def demo(tmp: Path, *extra: str) -> AsyncIterator[tuple[Demo, Api]]:
    """A running demo and an API client for it; killed on the way out if still running."""
    run = Demo(tmp, *extra)
    try:
        await run.start()
        async with api_client(run.facts["webPort"]) as api:
            yield run, api
    finally:
        await run.kill()


def entries(directory: Path) -> list[str] | None:
    """The names in `directory`, sorted; None if it does not exist."""
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else None


async def get(api: Api, path: str, token: str) -> Any:
    status, body = await api.request("GET", path, token=token)
    assert status == 200, (path, status, body)
    return body


async def a_session_under_way(api: Api, token: str) -> list[dict[str, Any]]:
    """Wait until a transaction is under way; the active ones."""

    async def active() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await get(api, "/api/transactions?active=true", token)
        return found

    return await eventually(active, timeout=20 * TIME_SCALE, interval=0.2)


async def test_the_demo_serves_a_charging_site_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The API shows the meter and the three chargers, a session starts within seconds, and
    SIGTERM stops it with exit code 0 and no temporary directory left."""
    async with demo(tmp_path) as (run, api):
        token = run.facts["apiToken"]
        assert f"API token         {token}" in run.text()
        assert f"web page and API  {run.facts['url']}" in run.text()
        data_dir = Path(run.facts["dataDir"])
        assert data_dir.parent == tmp_path and entries(data_dir)
        status, health = await api.request("GET", "/api/health", token=None)
        assert (status, health) == (200, {"status": "ok"})

        site = await get(api, "/api/site", token)
        assert site["enabled"] is True
        assert site["meter"]["driver"] == "sdm630"
        assert site["limits"]["maxCurrentA"] == [run.facts["fuseA"]] * 3
        assert {c["chargerId"] for c in site["chargers"]} == {"DEMO01", "DEMO02", "DEMO03"}

        async def meter_read() -> bool:
            meter = (await get(api, "/api/site", token))["meter"]
            return meter["reading"] is not None and not meter["stale"]

        await eventually(meter_read, timeout=10 * TIME_SCALE)
        chargers = await get(api, "/api/chargers", token)
        assert all(c["connected"] for c in chargers), chargers
        sessions = await a_session_under_way(api, token)
        assert sessions[0]["chargerId"] == "DEMO01"  # the first charger's EV comes at once

        assert await run.terminate() == 0, run.text()
    assert entries(data_dir) is None
    assert entries(tmp_path) == ["demo.out", "ready.json"]
    assert "Traceback" not in run.text()


async def test_a_kept_data_dir_is_left_with_no_session_open(tmp_path: Path) -> None:
    """With --data-dir the data stays, and the sessions under way were ended on the way out."""
    data_dir = tmp_path / "kept"
    async with demo(tmp_path, "--data-dir", str(data_dir)) as (run, api):
        assert run.facts["dataDir"] == str(data_dir) and not run.facts["temporary"]
        await a_session_under_way(api, run.facts["apiToken"])
        assert await run.terminate() == 0, run.text()
    assert "journal.sqlite3" in (entries(data_dir) or [])
    async with App(make_config(data_dir)) as app:
        journal = app.services.journal
        assert journal.active_transactions() == []
        [first] = journal.list_transactions(charger_id="DEMO01")
        assert first.stop_reason == "Local"
