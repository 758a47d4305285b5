"""Shared fixtures: a real edge-csms service on 127.0.0.1 with ephemeral ports."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edge.app import App
from edge.config import Config, OcppConfig, StorageConfig, WebConfig

# Real waits are scaled by this factor (EDGE_TEST_TIME_SCALE=3 on a slow Pi).
TIME_SCALE = float(os.environ.get("EDGE_TEST_TIME_SCALE", "1"))
API_TOKEN = "test-token-0123456789abcdef"


def pytest_asyncio_loop_factories(config: Any, item: Any) -> dict[str, Callable[[], Any]]:
    """Run every async test on the stdlib loop; on uvloop too where it is installed.

    Browser tests (`browser` marker) run on the stdlib loop only: they check the page,
    not the loop, and each costs a browser start.
    """
    factories: dict[str, Callable[[], Any]] = {"asyncio": asyncio.new_event_loop}
    if item.get_closest_marker("browser"):
        return factories
    if os.environ.get("EDGE_TEST_UVLOOP", "1") == "1":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            factories["uvloop"] = uvloop.new_event_loop
    return factories


def make_config(data_dir: Path, **ocpp: Any) -> Config:
    """A test configuration: loopback, ephemeral ports, short timeouts."""
    ocpp_cfg = OcppConfig(
        host="127.0.0.1",
        port=0,
        unknown_chargers="accept",
        heartbeat_interval=60,
        call_timeout=2.0 * TIME_SCALE,
    )
    return Config(
        ocpp=replace(ocpp_cfg, **ocpp),
        web=WebConfig(host="127.0.0.1", port=0, api_token=API_TOKEN),
        storage=StorageConfig(data_dir=data_dir),
    )


@pytest.fixture
def new_york_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run the test with local time in New York (UTC-5/-4), to catch naive-as-local bugs."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        # Without zone data TZ falls back to UTC silently, and the test would prove nothing.
        assert time.timezone == 5 * 3600, "no zone data for America/New_York"
        yield
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path / "data")


@pytest.fixture
async def app(config: Config) -> AsyncIterator[App]:
    async with App(config) as running:
        yield running


class Api:
    """A thin client for the operator API of a running App."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def request(
        self, method: str, path: str, body: Any = None, *, token: str | None = API_TOKEN
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.request(
            method, self.base + path, json=body, headers=headers
        ) as resp:
            text = await resp.text()
            data = None
            if text and resp.content_type == "application/json":
                data = await resp.json()
            elif text:
                data = text
            return resp.status, data

    async def get(self, path: str) -> Any:
        status, data = await self.request("GET", path)
        assert status == 200, (status, data)
        return data

    async def operation(self, charger_id: str, action: str, payload: Any) -> tuple[int, Any]:
        return await self.request("POST", f"/api/chargers/{charger_id}/ocpp/{action}", payload)


@asynccontextmanager
async def api_client(web_port: int, *, source: str | None = None) -> AsyncIterator[Api]:
    """An API client for the operator API on `web_port` (an App's, or a service's);
    `source`: the loopback address it connects from (127.0.0.2, …: another host to the
    API's per-address throttle)."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0)) if source else None
    async with aiohttp.ClientSession(connector=connector) as session:
        yield Api(session, f"http://127.0.0.1:{web_port}")


@pytest.fixture
async def api(app: App) -> AsyncIterator[Api]:
    async with api_client(app.web_port) as client:
        yield client


@asynccontextmanager
async def running(config: Config) -> AsyncIterator[tuple[App, Api]]:
    """An App for `config` with its API client, for a test that starts (or restarts) its own."""
    async with App(config) as app, api_client(app.web_port) as api:
        yield app, api


def ocpp_url(app: App, charger_id: str, prefix: str = "/ocpp") -> str:
    return f"ws://127.0.0.1:{app.ocpp_port}{prefix}/{charger_id}"
