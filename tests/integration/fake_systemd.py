"""A fake systemd for the sd_notify protocol: the Unix datagram socket a `Type=notify`
service reports to, recording every message with the time it arrived.

A thread reads the socket, so arrival times stay true while the service under test
blocks its event loop (the test's own loop, for an in-process App).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import TIME_SCALE

__all__ = ["FakeSystemd", "Notification", "fake_systemd"]


@dataclass(frozen=True, slots=True)
class Notification:
    """One datagram: its KEY=VALUE lines and its arrival (time.monotonic)."""

    at: float
    fields: dict[str, str]


class FakeSystemd:
    """Records what arrives on the socket bound at `address` (NOTIFY_SOCKET's spelling)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.received: list[Notification] = []
        self.on_message: Callable[[Notification], None] | None = None
        """Called in the reader thread as each message arrives, before it is recorded."""
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self._sock.settimeout(0.05)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, name="fake-systemd", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            lines = data.decode().splitlines()
            note = Notification(time.monotonic(), dict(line.split("=", 1) for line in lines))
            if self.on_message is not None:
                self.on_message(note)
            with self._lock:
                self.received.append(note)

    def messages(self, key: str) -> list[Notification]:
        """The messages so far that set `key`."""
        with self._lock:
            return [n for n in self.received if key in n.fields]

    async def wait_for(
        self, key: str, value: str | None = None, *, after: int = 0, timeout: float = 10.0
    ) -> Notification:
        """The first message after the first `after` ones setting `key` (to `value`)."""
        deadline = time.monotonic() + timeout * TIME_SCALE
        while True:
            with self._lock:
                for note in self.received[after:]:
                    if key in note.fields and value in (None, note.fields[key]):
                        return note
            if time.monotonic() > deadline:
                raise AssertionError(f"no {key}={value or '…'} in {self.received}")
            await asyncio.sleep(0.01)

    def close(self) -> None:
        self._closed.set()
        self._thread.join()
        self._sock.close()


@contextlib.contextmanager
def fake_systemd(abstract: bool = False) -> Iterator[FakeSystemd]:
    """A fake systemd on a fresh socket: a short path (Unix socket paths are limited to
    108 bytes, which pytest's tmp_path can exceed), or an abstract `@name`."""
    if abstract:
        fake = FakeSystemd(f"@edge-csms-test-{time.monotonic_ns()}")
        try:
            yield fake
        finally:
            fake.close()
        return
    with tempfile.TemporaryDirectory(prefix="edge-sd-") as directory:
        fake = FakeSystemd(str(Path(directory) / "notify"))
        try:
            yield fake
        finally:
            fake.close()
