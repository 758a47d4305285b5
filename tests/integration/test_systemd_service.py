"""The real service as systemd runs it (`Type=notify`): readiness, watchdog, status line,
a SIGTERM that stops it promptly with clients connected, and its log into journald.

`python -m edge serve` runs as a subprocess with NOTIFY_SOCKET pointing at a fake systemd
(a Unix datagram socket this test binds), as the unit file runs it; the meter's part of
the status line is checked on an in-process App.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from edge.app import App
from edge.config import MeterConfig
from edge.sim.charger import RawCharger
from edge.systemd import STATUS_INTERVAL, Notifier
from tests.conftest import API_TOKEN, TIME_SCALE, api_client, make_config
from tests.integration.fake_systemd import FakeSystemd, Notification, fake_systemd
from tests.integration.service import HTTP_LINE, OCPP_LINE, Service, config_toml

pytestmark = pytest.mark.slow

WATCHDOG_USEC = int(400_000 * TIME_SCALE)  # pings every 0.2 s
STOP_BOUND = 10.0 * TIME_SCALE  # s: generous; the service needs about one


@contextlib.asynccontextmanager
async def notified_service(
    tmp_path: Path, systemd: FakeSystemd, *, call_timeout: float = 5.0
) -> AsyncIterator[Service]:
    """The service reporting to `systemd`, with a watchdog; killed on the way out."""
    config = tmp_path / "config.toml"
    config.write_text(config_toml(tmp_path / "data", call_timeout=call_timeout * TIME_SCALE))
    env = {"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    svc = Service(config=config, log=tmp_path / "service.log", env=env)
    try:
        await svc.start()
        yield svc
    finally:
        await svc.stop()


def accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_ready_watchdog_status_and_stopping_reach_systemd(tmp_path: Path) -> None:
    """READY=1 comes once both listeners accept connections, WATCHDOG=1 keeps coming, the
    status line follows a charger connecting, and SIGTERM brings STOPPING=1 and exit 0."""
    log = tmp_path / "service.log"
    at_ready: list[tuple[bool, bool]] = []

    def on_message(note: Notification) -> None:
        # Checked the moment READY arrives, in the reader thread, before the test sees it:
        # the listening lines are logged and both ports already take connections.
        if "READY" in note.fields:
            text = log.read_text()
            ocpp, web = OCPP_LINE.search(text), HTTP_LINE.search(text)
            listed = ocpp is not None and web is not None
            at_ready.append((listed, listed and accepts(int(ocpp[1])) and accepts(int(web[1]))))

    with fake_systemd() as systemd:
        systemd.on_message = on_message
        async with asyncio.timeout(60 * TIME_SCALE), notified_service(tmp_path, systemd) as svc:
            ready = await systemd.wait_for("READY", "1")
            assert at_ready == [(True, True)]
            assert ready.fields["STATUS"] == "0 chargers connected, no meter"

            count = len(systemd.messages("WATCHDOG"))
            await asyncio.sleep(6 * WATCHDOG_USEC / 1e6)
            assert len(systemd.messages("WATCHDOG")) >= count + 4

            async with RawCharger.connect(svc.url("CP1")) as cp:
                await cp.boot()
                seen, connected = len(systemd.received), "1 charger connected, no meter"
                await systemd.wait_for("STATUS", connected, after=seen, timeout=3 * STATUS_INTERVAL)
                assert await svc.signal(signal.SIGTERM) == 0
            stopping = await systemd.wait_for("STOPPING", "1")
            assert stopping.at > ready.at
        assert len(systemd.messages("READY")) == 1


async def test_sigterm_with_a_charger_and_open_http_connections_stops_promptly(
    tmp_path: Path,
) -> None:
    """A connected charger that leaves an API request waiting for its answer (30 s call
    timeout), an idle HTTP keep-alive connection, a client stuck halfway through its
    headers and a slow upload do not hold the shutdown: the process exits (0) well before
    systemd's stop timeout."""
    with fake_systemd() as systemd:
        async with (
            asyncio.timeout(60 * TIME_SCALE),
            notified_service(tmp_path, systemd, call_timeout=30.0) as svc,
            RawCharger.connect(svc.url("CP1")) as cp,
            api_client(svc.web_port) as api,
        ):
            await cp.boot()
            cp.answers["GetConfiguration"] = "silent"
            waiting = asyncio.create_task(api.operation("CP1", "GetConfiguration", {}))
            await asyncio.wait_for(cp.call_arrived.wait(), 5 * TIME_SCALE)
            _, idle = await asyncio.open_connection("127.0.0.1", svc.web_port)
            reader, keep_alive = await asyncio.open_connection("127.0.0.1", svc.web_port)
            keep_alive.write(b"GET /api/health HTTP/1.1\r\nHost: edge\r\n\r\n")
            assert (await reader.readline()).startswith(b"HTTP/1.1 200")
            _, halfway = await asyncio.open_connection("127.0.0.1", svc.web_port)
            halfway.write(b"GET /api/health HTTP/1.1\r\nHost: ed")
            await halfway.drain()
            # A slow upload: its handler is running, waiting for the rest of the body.
            _, uploading = await asyncio.open_connection("127.0.0.1", svc.web_port)
            uploading.write(
                b"PUT /api/id-tags/TAG1 HTTP/1.1\r\nHost: edge\r\n"
                + f"Authorization: Bearer {API_TOKEN}\r\n".encode()
                + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                + b'{"status": '
            )
            await uploading.drain()
            began = time.monotonic()
            assert await svc.signal(signal.SIGTERM, timeout=STOP_BOUND) == 0
            took = time.monotonic() - began
            for writer in (idle, keep_alive, halfway, uploading):
                writer.close()
            with contextlib.suppress(aiohttp.ClientError):
                await waiting
        assert took < STOP_BOUND, took
        assert "stopped" in svc.text()
        assert systemd.messages("STOPPING")


