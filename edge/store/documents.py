"""State documents: small tinydb files that are never left torn.

Invariants:

1. The file on disk is always a complete JSON document: it is only ever
   replaced whole (temp file, fsync, ``os.replace``, fsync of the directory).
2. In write-through mode a ``write()`` whose state cannot be serialised is
   refused and memory goes back to the last state written. In deferred mode
   (the default) a write only bumps a generation number; the state is
   serialised once per flush, on the event loop thread (tinydb mutates the
   cached dict in place), and written by a worker thread. A flush that fails
   leaves the previous file intact and the state dirty.
3. One process, one thread (the event loop) writes a given file. tinydb has no
   locks; a worker thread only ever sees immutable bytes.

tinydb aliasing: tinydb mutates the dict returned by ``read()`` in place and
hands back shallow copies of documents. Callers must not mutate nested values
of documents they got from a search; change them with ``update()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson
from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from edge.store.atomic import fsync_directory, remove_leftovers, write_atomic
from edge.times import file_stamp, utc_now

__all__ = ["AtomicJSONStorage", "DocumentStore", "DocumentStoreStatistics"]

logger = logging.getLogger(__name__)

_Tables = dict[str, dict[str, Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentStoreStatistics:
    """A snapshot of one document file's counters."""

    path: str
    writes: int  # tinydb write() calls (in memory in deferred mode)
    flushes: int  # file rewrites
    bytes_written: int  # bytes handed to the file system by flushes
    failed_flushes: int
    size_bytes: int  # size of the current serialised state
    dirty: bool
    last_flush_seconds: float


def _valid_shape(data: Any) -> bool:
    """Whether ``data`` looks like a tinydb database: {table: {doc_id: {...}}}."""
    if not isinstance(data, dict):
        return False
    for table in data.values():
        if not isinstance(table, dict):
            return False
        if not all(isinstance(doc, dict) for doc in table.values()):
            return False
    return True


