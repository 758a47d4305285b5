"""Group commit: one writer thread runs many queued operations per transaction.

Rules:

1. Only the writer thread touches the write connection.
2. Futures are created, resolved and read on the event loop thread only; the
   writer thread hands a whole batch's outcomes over with ONE
   ``call_soon_threadsafe``.
3. A future is resolved only after the transaction holding its operation has
   committed, so an awaited write is durable (to the ``synchronous`` level).
4. A failing operation fails alone: the batch is rolled back and run again
   without it, in one transaction. Failures are rare (a bug), so the common
   path pays for no savepoints. If the transaction itself breaks (COMMIT fails,
   or sqlite aborted it, e.g. a full disk), the ops are re-run one per transaction.
5. A *lazy* operation does not start a commit of its own: it joins the next batch
   (whatever its trigger), or is committed alone once the writer has waited
   ``lazy_delay`` for anything else. Its future, like every other, resolves once it
   is committed.
6. An operation's ``committed`` callback runs on the event loop thread after its
   commit, in commit order, even if its caller stopped waiting (cancelled future).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import JournalClosedError
from .records import JournalStatistics

__all__ = ["GroupCommitWriter"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(slots=True)
class _Op:
    name: str
    run: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    committed: Callable[[], None] | None = None


_Outcome = tuple[_Op, BaseException | None, Any]


class _Stop:
    """Queue sentinel: finish what is queued, then stop."""


class _TransactionBroken(Exception):
    """The batch's transaction is gone; the batch must be re-run op by op."""


