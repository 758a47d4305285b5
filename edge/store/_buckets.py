"""Reading through the journal's bucketed indexes.

The indexes are keyed by ``(id >> shift, key)`` so that a commit writes few
index pages (see ``_queries``). One key's rows are then found with one index
seek per bucket: a statement takes ``BUCKETS_PER_QUERY`` buckets in an ``IN``
list, and the walk goes from the newest bucket (or the oldest, for samples)
until it has ``limit`` rows or has passed the table's first row. Each bucket
costs a seek even when it holds nothing for the key, so a key with few rows
among many costs about ``rows in the table / 2 ** shift`` seeks (some ms per
million rows), paid only by reads, never by writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from . import _queries as q

__all__ = ["bucket_chunks", "newest_first"]


def bucket_chunks(buckets: range) -> Iterator[tuple[int, ...]]:
    """Split into fixed-size parameter tuples (padded by repetition) for one cached statement."""
    for start in range(0, len(buckets), q.BUCKETS_PER_QUERY):
        chunk = tuple(buckets[start : start + q.BUCKETS_PER_QUERY])
        yield chunk + (chunk[-1],) * (q.BUCKETS_PER_QUERY - len(chunk))


def newest_first(
    conn: sqlite3.Connection,
    sql: str,
    params: Sequence[Any],
    *,
    table: str,
    shift: int,
    limit: int,
    below: int | None = None,
) -> list[tuple[Any, ...]]:
    """Run ``sql`` over the table's buckets, newest first, until ``limit`` rows.

    ``sql`` starts with the bucket ``IN`` list, then takes ``params``, and ends
    with ``ORDER BY id DESC LIMIT ?``. ``below``: only buckets that can hold
    ids under it (the statement itself must filter ``id < below``).
    """
    first, last = conn.execute(q.ID_RANGE.format(table=table)).fetchone()
    if last is None or limit <= 0:
        return []
    if below is not None:
        last = min(last, below - 1)
    rows: list[tuple[Any, ...]] = []
    for chunk in bucket_chunks(range(last >> shift, (first >> shift) - 1, -1)):
        rows.extend(conn.execute(sql, (*chunk, *params, limit - len(rows))))
        if len(rows) >= limit:
            break
    return rows
