"""The journal: transactions, meter samples, status history and events in sqlite.

Invariants:

1. Writes run on one writer thread with group commit (see ``_groupcommit``):
   a write's future resolves only after its transaction committed; with
   ``synchronous=FULL`` (the default) that means fsynced, so the caller may then
   acknowledge StartTransaction / StopTransaction / MeterValues.
2. Reads run on the event loop thread on their own connection. In WAL mode a
   reader never waits for the writer; every read is a few short autocommit
   queries, so no reader holds a snapshot that would stall checkpoints.
3. Bytes written per message are what wears an SD card, and every distinct
   page a commit dirties is written. Every table that grows per message is
   rowid-ordered (appends touch the last leaf page, which the whole batch
   shares) and has at most one small index, keyed by id bucket first so a
   batch's entries share leaves too; nothing is upserted per message (see
   ``_queries``).
4. Transaction ids come from AUTOINCREMENT, so they are never reused, even
   after pruning every row or setting aside a corrupt file (the old sequence
   is salvaged when possible).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from edge.times import file_stamp, format_time, to_epoch, utc_now

from . import _outbox
from . import _queries as q
from ._buckets import bucket_chunks, newest_first
from ._checkpoint import Checkpointer
from ._codec import encode_sampled_value
from ._groupcommit import GroupCommitWriter
from ._outbox import OutboxEntry, OutboxMessage, OutboxSummary
from ._retention import PruneState, prune_step
from ._rows import sample_record, status_record, transaction_record
from ._schema import prepare
from .errors import JournalClosedError
from .records import JournalStatistics, MeterSample, StatusRecord, TransactionRecord

__all__ = ["DEFAULT_PAGE_SIZE", "Journal"]

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 1024
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_WAL_CHECKPOINT_BYTES = 4 * 1024 * 1024  # a larger WAL rewrites hot pages less often
_CHECKPOINT_MAX_AGE = 30.0  # s: a quiet site still folds its WAL in regularly
# Under load, a commit waits this long after the previous one began, so the messages
# arriving meanwhile share its fsync. A lone message is never delayed.
DEFAULT_COMMIT_INTERVAL = 0.002
# A lazy write (the cloud link's ack) rides in the next commit, or waits at most this long.
DEFAULT_LAZY_DELAY = 0.5
_JOURNAL_SIZE_LIMIT = 8 * 1024 * 1024  # the WAL is truncated back to this after a checkpoint


class _Written:
    """The outbox row a write inserted, handed to the journal's `on_outbox` once its
    transaction committed (a re-run after a rollback replaces it)."""

    __slots__ = ("entry", "journal")

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.entry: OutboxEntry | None = None

    def __call__(self) -> None:
        listener = self.journal.on_outbox
        if self.entry is not None and listener is not None:
            listener(self.entry)


class Journal:
    """Append-heavy durable records in one sqlite file in WAL mode.

    Args:
        path: The database file; its directory is created if missing.
        synchronous: sqlite ``synchronous``: "FULL" (durable at commit: the
            default, required for acknowledging transaction messages), or
            "NORMAL"/"OFF" for benchmarks.
        page_size: Page size for a new database (an existing file keeps its own).
        max_batch: Most operations per commit.
        commit_interval: See `GroupCommitWriter`.
        lazy_delay: Longest wait of a lazy write for a commit to ride in (`outbox_ack`).
        clock: Server time, for retention (``stopped_at``, sample receive time).
    """

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "FULL",
        page_size: int = DEFAULT_PAGE_SIZE,
        max_batch: int = 1000,
        commit_interval: float = DEFAULT_COMMIT_INTERVAL,
        lazy_delay: float = DEFAULT_LAZY_DELAY,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        synchronous = synchronous.upper()
        if synchronous not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {_SYNCHRONOUS}, not {synchronous!r}")
        self.path = Path(path)
        self._synchronous = synchronous
        self._page_size = page_size
        self._clock = clock
        self._writer = GroupCommitWriter(
            self._connect_writer,
            finalize=_finalize,
            max_batch=max_batch,
            commit_interval=commit_interval,
            lazy_delay=lazy_delay,
        )
        self._checkpointer = Checkpointer(
            self._connect_checkpointer,
            Path(f"{self.path}-wal"),
            max_wal_bytes=_WAL_CHECKPOINT_BYTES,
            max_age=_CHECKPOINT_MAX_AGE,
        )
        self._reader: sqlite3.Connection | None = None
        self._statuses_since_flush = 0
        self.on_outbox: Callable[[OutboxEntry], None] | None = None
        """Called on the event loop thread with every outbox row once it is committed,
        in the outbox's order (also when the writer's caller stopped waiting)."""

    # -- lifecycle ------------------------------------------------------------

    async def open(self) -> None:
        """Open (recovering after a crash), create the schema, start the writer.

        A leftover -wal/-shm is normal after a crash: sqlite replays the WAL. A
        file that is not a database at all is set aside (see ``_set_aside``).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await self._writer.start()
        try:
            reader = sqlite3.connect(self.path, isolation_level=None, timeout=2.0)
            reader.execute("PRAGMA query_only = ON")
            reader.execute("PRAGMA cache_size = -1024")  # KiB: API reads are occasional
        except BaseException:
            await self._writer.stop()
            raise
        self._reader = reader
        self._checkpointer.start()

    async def close(self) -> None:
        """Finish every queued write, checkpoint the WAL into the file, close."""
        await asyncio.to_thread(self._checkpointer.stop)
        await self._writer.stop()
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    async def __aenter__(self) -> Journal:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def statistics(self) -> JournalStatistics:
        """Return a snapshot of the writer's counters."""
        return self._writer.statistics()

    def _connect_writer(self) -> sqlite3.Connection:
        try:
            return self._open_database(sequence_floor=None)
        except sqlite3.DatabaseError as exc:
            if not (getattr(exc, "sqlite_errorname", "") or "").startswith(
                ("SQLITE_CORRUPT", "SQLITE_NOTADB")
            ):
                raise
            floor = self._salvage_sequence()
            self._set_aside(exc)
            return self._open_database(sequence_floor=floor)

    def _open_database(self, *, sequence_floor: int | None) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        try:
            # page_size only takes effect on a new, empty file, so it comes first.
            conn.execute(f"PRAGMA page_size = {int(self._page_size)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            # Checkpoints run on their own thread (see _checkpoint.py), never in a commit.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute(f"PRAGMA journal_size_limit = {_JOURNAL_SIZE_LIMIT}")
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("PRAGMA cache_size = -4096")  # KiB: keeps the hot index leaves cached
            prepare(conn)
            if sequence_floor is not None:
                conn.execute(q.SEED_SEQUENCE, (sequence_floor,))
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_checkpointer(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        conn.execute("PRAGMA cache_size = -128")  # KiB: a checkpoint streams pages through
        return conn

    def _salvage_sequence(self) -> int:
        try:
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            with contextlib.closing(sqlite3.connect(uri, uri=True)) as old:
                row = old.execute(q.READ_SEQUENCE).fetchone()
            if row is not None and row[0] is not None:
                return int(row[0])
        except sqlite3.Error:
            pass
        # Unknown: jump to the unix time so new ids cannot collide with ids the
        # chargers and the back office already saw (it still fits in an int32).
        return int(time.time())

    def _set_aside(self, exc: sqlite3.DatabaseError) -> None:
        stamp = file_stamp(utc_now())
        for suffix in ("", "-wal", "-shm", "-journal"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                os.replace(source, f"{self.path}.corrupt-{stamp}{suffix}")
        # The service must start: keep the bad file for forensics, start a new one.
        logger.error(
            "journal %s is unreadable (%s); set aside as .corrupt-%s", self.path, exc, stamp
        )

    # -- writes (call on the event loop thread; each returns a future) --------

    def start_transaction(
        self,
        *,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        id_tag_status: str,
        meter_start: int,
        start_time: str,
        reservation_id: int | None,
        created_at: str,
        outbox: OutboxMessage | None = None,
    ) -> asyncio.Future[int]:
        """Record a started transaction; the future gives its new transactionId.

        `outbox`: the message for the cloud, committed with the record (every write
        below takes one)."""
        params = (
            charger_id,
            connector_id,
            id_tag,
            id_tag_status,
            meter_start,
            start_time,
            reservation_id,
            created_at,
        )

        written = _Written(self)

        def run(conn: sqlite3.Connection) -> int:
            transaction_id = conn.execute(q.INSERT_TRANSACTION, params).lastrowid
            assert transaction_id is not None
            if outbox is not None:
                written.entry = _outbox.insert(conn, outbox, transaction_id)
            return transaction_id

        return self._writer.submit(
            "start_transaction", run, committed=written if outbox is not None else None
        )

    def stop_transaction(
        self,
        *,
        transaction_id: int,
        meter_stop: int,
        stop_time: str,
        reason: str,
        stop_id_tag: str | None,
        outbox: OutboxMessage | None = None,
    ) -> asyncio.Future[TransactionRecord | None]:
        """Record a stop; the future gives the stopped record.

        It gives None for an unknown id (answer the charger normally anyway),
        and the existing record unchanged if the transaction was already
        stopped, so a retried StopTransaction never counts twice.
        """
        stopped_at = format_time(self._clock())
        written = _Written(self)

        def run(conn: sqlite3.Connection) -> TransactionRecord | None:
            if outbox is not None:
                # A repeated stop goes too: the cloud de-duplicates, and a stop for a
                # transaction the edge does not know is still the charger's word.
                written.entry = _outbox.insert(conn, outbox, transaction_id)
            row = conn.execute(q.SELECT_TRANSACTION, (transaction_id,)).fetchone()
            if row is None:
                return None
            record = transaction_record(row)
            if not record.active:
                return record
            energy_wh = float(meter_stop - record.meter_start)
            conn.execute(
                q.STOP_TRANSACTION,
                (stop_time, meter_stop, reason, stop_id_tag, energy_wh, stopped_at, transaction_id),
            )
            return dataclasses.replace(
                record,
                stop_time=stop_time,
                meter_stop=meter_stop,
                stop_reason=reason,
                stop_id_tag=stop_id_tag,
                energy_wh=energy_wh,
            )

        return self._writer.submit(
            "stop_transaction", run, committed=written if outbox is not None else None
        )

    def add_meter_samples(
        self,
        *,
        charger_id: str,
        connector_id: int,
        transaction_id: int | None,
        samples: Sequence[MeterSample],
        outbox: OutboxMessage | None = None,
    ) -> asyncio.Future[None]:
        """Append the MeterValue elements of one message."""
        received = int(to_epoch(self._clock()))
        # Serialise here, on the loop thread: the caller may reuse its lists
        # while the writer thread runs. Compression happens on the writer thread.
        try:
            rows = [
                (
                    transaction_id,
                    charger_id,
                    connector_id,
                    received,
                    sample.timestamp,
                    sample.register_wh,
                    orjson.dumps(sample.sampled_value),
                )
                for sample in samples
            ]
        except orjson.JSONEncodeError as exc:
            return self._writer.failed("add_meter_samples", exc)

        written = _Written(self)

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(q.INSERT_SAMPLE, [(*r[:6], encode_sampled_value(r[6])) for r in rows])
            if transaction_id is not None and rows:
                conn.execute(q.RAISE_SAMPLE_CEILING, (transaction_id,))
            if outbox is not None:
                written.entry = _outbox.insert(conn, outbox, transaction_id)

        return self._writer.submit(
            "add_meter_samples", run, committed=written if outbox is not None else None
        )

    def add_status(
        self, record: StatusRecord, outbox: OutboxMessage | None = None
    ) -> asyncio.Future[None]:
        """Append a StatusNotification; it is its connector's latest from then on.

        Every ``LATEST_STATUS_FLUSH`` statuses the ``latest_status`` snapshot is
        brought up to date in one batch (see ``_queries``).
        """
        params = (
            record.charger_id,
            record.connector_id,
            record.status,
            record.error_code,
            record.info,
            record.vendor_id,
            record.vendor_error_code,
            record.timestamp,
            record.received_at,
        )

        written = _Written(self)

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(q.INSERT_STATUS, params)
            if outbox is not None:
                written.entry = _outbox.insert(conn, outbox, None)

        future = self._writer.submit(
            "add_status", run, committed=written if outbox is not None else None
        )
        self._statuses_since_flush += 1
        if self._statuses_since_flush >= q.LATEST_STATUS_FLUSH:
            self._statuses_since_flush = 0
            self._writer.submit("flush_latest_status", _flush_latest_status)
        return future

    def add_event(
        self,
        *,
        charger_id: str | None,
        kind: str,
        data: dict[str, Any],
        at: str,
        outbox: OutboxMessage | None = None,
    ) -> asyncio.Future[None]:
        """Append an audit/event record (boot, operator command and result, anomaly)."""
        try:
            params = (charger_id, kind, orjson.dumps(data), at)
        except orjson.JSONEncodeError as exc:
            return self._writer.failed("add_event", exc)

        written = _Written(self)

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(q.INSERT_EVENT, params)
            if outbox is not None:
                written.entry = _outbox.insert(conn, outbox, None)

        return self._writer.submit(
            "add_event", run, committed=written if outbox is not None else None
        )

    def prune(
        self,
        *,
        now: datetime,
        meter_sample_days: float,
        transaction_days: float,
        event_days: float,
    ) -> asyncio.Future[int]:
        """Delete records older than their retention window; the future gives the count.

        Meter samples go by server receive time, closed transactions by the
        server time of their stop, events and status history by ``at`` /
        ``received_at`` (``event_days``). An active transaction and its samples,
        and each connector's latest status, are never deleted. Samples outlive
        their transaction if ``meter_sample_days > transaction_days`` (until
        their own window ends). The work runs as a chain of small steps (one
        commit each), so other writes interleave.
        """
        state = PruneState(
            sample_cutoff=int(to_epoch(now - timedelta(days=meter_sample_days))),
            transaction_cutoff=format_time(now - timedelta(days=transaction_days)),
            event_cutoff=format_time(now - timedelta(days=event_days)),
        )
        outer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        # Step failures are logged by the writer; this only marks it retrieved.
        outer.add_done_callback(lambda f: f.cancelled() or f.exception())

        def step_done(step: asyncio.Future[bool]) -> None:
            if outer.done():
                return
            if step.cancelled() or step.exception() is not None:
                outer.set_exception(step.exception() or asyncio.CancelledError())
            elif step.result() and self._writer.accepting:
                self._writer.submit(
                    "prune", lambda conn: prune_step(conn, state)
                ).add_done_callback(step_done)
            else:
                outer.set_result(state.deleted)

        self._writer.submit("prune", lambda conn: prune_step(conn, state)).add_done_callback(
            step_done
        )
        return outer

    # -- the upstream outbox (`_outbox`) -------------------------------------

    def outbox_ack(
        self,
        seqs: tuple[int, ...],
        mapping: tuple[int, int, str | None] | None = None,
        *,
        lazy: bool = False,
    ) -> asyncio.Future[None]:
        """Rows the cloud took (and the cloud's id of a started transaction).

        `lazy`: no commit of its own: it joins the next commit, whatever writes it, or
        `flush`'s, or is committed alone within the writer's ``lazy_delay``. Until its
        future is done the rows are still on disk (a read still finds them)."""
        return self._writer.submit(
            "outbox_ack", lambda conn: _outbox.ack(conn, seqs, mapping), lazy=lazy
        )

    def flush(self) -> asyncio.Future[None]:
        """A commit now, which carries every lazy write waiting (see `outbox_ack`)."""
        return self._writer.submit("flush", _nothing)

    def outbox_attempt(self, seq: int, parked: str | None = None) -> asyncio.Future[None]:
        """Count a try the cloud refused; park the row with `parked` as the reason."""
        return self._writer.submit(
            "outbox_attempt", lambda conn: _outbox.note_attempt(conn, seq, parked)
        )

    def outbox_expire(self, before: datetime) -> asyncio.Future[int]:
        """Drop rows older than the retention; the future gives how many."""
        cutoff = format_time(before)
        return self._writer.submit("outbox_expire", lambda conn: _outbox.expire(conn, cutoff))

    def outbox_pending(self, charger_id: str, limit: int = 100) -> list[OutboxEntry]:
        return _outbox.pending(self._read(), charger_id, limit)

    def outbox_parked(self, charger_id: str | None = None, limit: int = 100) -> list[OutboxEntry]:
        return _outbox.parked(self._read(), charger_id, limit)

    def outbox_summaries(self) -> dict[str, OutboxSummary]:
        return _outbox.summaries(self._read())

    def cloud_transaction(self, edge_tx: int) -> tuple[int, str | None] | None:
        """(the cloud's transactionId, its idTagInfo status) for an edge transaction."""
        return _outbox.cloud_tx(self._read(), edge_tx)

    def edge_transaction(self, cloud_tx: object) -> int | None:
        """The edge transaction the cloud knows as `cloud_tx` (None for anything else)."""
        return _outbox.edge_tx(self._read(), cloud_tx)

    # -- reads (synchronous, on the event loop thread, bounded) ---------------

    def _read(self) -> sqlite3.Connection:
        if self._reader is None:
            raise JournalClosedError("journal is not open")
        return self._reader

    def get_transaction(self, transaction_id: int) -> TransactionRecord | None:
        """Return one transaction, or None."""
        row = self._read().execute(q.SELECT_TRANSACTION, (transaction_id,)).fetchone()
        return None if row is None else transaction_record(row)

    def list_transactions(
        self,
        *,
        charger_id: str | None = None,
        active: bool | None = None,
        limit: int = 100,
        before_id: int | None = None,
        started_from: str | None = None,
        started_before: str | None = None,
    ) -> list[TransactionRecord]:
        """Return transactions newest first; page with ``before_id``.

        ``started_from`` / ``started_before``: only those whose start time (canonical
        text, `edge.times.format_time`, so text order is time order) is at or after /
        before these. With ``charger_id`` (and not ``active=True``), the charger's
        buckets are walked newest first (see ``_buckets``).
        """
        where: list[str] = []
        params: list[Any] = []
        if active is not None:
            where.append("stop_time IS NULL" if active else "stop_time IS NOT NULL")
        if started_from is not None:
            where.append("start_time >= ?")
            params.append(started_from)
        if started_before is not None:
            where.append("start_time < ?")
            params.append(started_before)
        if before_id is not None:
            where.append("id < ?")
            params.append(before_id)
        conn = self._read()
        if charger_id is not None and not active:
            sql = q.SELECT_CHARGER_TRANSACTIONS + "".join(f" AND {w}" for w in where)
            rows = newest_first(
                conn,
                sql + " ORDER BY id DESC LIMIT ?",
                (charger_id, *params),
                table="transactions",
                shift=q.TRANSACTION_SHIFT,
                limit=limit,
                below=before_id,
            )
            return [transaction_record(row) for row in rows]
        if charger_id is not None:
            where.append("charger_id = ?")
            params.append(charger_id)
        # Few transactions are active among many: read those off the partial index.
        sql = q.SELECT_ACTIVE_INDEXED if active else q.SELECT_TRANSACTIONS
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [transaction_record(row) for row in conn.execute(sql, params)]

    def active_transactions(self) -> list[TransactionRecord]:
        """Return every transaction not stopped yet, oldest first."""
        rows = self._read().execute(q.SELECT_ACTIVE_TRANSACTIONS)
        return [transaction_record(row) for row in rows]

    def _sample_buckets(self, transaction_id: int) -> range:
        """The index buckets that can hold the transaction's samples, oldest first."""
        conn = self._read()
        row = conn.execute(q.SELECT_SAMPLE_RANGE, (transaction_id,)).fetchone()
        if row is None:
            return range(0)  # unknown (or pruned) transaction
        floor, ceiling = row
        if ceiling is None:  # still active: up to the newest sample
            ceiling = conn.execute(q.SELECT_MAX_SAMPLE_ID).fetchone()[0]
        return range((floor + 1) >> q.SAMPLE_SHIFT, (ceiling >> q.SAMPLE_SHIFT) + 1)

    def meter_samples(self, transaction_id: int, *, limit: int = 1000) -> list[MeterSample]:
        """Return a transaction's samples in the order received (oldest first)."""
        conn = self._read()
        buckets = self._sample_buckets(transaction_id)
        samples: list[MeterSample] = []
        for chunk in bucket_chunks(buckets):
            if len(samples) >= limit:
                break
            rows = conn.execute(q.SELECT_SAMPLES, (*chunk, transaction_id, limit - len(samples)))
            samples.extend(sample_record(row) for row in rows)
        return samples

    def connector_samples(
        self, charger_id: str, connector_id: int, *, limit: int = 100, scan: int = 10_000
    ) -> list[MeterSample]:
        """Return recent samples a connector sent outside any transaction, oldest first.

        There is deliberately no index for this (it would cost a page write per
        sample), so only the newest ``scan`` samples of the whole site are searched.
        """
        rows = self._read().execute(
            q.SELECT_CONNECTOR_SAMPLES, (scan, charger_id, connector_id, limit)
        )
        return [sample_record(row) for row in reversed(rows.fetchall())]

    def last_register_wh(self, transaction_id: int) -> float | None:
        """Return the latest Energy.Active.Import.Register (Wh) of a transaction."""
        conn = self._read()
        for chunk in bucket_chunks(self._sample_buckets(transaction_id)[::-1]):
            row = conn.execute(q.SELECT_LAST_REGISTER, (*chunk, transaction_id)).fetchone()
            if row is not None:
                return float(row[0])
        return None

    def latest_statuses(self) -> list[StatusRecord]:
        """Return the latest status of every (charger, connector) ever seen.

        That is the ``latest_status`` snapshot merged with the (at most about
        ``LATEST_STATUS_FLUSH``) statuses recorded after it.
        """
        return [status_record(row) for row in self._read().execute(q.SELECT_LATEST_STATUSES)]

    def status_history(self, charger_id: str, *, limit: int = 100) -> list[StatusRecord]:
        """Return a charger's statuses newest first (its buckets walked newest first)."""
        rows = newest_first(
            self._read(),
            q.SELECT_STATUS_HISTORY,
            (charger_id,),
            table="status_history",
            shift=q.STATUS_SHIFT,
            limit=limit,
        )
        return [status_record(row) for row in rows]

    def events(
        self,
        *,
        charger_id: str | None = None,
        kind: str | None = None,
        limit: int = 100,
        scan: int = 100_000,
    ) -> list[dict[str, Any]]:
        """Return events newest first as ``{"charger_id", "kind", "data", "at"}``.

        With ``charger_id``, the charger's buckets are walked newest first, back
        to its oldest event. Without, only the newest ``max(scan, limit)``
        events of the site are searched: there is no index on ``kind`` (it
        would cost a page write per event), so older events of a rare kind are
        not found.
        """
        conn = self._read()
        kind_filter = "" if kind is None else " AND kind = ?"
        kind_params = () if kind is None else (kind,)
        if charger_id is not None:
            rows = newest_first(
                conn,
                q.SELECT_CHARGER_EVENTS + kind_filter + " ORDER BY id DESC LIMIT ?",
                (charger_id, *kind_params),
                table="events",
                shift=q.EVENT_SHIFT,
                limit=limit,
            )
        else:
            # Ids only have gaps where retention deleted rows, at the old end.
            newest = conn.execute(q.SELECT_MAX_EVENT_ID).fetchone()[0]
            sql = q.SELECT_EVENTS + " WHERE id > ?" + kind_filter + " ORDER BY id DESC LIMIT ?"
            rows = conn.execute(sql, (newest - max(scan, limit), *kind_params, limit)).fetchall()
        return [
            {"charger_id": row[0], "kind": row[1], "data": orjson.loads(row[2]), "at": row[3]}
            for row in rows
        ]


# -- writer-thread helpers ------------------------------------------------------------


def _nothing(conn: sqlite3.Connection) -> None:
    pass


def _flush_latest_status(conn: sqlite3.Connection) -> None:
    conn.execute(q.FLUSH_LATEST_STATUS)


def _finalize(conn: sqlite3.Connection) -> None:
    # Leave an up-to-date latest-status snapshot, then fold the WAL into the
    # main file and truncate it, so a clean shutdown leaves a single file and
    # the next start has nothing to replay.
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(q.FLUSH_LATEST_STATUS)
        conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