class AtomicJSONStorage(Storage):
    """A tinydb storage that writes orjson atomically and caches in memory.

    Args:
        path: The JSON file. Its directory is created if missing.
        deferred: If true, ``write()`` only updates memory and marks the
            storage dirty; ``flush()`` persists. If false, every write is
            persisted before it returns.
        durable: If false, skip fsync (tests and benchmarks only).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, deferred: bool = True, durable: bool = True
    ) -> None:
        self.path = os.path.abspath(path)
        self.directory = os.path.dirname(self.path)
        self.deferred = deferred
        self.durable = durable
        self.writes = 0
        self.flushes = 0
        self.failed_flushes = 0
        self.bytes_written = 0
        # One lock serialises file replacement, so a flush in a worker thread
        # and one on the loop thread can never replace the file out of order.
        self._file_lock = threading.Lock()
        os.makedirs(self.directory, exist_ok=True)
        # A crash between writing the temp file and the rename leaves it behind; the
        # real file is still the previous complete version.
        remove_leftovers(Path(self.path))
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path + ".tmp")  # the temp file's name before 0.4
        self._data: _Tables | None = self._load()
        # The last state known to serialise: what a failed write falls back to.
        self._last_raw = b"" if self._data is None else orjson.dumps(self._data)
        # Bumped by every write; a flush records the generation it wrote. In
        # deferred mode a write only bumps it: serialising the whole database on
        # every tinydb write would make a burst of N changes cost O(N²).
        self._generation = 0
        self._flushed_generation = 0
        self._flush_lock: asyncio.Lock | None = None

    def _load(self) -> _Tables | None:
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None
        if not raw.strip():
            return None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            self._set_aside(f"not valid JSON ({exc})")
            return None
        if not _valid_shape(data):
            self._set_aside("not a tinydb database")
            return None
        return cast(_Tables, data)

    def _set_aside(self, why: str) -> None:
        stamp = file_stamp(utc_now())
        target = f"{self.path}.corrupt-{stamp}"
        n = 1
        while os.path.exists(target):
            n += 1
            target = f"{self.path}.corrupt-{stamp}-{n}"
        os.replace(self.path, target)
        if self.durable:
            fsync_directory(self.directory)
        # Starting empty beats not starting at all: chargers re-register and the
        # operator can restore from the set-aside file.
        logger.error(
            "document file %s is %s; moved it to %s and started empty", self.path, why, target
        )

    # -- tinydb Storage interface -------------------------------------------

    def read(self) -> _Tables | None:
        """Return the cached state (tinydb mutates it in place before write())."""
        return self._data

    def write(self, data: _Tables) -> None:
        """Record a new state; persist it now unless deferred.

        Raises:
            orjson.JSONEncodeError: a document is not JSON-serialisable. The
                in-memory state is restored to the last successful write.
            OSError: (not deferred) the file could not be replaced; memory is
                restored to what is on disk.
        """
        self.writes += 1
        if self.deferred:
            self._data = data
            self._generation += 1
            return
        try:
            raw = orjson.dumps(data)
        except BaseException:
            self._restore()
            raise
        self._data = data
        self._generation += 1
        try:
            self._persist((self._generation, raw))
        except BaseException:
            self._restore()
            raise

    def close(self) -> None:
        """Flush, then drop the cache."""
        self.flush()
        self._data = None

    # -- persistence ----------------------------------------------------------

    @property
    def dirty(self) -> bool:
        """Whether memory holds writes that are not on disk yet."""
        return self._generation != self._flushed_generation

    def _snapshot(self) -> tuple[int, bytes]:
        # On the loop thread: tinydb mutates the cached dict in place, so the
        # bytes must be taken here, not in the worker thread.
        return self._generation, orjson.dumps(self._data)

    def flush(self) -> bool:
        """Persist the latest state if dirty. Returns whether a file was written.

        Raises:
            OSError: the file could not be written; the state stays dirty and
                the previous file is intact, so the caller may retry later.
        """
        if not self.dirty:
            return False
        self._persist(self._snapshot())
        return True

    async def flush_async(self) -> bool:
        """Return once the state as of the call is on disk; the I/O runs in a worker thread.

        fsync on an SD card can take tens of milliseconds; this keeps the event
        loop serving chargers meanwhile. Concurrent callers share flushes: one
        that finds its changes written by a flush it waited behind returns at
        once, so N chargers booting together cost a few file rewrites, not N.
        """
        target = self._generation
        if target <= self._flushed_generation:
            return False
        if self._flush_lock is None:
            self._flush_lock = asyncio.Lock()
        async with self._flush_lock:
            if target <= self._flushed_generation:
                return False
            await asyncio.to_thread(self._persist, self._snapshot())
            return True

    def _persist(self, snapshot: tuple[int, bytes]) -> None:
        generation, raw = snapshot
        with self._file_lock:
            if generation <= self._flushed_generation:
                return  # a flush of this state or a newer one got there first
            try:
                write_atomic(Path(self.path), raw, durable=self.durable)
            except BaseException:
                self.failed_flushes += 1
                raise
            self.flushes += 1
            self.bytes_written += len(raw)
            self._flushed_generation = max(self._flushed_generation, generation)
            self._last_raw = raw

    def _restore(self) -> None:
        # tinydb already mutated the cached dict before calling write(); rebuild
        # the cache from the last good serialised state.
        raw = self._last_raw
        self._data = cast(_Tables, orjson.loads(raw)) if raw else None
        self._generation = self._flushed_generation

    @property
    def size_bytes(self) -> int:
        """Size of the state last written to disk."""
        return len(self._last_raw)


class DocumentStore:
    """One small tinydb database file (one per concern: chargers, id tags, ...).

    In deferred mode (the default) tinydb writes only change memory; the owner
    calls :meth:`flush` about once a second and right after operator changes,
    so a burst of 2000 charger boots costs a few file rewrites, not 2000.

    Args:
        path: The JSON file.
        deferred: Persist on :meth:`flush` only (see above).
        durable: If false, skip fsync (tests and benchmarks only).
    """

    def __init__(self, path: Path, *, deferred: bool = True, durable: bool = True) -> None:
        self.path = Path(path)
        self._db = TinyDB(self.path, storage=AtomicJSONStorage, deferred=deferred, durable=durable)
        self._storage = cast(AtomicJSONStorage, self._db.storage)
        self._closed = False
        self._flush_seconds = 0.0

    @property
    def db(self) -> TinyDB:
        """The tinydb database."""
        return self._db

    def table(self, name: str) -> Table:
        """Return the tinydb table ``name`` (created on first write)."""
        return self._db.table(name)

    @property
    def dirty(self) -> bool:
        """Whether there are writes not yet on disk."""
        return self._storage.dirty

    def flush(self) -> None:
        """Persist now if dirty; a no-op otherwise.

        Raises:
            OSError: the write failed; the data stays in memory and dirty, the
                previous file is intact. Log it and let the next flush retry.
        """
        started = time.perf_counter()
        if self._storage.flush():
            self._flush_seconds = time.perf_counter() - started

    async def flush_async(self) -> None:
        """Like :meth:`flush` but with the file I/O off the event loop."""
        started = time.perf_counter()
        if await self._storage.flush_async():
            self._flush_seconds = time.perf_counter() - started

    def close(self) -> None:
        """Flush and close. Idempotent."""
        if self._closed:
            return
        self._storage.flush()
        self._closed = True
        self._db.close()

    def statistics(self) -> DocumentStoreStatistics:
        """Return a snapshot of the counters."""
        s = self._storage
        return DocumentStoreStatistics(
            path=str(self.path),
            writes=s.writes,
            flushes=s.flushes,
            bytes_written=s.bytes_written,
            failed_flushes=s.failed_flushes,
            size_bytes=s.size_bytes,
            dirty=s.dirty,
            last_flush_seconds=self._flush_seconds,
        )