class _OpFailed(Exception):
    """Operation `index` of the batch raised `error`; the transaction is still open."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


def _log_failure(name: str) -> Callable[[asyncio.Future[Any]], None]:
    def callback(future: asyncio.Future[Any]) -> None:
        # Retrieving the exception here also prevents asyncio's "exception was
        # never retrieved" warning for fire-and-forget records.
        if not future.cancelled() and (exc := future.exception()) is not None:
            logger.error("journal operation %s failed", name, exc_info=exc)

    return callback


class GroupCommitWriter:
    """Runs write operations on a dedicated thread, committing in batches.

    Args:
        connect: Called on the writer thread to open the write connection
            (in autocommit mode: ``isolation_level=None``) and set up the schema.
        finalize: Called on the writer thread before the connection closes.
        max_batch: Most operations per transaction.
        commit_interval: Least time between the starts of two commits, s. Under
            load, operations arriving meanwhile join the next batch, so fewer
            fsyncs carry more messages (less CPU, fewer bytes on the SD card); an
            operation arriving after a quiet spell is committed at once.
        lazy_delay: Longest time a lazy operation waits for a batch to join, s.
        name: The thread name.
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        finalize: Callable[[sqlite3.Connection], None] | None = None,
        max_batch: int = 1000,
        commit_interval: float = 0.0,
        lazy_delay: float = 0.5,
        name: str = "journal-writer",
    ) -> None:
        self._connect = connect
        self._finalize = finalize
        self._max_batch = max_batch
        self._commit_interval = commit_interval
        self._next_commit_at = 0.0
        self._name = name
        self._lazy_delay = lazy_delay
        self._queue: queue.SimpleQueue[_Op | _Stop] = queue.SimpleQueue()
        # Lazy operations wait here, not in the queue, whose every item wakes the writer.
        self._lazy: list[_Op] = []
        self._lazy_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._accepting = False
        self._stopped: asyncio.Future[None] | None = None
        self._inflight: list[_Op] = []
        # Counters: written by the writer thread, read anywhere (a snapshot may
        # be a few operations stale, which is fine for a status page).
        self._submitted = 0
        self._completed = 0
        self._failed = 0
        self._commits = 0
        self._largest_batch = 0
        self._last_batch = 0
        self._fallbacks = 0
        self._commit_seconds = 0.0
        self._max_commit_seconds = 0.0

    async def start(self) -> None:
        """Start the thread and wait until ``connect`` has succeeded.

        Raises:
            Exception: whatever ``connect`` raised.
        """
        if self._thread is not None:
            raise RuntimeError("the journal writer was already started")
        loop = asyncio.get_running_loop()
        self._loop = loop
        started: asyncio.Future[None] = loop.create_future()
        self._stopped = loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name=self._name, daemon=True
        )
        self._thread.start()
        await started
        self._accepting = True

    def submit(
        self,
        name: str,
        run: Callable[[sqlite3.Connection], T],
        *,
        lazy: bool = False,
        committed: Callable[[], None] | None = None,
    ) -> asyncio.Future[T]:
        """Queue ``run(connection)``; its result or exception lands on the future.

        Must be called on the event loop thread. A done-callback logs failures,
        so the caller may drop the future of a fire-and-forget record.
        ``lazy``: commit it with the next batch, or after ``lazy_delay`` (rule 5).
        ``committed``: called on the loop thread once it is committed (rule 6).
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_log_failure(name))
        if not self._accepting:
            future.set_exception(JournalClosedError(f"journal is not open ({name})"))
            return future
        self._submitted += 1
        op = _Op(name, run, future, committed)
        if lazy:
            with self._lazy_lock:
                self._lazy.append(op)
        else:
            self._queue.put(op)
        return future

    def failed(self, name: str, exc: BaseException) -> asyncio.Future[Any]:
        """Return a future already failed with ``exc`` (logged like a failed operation)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_log_failure(name))
        future.set_exception(exc)
        return future

    @property
    def accepting(self) -> bool:
        """Whether :meth:`submit` queues operations."""
        return self._accepting

    async def stop(self) -> None:
        """Stop accepting, finish everything queued, finalize, join the thread."""
        if self._thread is None or self._stopped is None:
            return
        if self._accepting:
            self._accepting = False
            self._queue.put(_Stop())
        await asyncio.shield(self._stopped)
        self._thread.join()

    def statistics(self) -> JournalStatistics:
        """Return a snapshot of the counters."""
        return JournalStatistics(
            commits=self._commits,
            operations=self._completed,
            failed_operations=self._failed,
            largest_batch=self._largest_batch,
            last_batch=self._last_batch,
            queue_depth=self._submitted - self._completed,
            fallbacks=self._fallbacks,
            commit_seconds=self._commit_seconds,
            max_commit_seconds=self._max_commit_seconds,
        )

    # -- writer thread --------------------------------------------------------

    def _call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            logger.warning("journal writer: event loop closed, dropping %s", callback)

    def _run(self, started: asyncio.Future[None]) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            self._call_soon(_set_exception, started, exc)
            self._call_soon(_set_result, self._stopped, None)
            return
        self._call_soon(_set_result, started, None)
        try:
            self._serve(conn)
        except BaseException as exc:  # a bug here must not leave callers hanging
            logger.critical("journal writer thread died", exc_info=exc)
            self._accepting = False
            self._fail_queued(exc, self._inflight)
        finally:
            try:
                if self._finalize is not None:
                    self._finalize(conn)
            except sqlite3.Error:
                logger.exception("journal: finalizing the database failed")
            finally:
                conn.close()
                self._call_soon(_set_result, self._stopped, None)

    def _take_lazy(self) -> list[_Op]:
        with self._lazy_lock:
            lazy, self._lazy = self._lazy, []
        return lazy

    def _serve(self, conn: sqlite3.Connection) -> None:
        while True:
            # Lazy operations never wake this thread (that would cost what they save):
            # they join the next batch, and a quiet spell of lazy_delay commits them.
            try:
                first: _Op | _Stop | None = self._queue.get(timeout=self._lazy_delay)
            except queue.Empty:
                first = None
            stopping = isinstance(first, _Stop)
            batch: list[_Op] = []
            if isinstance(first, _Op):
                if self._commit_interval:
                    delay = self._next_commit_at - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    self._next_commit_at = time.monotonic() + self._commit_interval
                batch.append(first)
                while len(batch) < self._max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if isinstance(item, _Stop):
                        stopping = True
                        break
                    batch.append(item)
            # Taken after the queue: a lazy op submitted before any op of this batch
            # is in this batch (or an earlier one), never a later one.
            batch = self._take_lazy() + batch
            if not batch:
                if stopping:
                    return
                continue
            self._inflight = batch
            outcomes = self._execute(conn, batch)
            self._inflight = []
            self._last_batch = len(batch)
            self._largest_batch = max(self._largest_batch, len(batch))
            self._failed += sum(1 for _, exc, _ in outcomes if exc is not None)
            self._completed += len(batch)
            self._call_soon(_resolve, outcomes)
            if stopping:
                return

    def _execute(self, conn: sqlite3.Connection, batch: list[_Op]) -> list[_Outcome]:
        failed: list[_Outcome] = []
        while True:
            try:
                return failed + self._execute_in_one_transaction(conn, batch)
            except _OpFailed as err:
                self._rollback(conn)
                failed.append((batch[err.index], err.error, None))
                batch = batch[: err.index] + batch[err.index + 1 :]
                if not batch:
                    return failed
            except (sqlite3.Error, _TransactionBroken) as exc:
                self._rollback(conn)
                return failed + self._execute_one_by_one(conn, batch, exc)

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                logger.exception("journal: ROLLBACK failed")

    def _execute_one_by_one(
        self, conn: sqlite3.Connection, batch: list[_Op], exc: Exception
    ) -> list[_Outcome]:
        if len(batch) == 1:
            cause = exc.__cause__ if isinstance(exc, _TransactionBroken) else exc
            return [(batch[0], cause or exc, None)]
        self._fallbacks += 1
        logger.warning("journal: batch of %d failed (%s); re-running op by op", len(batch), exc)
        return [self._execute(conn, [op])[0] for op in batch]

    def _execute_in_one_transaction(
        self, conn: sqlite3.Connection, batch: list[_Op]
    ) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        conn.execute("BEGIN IMMEDIATE")
        for index, op in enumerate(batch):
            try:
                result = op.run(conn)
            except Exception as exc:
                if not conn.in_transaction:
                    # sqlite rolled the whole transaction back (e.g. SQLITE_FULL).
                    raise _TransactionBroken(str(exc)) from exc
                raise _OpFailed(index, exc) from exc
            outcomes.append((op, None, result))
        started = time.perf_counter()
        conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        self._commits += 1
        self._commit_seconds += elapsed
        self._max_commit_seconds = max(self._max_commit_seconds, elapsed)
        return outcomes

    def _fail_queued(self, exc: BaseException, inflight: list[_Op]) -> None:
        error = JournalClosedError(f"journal writer died: {exc!r}")
        failed: list[_Outcome] = [(op, error, None) for op in inflight]
        failed += [(op, error, None) for op in self._take_lazy()]
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Op):
                failed.append((item, error, None))
        self._completed += len(failed)
        self._failed += len(failed)
        self._call_soon(_resolve, failed)


# -- run on the event loop thread ------------------------------------------------


def _resolve(outcomes: list[_Outcome]) -> None:
    for op, exc, result in outcomes:
        future = op.future
        if not future.done():  # else cancelled by its caller
            if exc is None:
                future.set_result(result)
            else:
                future.set_exception(exc)
        if exc is None and op.committed is not None:
            try:
                op.committed()
            except Exception:  # a listener's bug must not stop the other outcomes
                logger.exception("journal operation %s: committed callback failed", op.name)


def _set_result(future: asyncio.Future[Any] | None, value: Any) -> None:
    if future is not None and not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
