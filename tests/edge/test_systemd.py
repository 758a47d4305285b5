"""sd_notify: the pure decisions, and `Notifier` against a fake systemd socket in-process."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import pytest

from edge.systemd import (
    Notifier,
    format_message,
    notify_address,
    status_text,
    watchdog_interval,
)
from tests.conftest import TIME_SCALE
from tests.integration.fake_systemd import fake_systemd

# --- pure ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "address"),
    [
        (None, None),
        ("", None),
        ("/run/systemd/notify", "/run/systemd/notify"),
        ("@/org/freedesktop/systemd1/notify/123", "\0/org/freedesktop/systemd1/notify/123"),
        ("vsock:2:1234", None),
        ("relative/path", None),
    ],
)
def test_notify_address_reads_paths_and_abstract_names(
    value: str | None, address: str | None
) -> None:
    """A path is used as is, `@name` becomes an abstract address, anything else is unusable."""
    assert notify_address(value) == address


@pytest.mark.parametrize(
    ("usec", "pid", "interval"),
    [
        ("30000000", None, 15.0),  # WatchdogSec=30: ping every 15 s
        ("30000000", "4242", 15.0),  # addressed to us
        ("30000000", "4243", None),  # addressed to another process (our parent, say)
        ("1000000", "", 0.5),
        (None, "4242", None),  # no watchdog configured
        ("0", None, None),
        ("-5", None, None),
        ("soon", None, None),
        ("30000000", "self", None),
    ],
)
def test_watchdog_interval_is_half_the_timeout_for_our_pid(
    usec: str | None, pid: str | None, interval: float | None
) -> None:
    """The ping interval is half of WATCHDOG_USEC, and only when WATCHDOG_PID is unset or ours."""
    assert watchdog_interval(usec, pid, own_pid=4242) == interval


def test_format_message_writes_one_assignment_per_line() -> None:
    """Fields become KEY=VALUE lines in order; a newline inside a value cannot start a new one."""
    assert format_message({"READY": "1", "STATUS": "up"}) == b"READY=1\nSTATUS=up\n"
    injected = format_message({"STATUS": "meter: timeout\nREADY=1"})
    assert injected == b"STATUS=meter: timeout READY=1\n"
    with pytest.raises(ValueError):
        format_message({"status": "lower-case names are not the protocol's"})


@pytest.mark.parametrize(
    ("connected", "meter", "text"),
    [
        (0, None, "0 chargers connected, no meter"),
        (1, None, "1 charger connected, no meter"),
        (3, "ok", "3 chargers connected, meter ok"),
        (2, "stale", "2 chargers connected, meter stale: chargers at their safe values"),
        (0, "waiting", "0 chargers connected, waiting for the first meter reading"),
    ],
)
def test_status_text_names_chargers_and_meter(connected: int, meter: str | None, text: str) -> None:
    """The status line counts connected chargers and says how the meter is."""
    assert status_text(connected, meter) == text


def test_from_environ_without_systemd_is_disabled() -> None:
    """Without NOTIFY_SOCKET the notifier does nothing, whatever else is set."""
    notifier = Notifier.from_environ({"WATCHDOG_USEC": "1000000"}, pid=1)
    assert not notifier.enabled and notifier.watchdog_interval is None
    assert notifier.notify({"READY": "1"})


def test_from_environ_reads_socket_and_watchdog() -> None:
    """NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID are read as systemd sets them."""
    env = {"NOTIFY_SOCKET": "@sd", "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "7"}
    notifier = Notifier.from_environ(env, pid=7)
    assert notifier.address == "\0sd" and notifier.watchdog_interval == 2.0


# --- sending ------------------------------------------------------------------------------


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
async def test_messages_reach_the_socket(abstract: bool) -> None:
    """READY, STATUS (only when changed) and STOPPING arrive as datagrams, on a path or an
    abstract socket."""
    with fake_systemd(abstract=abstract) as systemd:
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": systemd.address})
        try:
            notifier.ready("0 chargers connected, no meter")
            notifier.status("0 chargers connected, no meter")  # unchanged: not sent
            notifier.status("1 charger connected, no meter")
            notifier.stopping()
            await systemd.wait_for("STOPPING", "1")
        finally:
            notifier.close()
        assert [n.fields for n in systemd.received] == [
            {"READY": "1", "STATUS": "0 chargers connected, no meter"},
            {"STATUS": "1 charger connected, no meter"},
            {"STOPPING": "1", "STATUS": "shutting down"},
        ]


def test_a_missing_socket_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    """When systemd's socket is gone the service goes on; the failure is logged once."""
    caplog.set_level(logging.WARNING, logger="edge.systemd")
    notifier = Notifier("/nonexistent/notify", watchdog_interval=1.0)
    try:
        assert not notifier.notify({"WATCHDOG": "1"})
        assert not notifier.notify({"WATCHDOG": "1"})
    finally:
        notifier.close()
    assert len([r for r in caplog.records if "could not notify systemd" in r.message]) == 1