async def test_status_line_says_when_the_meter_goes_stale(tmp_path: Path) -> None:
    """An App with a meter that never answers reports "waiting" at READY=1, then "meter
    stale" once stale_after has passed (the site is in fallback)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # nothing listens here once closed
    meter = MeterConfig(port=closed_port, poll_interval=0.1, stale_after=0.5 * TIME_SCALE)
    config = replace(make_config(tmp_path / "data"), meter=meter)
    with fake_systemd() as systemd:
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": systemd.address})
        try:
            async with asyncio.timeout(30 * TIME_SCALE), App(config, notifier=notifier):
                ready = await systemd.wait_for("READY", "1")
                assert ready.fields["STATUS"].endswith("waiting for the first meter reading")
                stale = "0 chargers connected, meter stale: chargers at their safe values"
                await systemd.wait_for("STATUS", stale, timeout=3 * STATUS_INTERVAL)
        finally:
            notifier.close()


async def test_into_journald_every_log_line_has_a_priority_and_no_timestamp(
    tmp_path: Path,
) -> None:
    """With stderr being the stream JOURNAL_STREAM names, as under systemd, each line
    starts with its syslog priority and carries no time of its own."""
    log = tmp_path / "service.log"
    log.touch()  # the service's stderr: Service truncates this very file (same inode)
    stat = log.stat()
    config = tmp_path / "config.toml"
    config.write_text(config_toml(tmp_path / "data", call_timeout=5.0 * TIME_SCALE))
    env = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
    svc = Service(config=config, log=log, env=env)
    try:
        async with asyncio.timeout(30 * TIME_SCALE):
            await svc.start()
            assert await svc.signal(signal.SIGTERM) == 0
    finally:
        await svc.stop()
    lines = svc.text().splitlines()
    assert f"<6>INFO edge.app: listening for HTTP on http://127.0.0.1:{svc.web_port}/" in lines
    assert "<6>INFO edge: shutting down" in lines
    assert all(re.match(r"<[2-7]>[A-Z]+ ", line) for line in lines), lines
