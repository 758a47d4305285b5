"""The log format: timestamped text on a terminal, syslog priorities for journald; and
the ring of recent records the technician's page reads (`LogRing`, `GET /api/log`).

Under systemd the service's stderr is a stream into the journal, which stamps every line
with its own time and reads a leading ``<N>`` as the line's syslog priority
(sd-daemon(3)). So there we write no timestamp and put the priority first, and
`journalctl -p warning` shows exactly the warnings and errors. Every line of a
multi-line record (a traceback) carries the prefix: journald splits the stream at
newlines, and an unprefixed line would be filed at the default priority, apart from
its error.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

__all__ = [
    "JournalFormatter",
    "LogEntry",
    "LogRing",
    "configure_logging",
    "syslog_priority",
    "under_journald",
]

TERMINAL_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(levelname)s %(name)s: %(message)s"


def syslog_priority(levelno: int) -> int:
    """The syslog priority of a logging level: 2 crit, 3 err, 4 warning, 6 info, 7 debug.

    Levels in between take the priority of the standard level below them (a custom
    level 25 is info); nothing is logged as notice (5).
    """
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def under_journald(environ: Mapping[str, str], stream: TextIO) -> bool:
    """Whether `stream` is systemd's stream into the journal.

    systemd sets ``JOURNAL_STREAM=<device>:<inode>`` of that stream (systemd.exec(5)).
    The variable alone is not enough: a process started from a terminal of a desktop
    session may inherit it while writing to a terminal, so the stream itself must be
    the one named. A service whose stderr goes to a file (``StandardError=file:``) has
    no JOURNAL_STREAM, and keeps its timestamps since nothing else adds them.
    """
    value = environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        stat = os.fstat(stream.fileno())
        return (stat.st_dev, stat.st_ino) == (int(device), int(inode))
    except (ValueError, OSError):
        return False


class JournalFormatter(logging.Formatter):
    """Formats without a time and prefixes every line with ``<priority>``."""

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def configure_logging(
    level: str, *, stream: TextIO | None = None, environ: Mapping[str, str] | None = None
) -> None:
    """Log at `level` to `stream` (stderr), in the journal's format when it is the journal.

    Like `logging.basicConfig`, it leaves a root logger that already has handlers alone
    (a test runner's, when `main` is called in-process).
    """
    out = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(out)
    if under_journald(os.environ if environ is None else environ, out):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter(TERMINAL_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One log record as the ring keeps it: `at` in epoch seconds, the message with
    its traceback (if any) already formatted, `seq` counting from 1 per ring."""

    seq: int
    at: float
    level: int
    logger: str
    message: str


class LogRing(logging.Handler):
    """The last `capacity` records at INFO or above, in memory, for `GET /api/log`.

    Only what the service logs reaches it: below the loggers' own levels (the
    configured ``--log-level``) nothing arrives. It holds the text the log would
    show, so whatever the log never contains (tokens, passwords) it never holds.
    Install it with `install` and take it off with `remove` (a test process runs
    many services, each with its own ring).
    """

    def __init__(self, capacity: int = 2000) -> None:
        super().__init__(logging.INFO)
        self._entries: deque[LogEntry] = deque(maxlen=capacity)
        self._seq = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            self._seq += 1
            entry = LogEntry(self._seq, record.created, record.levelno, record.name, message)
            self._entries.append(entry)
        except Exception:  # a handler reports its own failures (logging.Handler)
            self.handleError(record)

    def install(self, logger: logging.Logger | None = None) -> None:
        (logger or logging.getLogger()).addHandler(self)

    def remove(self, logger: logging.Logger | None = None) -> None:
        (logger or logging.getLogger()).removeHandler(self)

    def entries(
        self, *, level: int = logging.INFO, since: float | None = None, limit: int = 200
    ) -> list[LogEntry]:
        """The newest `limit` entries at `level` or above, from `since` (epoch s,
        inclusive) on, newest first."""
        found: list[LogEntry] = []
        for entry in reversed(self._entries.copy()):
            if since is not None and entry.at < since:
                break
            if entry.level >= level:
                found.append(entry)
                if len(found) >= limit:
                    break
        return found
