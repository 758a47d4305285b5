"""The log format: timestamps on a terminal, syslog priority prefixes into journald."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from edge.logs import JournalFormatter, configure_logging, syslog_priority, under_journald


def journal_stream_of(stream: TextIO) -> str:
    """JOURNAL_STREAM as systemd would set it for `stream`."""
    stat = os.fstat(stream.fileno())
    return f"{stat.st_dev}:{stat.st_ino}"


@pytest.fixture
def stream(tmp_path: Path) -> Iterator[TextIO]:
    with (tmp_path / "stderr").open("w+") as file:
        yield file


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, its handlers and level restored after the test reconfigures it.

    The test clears its handlers first (pytest adds its own once the test has begun):
    `configure_logging` leaves a logger that has some alone.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield root
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.parametrize(
    ("level", "priority"),
    [
        (logging.CRITICAL, 2),
        (logging.ERROR, 3),
        (logging.WARNING, 4),
        (25, 6),
        (logging.INFO, 6),
        (logging.DEBUG, 7),
        (5, 7),
    ],
)
def test_levels_map_to_syslog_priorities(level: int, priority: int) -> None:
    """Each logging level gets the sd-daemon priority journalctl -p filters on."""
    assert syslog_priority(level) == priority


def test_under_journald_only_when_the_stream_is_the_one_named(stream: TextIO) -> None:
    """JOURNAL_STREAM counts only when it names the very stream written to."""
    assert under_journald({"JOURNAL_STREAM": journal_stream_of(stream)}, stream)
    assert not under_journald({}, stream)
    # Inherited from a desktop session's terminal: names some other stream.
    assert not under_journald({"JOURNAL_STREAM": "8:12345"}, stream)
    assert not under_journald({"JOURNAL_STREAM": "garbage"}, stream)
    assert not under_journald({"INVOCATION_ID": "0123abcd"}, stream)


def test_journal_formatter_prefixes_every_line_and_has_no_time() -> None:
    """A traceback's lines all carry the error's priority, so journalctl -p err shows it whole."""
    try:
        raise ValueError("bad reading")
    except ValueError:
        record = logging.LogRecord(
            "edge.site", logging.ERROR, __file__, 1, "meter %s failed", ("m1",), sys.exc_info()
        )
    lines = JournalFormatter().format(record).splitlines()
    assert lines[0] == "<3>ERROR edge.site: meter m1 failed"
    assert len(lines) > 3 and all(line.startswith("<3>") for line in lines)
    assert lines[-1] == "<3>ValueError: bad reading"


def test_configure_logging_for_journald(stream: TextIO, root_logger: logging.Logger) -> None:
    """Into the journal: `<6>INFO name: message`, no timestamp (journald adds its own)."""
    root_logger.handlers.clear()
    configure_logging("INFO", stream=stream, environ={"JOURNAL_STREAM": journal_stream_of(stream)})
    logging.getLogger("edge.test").info("listening")
    logging.getLogger("edge.test").warning("meter stale")
    logging.getLogger("edge.test").debug("not at INFO")
    stream.seek(0)
    assert stream.read().splitlines() == [
        "<6>INFO edge.test: listening",
        "<4>WARNING edge.test: meter stale",
    ]


def test_configure_logging_on_a_terminal_keeps_timestamps(
    stream: TextIO, root_logger: logging.Logger
) -> None:
    """Elsewhere the format is today's: time, level, logger, message."""
    root_logger.handlers.clear()
    configure_logging("INFO", stream=stream, environ={})
    logging.getLogger("edge.test").warning("meter stale")
    stream.seek(0)
    line = stream.read().rstrip("\n")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING edge.test: meter stale", line
    )
