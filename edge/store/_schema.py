"""Creating and migrating the journal's schema, on the writer connection at open.

``PRAGMA user_version`` holds the schema version. A new file gets the current
schema; an older one is migrated in the same transaction, so a crash midway
leaves the old version intact and the next open simply migrates again. A newer
version (the software was downgraded) is refused rather than written to.
"""

from __future__ import annotations

import logging
import sqlite3

from . import _outbox as outbox
from . import _queries as q
from .errors import StoreError

__all__ = ["prepare"]

logger = logging.getLogger(__name__)


def prepare(conn: sqlite3.Connection) -> None:
    """Bring the schema to ``SCHEMA_VERSION`` and the latest-status snapshot up to date.

    Raises:
        StoreError: the file has a newer schema than this code knows.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > q.SCHEMA_VERSION:
            raise StoreError(
                f"journal schema version {version} is newer than this software's "
                f"({q.SCHEMA_VERSION}); refusing to open it"
            )
        if version < q.SCHEMA_VERSION:
            if version:
                logger.info("journal: migrating schema v%d to v%d", version, q.SCHEMA_VERSION)
            # Version 0 is a new file: the DROPs of the migration find nothing.
            statements = (*q.TABLES, *outbox.TABLES, *q.DROP_V1_INDEXES, *q.INDEXES)
            for statement in (*statements, *outbox.INDEXES):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {q.SCHEMA_VERSION}")
        # Keeps the history rows newer than the snapshot (read at start-up) few,
        # even if the process never lives for LATEST_STATUS_FLUSH statuses.
        conn.execute(q.FLUSH_LATEST_STATUS)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
