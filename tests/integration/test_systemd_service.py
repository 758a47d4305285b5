"""The real service as systemd runs it (`Type=notify`): readiness, watchdog, status line.

`python -m edge serve` runs as a subprocess with NOTIFY_SOCKET pointing at a fake systemd
(a Unix datagram socket this test binds), as the unit file runs it; the meter's part of
the status line is checked on an in-process App.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from edge.app import App
from edge.config import MeterConfig
from edge.systemd import STATUS_INTERVAL, Notifier
from tests.conftest import TIME_SCALE, make_config
from tests.integration.charger import RawCharger
from tests.integration.fake_systemd import FakeSystemd, Notification, fake_systemd
from tests.integration.service import HTTP_LINE, OCPP_LINE, Service, config_toml

pytestmark = pytest.mark.slow

WATCHDOG_USEC = int(400_000 * TIME_SCALE)  # pings every 0.2 s


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
