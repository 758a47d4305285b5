"""SQL for the journal: the schema and every statement, in one place.

Why the indexes are bucketed: each commit is fsynced, so every distinct page
it dirties is written to the SD card, as a 1 KiB WAL frame and later again by
the checkpoint. Appending to a rowid table touches its last leaf, which all
rows of the commit share. An index keyed by charger or transaction puts each
new entry in a random leaf instead: one more page per row, plus the pages a
random leaf split rewrites. So no index here leads with such a key: each is
keyed by ``(id >> SHIFT, key)``, the bucket of the row id first. New entries
then land among the few leaves of the newest bucket, which the commit shares
with the commits just before it (and which stay cached).

A bucket holds ``2 ** SHIFT`` rows and its entries (15-20 bytes) fill about
``2 ** SHIFT / 50`` leaves. With SHIFT = 7 that is 2-3 leaves; with 10 (the
samples index of schema v1) a bucket spread over ~25 leaves and a commit of a
few rows still wrote about one index page per row. Measured with the bench mix
(1000 chargers, ~2 operations per commit), index pages per commit went from
3.4 (schema v1) to 2.2, the samples index's from 1.5 to 1.1; all pages from
5.7 to 4.5. Smaller buckets gain little more; larger ones make reads cheaper:
finding one key's rows costs one index seek per bucket, ``BUCKETS_PER_QUERY``
buckets per statement, newest bucket first, stopping at the statement that
completes the ``LIMIT`` (see ``_buckets``). For a key with few rows that is
one seek per 128 rows of the table, ~10 ms per million rows on a PC.

What one write touches:

- meter sample: the table's last leaf (the sampledValue is deflated with a
  dictionary, see ``_codec``: ~1 KiB of JSON becomes < 100 bytes) and a leaf of
  the newest ``meter_samples_bucket`` bucket. A transaction's samples lie
  between its ``sample_floor`` and ``sample_ceiling`` (the samples' max id at
  its start and stop), so only those buckets are searched. Samples outside a
  transaction skip the index (partial); a bounded scan of the newest rows finds
  them.
- status: the table's last leaf and a leaf of the newest ``status_history_bucket``
  bucket. ``latest_status`` (each connector's newest status, read at start-up)
  is NOT written per status: an upsert per status would be a random leaf per
  status. It is a snapshot, brought up to date by ``FLUSH_LATEST_STATUS`` every
  ``LATEST_STATUS_FLUSH`` statuses (one upsert per connector that changed, in
  one commit), at open, before retention and at close. Readers merge it with the history
  rows newer than the snapshot (``SELECT_LATEST_STATUSES``), so a crash loses
  nothing: the history rows are durable and the snapshot is only a shortcut.
  The snapshot covers every status up to ``max(status_id)``: a flush covers
  every row up to the newest, and the newest row is always its connector's
  latest.
- event: the table's last leaf and a leaf of the newest ``events_bucket`` bucket
  (there is no index on kind: a kind filter is applied while walking).
- start transaction (rare): the table's last leaf, ``transactions_bucket``'s
  newest bucket, ``transactions_active``'s last leaf (keyed by id, so a start
  appends), sqlite_sequence. Stop: the row's leaf, its ``transactions_active``
  entry.
"""

from __future__ import annotations

SCHEMA_VERSION = 3  # 3: the upstream outbox and transaction id map (`_outbox`)

# Rows per index bucket, as a power of two (see above). Part of the schema: the
# shifts appear in the index expressions and every query must repeat them
# verbatim (sqlite matches index expressions textually).
SAMPLE_SHIFT = 7
STATUS_SHIFT = 7
EVENT_SHIFT = 7
TRANSACTION_SHIFT = 7
BUCKETS_PER_QUERY = 64
LATEST_STATUS_FLUSH = 1024  # statuses between two snapshots of latest_status

