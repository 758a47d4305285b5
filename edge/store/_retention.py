"""Retention for the journal: delete old rows in small steps.

Each step is one writer operation (one commit) that scans at most
``PRUNE_ROWS`` rows per table, oldest first from a cursor, and stops at the
first row young enough to keep, so a step never reads a whole table and other
writes run between steps.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from typing import Any

from . import _queries as q

__all__ = ["PRUNE_ROWS", "PruneState", "prune_step"]

PRUNE_ROWS = 1000  # rows scanned per table per step


@dataclasses.dataclass(slots=True)
class PruneState:
    """Progress of one prune() across its steps; owned by whichever thread runs a step."""

    sample_cutoff: int  # unix seconds (samples store server receive time as an int)
    transaction_cutoff: str
    event_cutoff: str
    cursors: dict[str, int] = dataclasses.field(default_factory=dict)
    done: set[str] = dataclasses.field(default_factory=set)
    deleted: int = 0


def prune_step(conn: sqlite3.Connection, state: PruneState) -> bool:
    """Delete at most ``PRUNE_ROWS`` old rows per table; return whether to go on.

    Each table is scanned oldest first and the scan stops at the first row
    young enough to keep, so a step never reads the whole table.
    """
    active = {row[0] for row in conn.execute(q.SELECT_ACTIVE_IDS)}
    # Never delete the newest sample: sample ids must keep growing (they are
    # max(id) + 1), or a new sample could fall below an active transaction's floor.
    newest = conn.execute(q.SELECT_MAX_SAMPLE_ID).fetchone()[0]
    # Each connector's latest status is kept. Bring the snapshot up to date
    # first, so it names every one of them (in this same transaction).
    conn.execute(q.FLUSH_LATEST_STATUS)
    latest = {row[0] for row in conn.execute(q.SELECT_LATEST_STATUS_IDS)}

    def sweep(
        table: str,
        sql: str,
        stop: Callable[[tuple[Any, ...]], bool],
        doomed: Callable[[tuple[Any, ...]], bool],
    ) -> None:
        if table in state.done:
            return
        rows = conn.execute(sql, (state.cursors.get(table, 0), PRUNE_ROWS)).fetchall()
        victims: list[tuple[int]] = []
        for row in rows:
            if stop(row):
                state.done.add(table)
                break
            state.cursors[table] = row[0]
            if doomed(row):
                victims.append((row[0],))
        else:
            if len(rows) < PRUNE_ROWS:
                state.done.add(table)
        conn.executemany(f"DELETE FROM {table} WHERE id = ?", victims)
        state.deleted += len(victims)

    sweep(
        "meter_samples",
        q.SCAN_SAMPLES,
        lambda r: r[1] >= state.sample_cutoff,
        lambda r: r[0] != newest and (r[2] is None or r[2] not in active),
    )
    sweep(
        "transactions",
        q.SCAN_TRANSACTIONS,
        # Ids follow creation order: nothing created after the cutoff can have stopped before it.
        lambda r: r[3] >= state.transaction_cutoff,
        lambda r: r[1] is not None and r[2] is not None and r[2] < state.transaction_cutoff,
    )
    sweep("events", q.SCAN_EVENTS, lambda r: r[1] >= state.event_cutoff, lambda r: True)
    sweep(
        "status_history",
        q.SCAN_STATUSES,
        lambda r: r[1] >= state.event_cutoff,
        lambda r: r[0] not in latest,
    )
    return len(state.done) < 4
