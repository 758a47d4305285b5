"""Telling systemd how the service is doing: the sd_notify protocol of `Type=notify` units.

systemd passes the address of a Unix datagram socket in ``NOTIFY_SOCKET`` (a path, or
``@name`` in the abstract namespace). A message is one datagram of newline-separated
``KEY=VALUE`` lines (sd_notify(3)): ``READY=1`` when start-up is complete, ``STOPPING=1``
when shutdown begins, ``STATUS=…`` for the line `systemctl status` shows, and
``WATCHDOG=1`` at least once per ``WATCHDOG_USEC`` or systemd kills and restarts the
service. Without ``NOTIFY_SOCKET`` every call here does nothing, so the service behaves
the same when run from a shell.

The pure part (`notify_address`, `watchdog_interval`, `format_message`, `status_text`)
decides; `Notifier` sends. The watchdog is fed by a task on the service's own event
loop, never by a thread: a loop that is stuck stops feeding and gets restarted, a loop
that is merely busy still reaches the task between callbacks and keeps feeding.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

__all__ = [
    "Notifier",
    "format_message",
    "notify_address",
    "status_text",
    "watchdog_interval",
]

log = logging.getLogger(__name__)

STATUS_INTERVAL = 2.0  # s between looks at the status text: sent only when it changed
SEND_TIMEOUT = 1.0  # s: systemd reads its socket promptly; never stall the loop for long


def notify_address(value: str | None) -> str | None:
    """The socket address for ``NOTIFY_SOCKET``'s value, None when there is none to use.

    ``@name`` is the abstract namespace (a leading NUL byte on the wire); other values
    must be absolute paths. systemd 254's ``vsock:`` addresses are for virtual machines
    and not supported (None).
    """
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def watchdog_interval(usec: str | None, pid: str | None, own_pid: int) -> float | None:
    """Seconds between WATCHDOG=1 pings, or None when the watchdog is not ours to feed.

    Follows sd_watchdog_enabled(3): ``WATCHDOG_USEC`` is the timeout in microseconds;
    ``WATCHDOG_PID``, when set, names the process that must feed it (a child that
    inherited the environment must not). Pinging at half the timeout, as the man page
    recommends, leaves a whole half for a late ping on a loaded machine.
    """
    try:
        timeout_us = int(usec) if usec else 0
    except ValueError:
        return None
    if timeout_us <= 0:
        return None
    if pid:
        try:
            if int(pid) != own_pid:
                return None
        except ValueError:
            return None
    return timeout_us / 2 / 1_000_000


def format_message(fields: Mapping[str, str]) -> bytes:
    """One notification datagram: ``KEY=VALUE`` lines, in the order given.

    A value is one line of the protocol: newlines in it (a status built from an error
    message) are turned into spaces rather than read by systemd as further assignments.
    """
    lines = []
    for key, value in fields.items():
        if not key or not key.isupper() or "=" in key:
            raise ValueError(f"not an sd_notify variable name: {key!r}")
        lines.append(f"{key}={' '.join(value.splitlines())}")
    return ("\n".join(lines) + "\n").encode()


def status_text(chargers_connected: int, meter: str | None) -> str:
    """The service's one-line state for `systemctl status`.

    Args:
        chargers_connected: chargers with an open OCPP connection.
        meter: "ok", "stale" (the site is in fallback), "waiting" (no reading yet), or
            None without a configured meter.
    """
    chargers = f"{chargers_connected} charger{'' if chargers_connected == 1 else 's'} connected"
    if meter is None:
        return f"{chargers}, no meter"
    if meter == "stale":
        return f"{chargers}, meter stale: chargers at their safe values"
    if meter == "waiting":
        return f"{chargers}, waiting for the first meter reading"
    return f"{chargers}, meter {meter}"


class Notifier:
    """Sends sd_notify messages to `address`; every method is a no-op when it is None.

    Owned by whoever creates it (`close` it). `run` is the long-lived part: it feeds
    the watchdog and keeps the status text current until the service stops.
    """

    def __init__(self, address: str | None, *, watchdog_interval: float | None = None) -> None:
        self.address = address
        self.watchdog_interval = watchdog_interval if address is not None else None
        self._socket: socket.socket | None = None
        self._failing = False
        self._status: str | None = None

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] | None = None, *, pid: int | None = None
    ) -> Notifier:
        """The notifier systemd's environment asks for (a disabled one outside systemd)."""
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET")
        address = notify_address(raw)
        if raw and address is None:
            log.warning("NOTIFY_SOCKET=%r is not a Unix socket address: not notifying", raw)
        interval = watchdog_interval(
            env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID"), os.getpid() if pid is None else pid
        )
        return cls(address, watchdog_interval=interval)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, fields: Mapping[str, str]) -> bool:
        """Send one message; True when it was sent (or there is nowhere to send it).

        A failure is logged once until a send succeeds again, and never raised: the
        chargers matter more than systemd's view of them.
        """
        if self.address is None:
            return True
        message = format_message(fields)
        try:
            if self._socket is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sock.settimeout(SEND_TIMEOUT)
                self._socket = sock
            self._socket.sendto(message, self.address)
        except OSError as err:
            if not self._failing:
                log.warning("could not notify systemd (%r): %s", self.address, err)
            self._failing = True
            return False
        self._failing = False
        return True

    def ready(self, status: str) -> None:
        """Start-up is complete: systemd starts the units ordered after this one."""
        self._status = status
        self.notify({"READY": "1", "STATUS": status})

    def stopping(self) -> None:
        """Shutdown has begun (systemd then expects the process to exit)."""
        self._status = "shutting down"
        self.notify({"STOPPING": "1", "STATUS": self._status})

    def status(self, text: str) -> None:
        """Set the status line, sending it only when it changed."""
        if text != self._status:
            self._status = text
            self.notify({"STATUS": text})

    def watchdog(self) -> None:
        self.notify({"WATCHDOG": "1"})

    async def run(self, stop: asyncio.Event, status: Callable[[], str]) -> None:
        """Feed the watchdog and keep the status line current until `stop` is set."""
        if self.address is None:
            return
        async with asyncio.TaskGroup() as tasks:
            loops = [tasks.create_task(self._follow_status(status))]
            if self.watchdog_interval is not None:
                loops.append(tasks.create_task(self._feed_watchdog(self.watchdog_interval)))
            await stop.wait()
            for task in loops:
                task.cancel()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def _feed_watchdog(self, interval: float) -> None:
        # The ping is sent by this task, on the service's loop: it proves the loop runs.
        # A bare sleep, not wait_for(stop.wait()): on a busy loop each extra task step
        # wait_for takes costs a full turn of the loop, and the pings would come late.
        while True:
            self.watchdog()
            await asyncio.sleep(interval)

    async def _follow_status(self, status: Callable[[], str]) -> None:
        # Polling at a fixed pace bounds the messages however fast chargers come and go.
        failed = False
        while True:
            await asyncio.sleep(STATUS_INTERVAL)
            try:
                text = status()
            except Exception:
                # A cosmetic line must not take the service down, nor fill the journal.
                if not failed:
                    log.exception("could not compute the status line")
                failed = True
                continue
            failed = False
            self.status(text)