TABLES = (
    """
CREATE TABLE IF NOT EXISTS transactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    charger_id TEXT NOT NULL,
    connector_id INTEGER NOT NULL,
    id_tag TEXT NOT NULL,
    id_tag_status TEXT NOT NULL,
    meter_start INTEGER NOT NULL,
    start_time TEXT NOT NULL,
    reservation_id INTEGER,
    stop_time TEXT,
    meter_stop INTEGER,
    stop_reason TEXT,
    stop_id_tag TEXT,
    energy_wh REAL,
    created_at TEXT NOT NULL,
    stopped_at TEXT,
    sample_floor INTEGER NOT NULL,
    sample_ceiling INTEGER
)""",
    """
CREATE TABLE IF NOT EXISTS meter_samples (
    id INTEGER PRIMARY KEY,
    transaction_id INTEGER,
    charger_id TEXT NOT NULL,
    connector_id INTEGER NOT NULL,
    received INTEGER NOT NULL,
    timestamp TEXT NOT NULL,
    register_wh REAL,
    sampled_value BLOB NOT NULL
)""",
    """
CREATE TABLE IF NOT EXISTS status_history (
    id INTEGER PRIMARY KEY,
    charger_id TEXT NOT NULL,
    connector_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    error_code TEXT NOT NULL,
    info TEXT,
    vendor_id TEXT,
    vendor_error_code TEXT,
    timestamp TEXT,
    received_at TEXT NOT NULL
)""",
    """
CREATE TABLE IF NOT EXISTS latest_status (
    charger_id TEXT NOT NULL,
    connector_id INTEGER NOT NULL,
    status_id INTEGER NOT NULL,
    PRIMARY KEY (charger_id, connector_id)
) WITHOUT ROWID""",
    """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    charger_id TEXT,
    kind TEXT NOT NULL,
    data BLOB NOT NULL,
    at TEXT NOT NULL
)""",
)
INDEXES = (
    f"""CREATE INDEX IF NOT EXISTS transactions_bucket
    ON transactions (id >> {TRANSACTION_SHIFT}, charger_id)""",
    # Few transactions are active among many. Keyed by id, a start appends.
    "CREATE INDEX IF NOT EXISTS transactions_active ON transactions (id) WHERE stop_time IS NULL",
    f"""CREATE INDEX IF NOT EXISTS meter_samples_bucket
    ON meter_samples (id >> {SAMPLE_SHIFT}, transaction_id) WHERE transaction_id IS NOT NULL""",
    f"""CREATE INDEX IF NOT EXISTS status_history_bucket
    ON status_history (id >> {STATUS_SHIFT}, charger_id)""",
    f"""CREATE INDEX IF NOT EXISTS events_bucket
    ON events (id >> {EVENT_SHIFT}, charger_id) WHERE charger_id IS NOT NULL""",
)
# Version 1 indexed transactions, statuses and events by charger (and events by
# kind), samples by (id >> 10, transaction), and upserted latest_status per
# status (so its snapshot is complete). Migrating only swaps the indexes:
# these DROPs, then INDEXES.
DROP_V1_INDEXES = (
    "DROP INDEX IF EXISTS transactions_charger",
    "DROP INDEX IF EXISTS transactions_active",
    "DROP INDEX IF EXISTS meter_samples_tx",
    "DROP INDEX IF EXISTS status_history_charger",
    "DROP INDEX IF EXISTS events_charger",
    "DROP INDEX IF EXISTS events_kind",
)

SEED_SEQUENCE = """
INSERT INTO sqlite_sequence (name, seq) VALUES ('transactions', ?)
"""
READ_SEQUENCE = """
SELECT max(seq) FROM (
    SELECT seq FROM sqlite_sequence WHERE name = 'transactions'
    UNION ALL SELECT max(id) FROM transactions
)
"""

_BUCKETS = ", ".join("?" * BUCKETS_PER_QUERY)
# Two subqueries: sqlite seeks min() or max() alone, but scans for both at once.
ID_RANGE = "SELECT (SELECT min(id) FROM {table}), (SELECT max(id) FROM {table})"

_TRANSACTION_COLUMNS = """
id, charger_id, connector_id, id_tag, id_tag_status, meter_start, start_time,
reservation_id, stop_time, meter_stop, stop_reason, stop_id_tag, energy_wh, created_at
"""
INSERT_TRANSACTION = """
INSERT INTO transactions (charger_id, connector_id, id_tag, id_tag_status, meter_start,
                          start_time, reservation_id, created_at, sample_floor)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, (SELECT coalesce(max(id), 0) FROM meter_samples))
"""
STOP_TRANSACTION = """
UPDATE transactions
SET stop_time = ?, meter_stop = ?, stop_reason = ?, stop_id_tag = ?, energy_wh = ?, stopped_at = ?,
    sample_ceiling = (SELECT coalesce(max(id), 0) FROM meter_samples)
WHERE id = ?
"""
SELECT_TRANSACTIONS = f"SELECT {_TRANSACTION_COLUMNS} FROM transactions"
SELECT_ACTIVE_INDEXED = f"{SELECT_TRANSACTIONS} INDEXED BY transactions_active"
# One charger's, over BUCKETS_PER_QUERY buckets; the caller appends filters and
# "ORDER BY id DESC LIMIT ?".
SELECT_CHARGER_TRANSACTIONS = f"""
{SELECT_TRANSACTIONS} INDEXED BY transactions_bucket
WHERE (id >> {TRANSACTION_SHIFT}) IN ({_BUCKETS}) AND charger_id = ?
"""
SELECT_TRANSACTION = f"{SELECT_TRANSACTIONS} WHERE id = ?"
SELECT_ACTIVE_TRANSACTIONS = f"{SELECT_ACTIVE_INDEXED} WHERE stop_time IS NULL ORDER BY id"
SELECT_ACTIVE_IDS = (
    "SELECT id FROM transactions INDEXED BY transactions_active WHERE stop_time IS NULL"
)