# --- the watchdog runs on the event loop ---------------------------------------------------

PING = 0.05 * TIME_SCALE  # s between watchdog pings in these tests


async def test_a_blocked_event_loop_stops_the_watchdog_pings() -> None:
    """Pings come every interval while the loop runs, none while it is blocked (so systemd
    would restart a stuck service), and they resume when it runs again."""
    with fake_systemd() as systemd:
        notifier = Notifier(systemd.address, watchdog_interval=PING)
        stop = asyncio.Event()
        task = asyncio.create_task(notifier.run(stop, lambda: "ok"))
        try:
            await asyncio.sleep(10 * PING)
            before = len(systemd.messages("WATCHDOG"))
            assert before >= 5, systemd.received
            blocked_at = time.monotonic()
            time.sleep(20 * PING)  # noqa: ASYNC251 - the point: a stuck loop (a blocking call)
            unblocked_at = time.monotonic()
            await asyncio.sleep(10 * PING)
        finally:
            stop.set()
            await task
            notifier.close()
        pings = [n.at for n in systemd.messages("WATCHDOG")]
        # Allow for a ping sent just before the block and read a moment later.
        during = [at for at in pings if blocked_at + 3 * PING < at < unblocked_at]
        assert during == []
        assert len([at for at in pings if at >= unblocked_at]) >= 5


async def test_a_busy_event_loop_still_feeds_the_watchdog() -> None:
    """A loop kept busy by work that yields now and then still pings well within the
    watchdog timeout (twice the ping interval), so systemd leaves a busy service alone."""
    interval = 0.2 * TIME_SCALE  # longer than PING: each turn of this busy loop takes 20 ms
    with fake_systemd() as systemd:
        notifier = Notifier(systemd.address, watchdog_interval=interval)
        stop = asyncio.Event()
        task = asyncio.create_task(notifier.run(stop, lambda: "ok"))

        async def busy_worker() -> None:
            # 10 ms of CPU between yields: slow, but never stuck.
            deadline = time.monotonic() + 10 * interval
            while time.monotonic() < deadline:
                spin = time.monotonic() + 0.01
                while time.monotonic() < spin:
                    pass
                await asyncio.sleep(0)

        try:
            await asyncio.sleep(interval)
            started = time.monotonic()
            await asyncio.gather(busy_worker(), busy_worker())
            ended = time.monotonic()
        finally:
            stop.set()
            await task
            notifier.close()
        pings = [n.at for n in systemd.messages("WATCHDOG") if started <= n.at <= ended]
        assert len(pings) >= 6, pings
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        assert max(gaps) < 2 * interval, gaps


async def test_run_returns_at_once_without_systemd() -> None:
    """A disabled notifier's run() ends immediately: no task lingers for nothing."""
    await asyncio.wait_for(Notifier(None).run(asyncio.Event(), lambda: "ok"), 1.0)
