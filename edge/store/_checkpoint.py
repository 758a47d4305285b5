"""Folding the journal's WAL back into the database, off the commit path.

With sqlite's automatic checkpoint the committing thread copies WAL pages into
the database file and fsyncs it, stalling every transaction message waiting on
that commit (tens of ms on an SD card). Here a separate connection runs PASSIVE
checkpoints, which never block the writer, when the WAL has grown or a while has
passed. Waiting longer also writes each hot page to the database file once per
checkpoint rather than many times, which is what wears an SD card.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["Checkpointer"]

logger = logging.getLogger(__name__)


class Checkpointer:
    """A thread that checkpoints the WAL of `path` in the background.

    Args:
        connect: Opens a connection to the database (called on the thread).
        wal_path: The WAL file, whose size triggers a checkpoint.
        max_wal_bytes: Checkpoint once the WAL is at least this large.
        max_age: Checkpoint at least this often (s) while the WAL is not empty.
        poll: How often the WAL size is looked at (s).
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        wal_path: Path,
        *,
        max_wal_bytes: int,
        max_age: float,
        poll: float = 0.5,
    ) -> None:
        self._connect = connect
        self._wal_path = wal_path
        self._max_wal_bytes = max_wal_bytes
        self._max_age = max_age
        self._poll = poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checkpoints = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="journal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (the writer does the final, truncating checkpoint)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _wal_size(self) -> int:
        try:
            return os.path.getsize(self._wal_path)
        except OSError:
            return 0

    def _run(self) -> None:
        try:
            conn = self._connect()
        except sqlite3.Error:
            logger.exception("journal checkpointer could not open the database")
            return
        last = time.monotonic()
        try:
            while not self._stop.wait(self._poll):
                size = self._wal_size()
                due = size >= self._max_wal_bytes or (
                    size > 0 and time.monotonic() - last >= self._max_age
                )
                if not due:
                    continue
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:
                    logger.exception("journal checkpoint failed")
                else:
                    self.checkpoints += 1
                last = time.monotonic()
        finally:
            conn.close()