INSERT_SAMPLE = """
INSERT INTO meter_samples (transaction_id, charger_id, connector_id, received, timestamp,
                           register_wh, sampled_value)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
# A sample arriving after its transaction stopped (e.g. StopTransaction's
# transactionData stored after the stop) raises the ceiling. For an active
# transaction nothing matches, so nothing is written.
RAISE_SAMPLE_CEILING = """
UPDATE transactions SET sample_ceiling = (SELECT max(id) FROM meter_samples)
WHERE id = ? AND stop_time IS NOT NULL
"""
SELECT_SAMPLE_RANGE = """
SELECT sample_floor, CASE WHEN stop_time IS NULL THEN NULL ELSE sample_ceiling END
FROM transactions WHERE id = ?
"""
SELECT_MAX_SAMPLE_ID = "SELECT coalesce(max(id), 0) FROM meter_samples"
# The expression must match the index's exactly for sqlite to use it.
SELECT_SAMPLES = f"""
SELECT timestamp, register_wh, sampled_value FROM meter_samples INDEXED BY meter_samples_bucket
WHERE (id >> {SAMPLE_SHIFT}) IN ({_BUCKETS}) AND transaction_id = ? ORDER BY id LIMIT ?
"""
SELECT_CONNECTOR_SAMPLES = """
SELECT timestamp, register_wh, sampled_value FROM (
    SELECT * FROM meter_samples ORDER BY id DESC LIMIT ?
)
WHERE charger_id = ? AND connector_id = ? AND transaction_id IS NULL
ORDER BY id DESC LIMIT ?
"""
SELECT_LAST_REGISTER = f"""
SELECT register_wh FROM meter_samples INDEXED BY meter_samples_bucket
WHERE (id >> {SAMPLE_SHIFT}) IN ({_BUCKETS}) AND transaction_id = ? AND register_wh IS NOT NULL
ORDER BY id DESC LIMIT 1
"""

_STATUS_COLUMNS = """
charger_id, connector_id, status, error_code, info, vendor_id, vendor_error_code,
timestamp, received_at
"""
INSERT_STATUS = f"INSERT INTO status_history ({_STATUS_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SNAPSHOT_COVERS = "(SELECT coalesce(max(status_id), 0) FROM latest_status)"
# "WHERE" before "ON CONFLICT" is required: it keeps the upsert's ON from
# parsing as a join constraint.
FLUSH_LATEST_STATUS = f"""
INSERT INTO latest_status (charger_id, connector_id, status_id)
SELECT charger_id, connector_id, max(id) FROM status_history WHERE id > {_SNAPSHOT_COVERS}
GROUP BY charger_id, connector_id
ON CONFLICT (charger_id, connector_id) DO UPDATE SET status_id = excluded.status_id
"""
SELECT_LATEST_STATUSES = f"""
WITH latest (charger_id, connector_id, status_id) AS (
    SELECT charger_id, connector_id, max(status_id) FROM (
        SELECT charger_id, connector_id, status_id FROM latest_status
        UNION ALL
        SELECT charger_id, connector_id, id FROM status_history WHERE id > {_SNAPSHOT_COVERS}
    )
    GROUP BY charger_id, connector_id
)
SELECT h.charger_id, h.connector_id, h.status, h.error_code, h.info, h.vendor_id,
       h.vendor_error_code, h.timestamp, h.received_at
FROM latest AS l JOIN status_history AS h ON h.id = l.status_id
ORDER BY l.charger_id, l.connector_id
"""
# Valid right after FLUSH_LATEST_STATUS (retention runs one first).
SELECT_LATEST_STATUS_IDS = "SELECT status_id FROM latest_status"
SELECT_STATUS_HISTORY = f"""
SELECT {_STATUS_COLUMNS} FROM status_history INDEXED BY status_history_bucket
WHERE (id >> {STATUS_SHIFT}) IN ({_BUCKETS}) AND charger_id = ? ORDER BY id DESC LIMIT ?
"""

INSERT_EVENT = "INSERT INTO events (charger_id, kind, data, at) VALUES (?, ?, ?, ?)"
SELECT_EVENTS = "SELECT charger_id, kind, data, at FROM events"
SELECT_MAX_EVENT_ID = "SELECT coalesce(max(id), 0) FROM events"
SELECT_CHARGER_EVENTS = f"""
{SELECT_EVENTS} INDEXED BY events_bucket
WHERE (id >> {EVENT_SHIFT}) IN ({_BUCKETS}) AND charger_id = ?
"""

# Retention scans: oldest first from a cursor, bounded by a LIMIT.
SCAN_SAMPLES = (
    "SELECT id, received, transaction_id FROM meter_samples WHERE id > ? ORDER BY id LIMIT ?"
)
SCAN_TRANSACTIONS = """
SELECT id, stop_time, stopped_at, created_at FROM transactions WHERE id > ? ORDER BY id LIMIT ?
"""
SCAN_EVENTS = "SELECT id, at FROM events WHERE id > ? ORDER BY id LIMIT ?"
SCAN_STATUSES = "SELECT id, received_at FROM status_history WHERE id > ? ORDER BY id LIMIT ?"
