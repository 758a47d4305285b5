"""SQL for the journal: the schema and every statement, in one place.

What one write touches (1 KiB pages; the batch shares the table's last leaf):

- meter sample: the table's last leaf (the sampledValue is deflated with a
  dictionary, see ``_codec``: ~1 KiB of JSON becomes < 100 bytes) and one
  leaf of ``meter_samples_tx``. That index is keyed by
  ``(id >> BUCKET_SHIFT, transaction_id)``, not by transaction alone: keyed by
  transaction, 500 chargers charging at once dirty 500 different index leaves
  per commit (one whole page per message); keyed by bucket first, all of a
  batch's entries land in the few leaves of the current bucket. A
  transaction's samples are then found with one index seek per bucket between
  its ``sample_floor`` and ``sample_ceiling`` (the samples' max id at its start
  and stop). Samples outside a transaction skip the index (partial); they are
  found by a bounded scan of the newest rows.
- status: the table's last leaf, one ``status_history_charger`` leaf, one
  ``latest_status`` leaf.
- event: the table's last leaf and one leaf of each of its two small indexes.
- start/stop transaction: rare; the table, its two indexes, sqlite_sequence.
"""

from __future__ import annotations

SCHEMA_VERSION = 1
BUCKET_SHIFT = 10  # 1024 samples per bucket; part of the schema (index expression)

SCHEMA = f"""
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
);
CREATE INDEX IF NOT EXISTS transactions_charger ON transactions (charger_id);
CREATE INDEX IF NOT EXISTS transactions_active ON transactions (charger_id)
    WHERE stop_time IS NULL;

CREATE TABLE IF NOT EXISTS meter_samples (
    id INTEGER PRIMARY KEY,
    transaction_id INTEGER,
    charger_id TEXT NOT NULL,
    connector_id INTEGER NOT NULL,
    received INTEGER NOT NULL,
    timestamp TEXT NOT NULL,
    register_wh REAL,
    sampled_value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS meter_samples_tx
    ON meter_samples (id >> {BUCKET_SHIFT}, transaction_id) WHERE transaction_id IS NOT NULL;

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
);
CREATE INDEX IF NOT EXISTS status_history_charger ON status_history (charger_id);
CREATE TABLE IF NOT EXISTS latest_status (
    charger_id TEXT NOT NULL,
    connector_id INTEGER NOT NULL,
    status_id INTEGER NOT NULL,
    PRIMARY KEY (charger_id, connector_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    charger_id TEXT,
    kind TEXT NOT NULL,
    data BLOB NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_charger ON events (charger_id) WHERE charger_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_kind ON events (kind);

PRAGMA user_version = {SCHEMA_VERSION};
"""

SEED_SEQUENCE = """
INSERT INTO sqlite_sequence (name, seq) VALUES ('transactions', ?)
"""
READ_SEQUENCE = """
SELECT max(seq) FROM (
    SELECT seq FROM sqlite_sequence WHERE name = 'transactions'
    UNION ALL SELECT max(id) FROM transactions
)
"""

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
BUCKETS_PER_QUERY = 32
_BUCKETS = ", ".join("?" * BUCKETS_PER_QUERY)
# The expression must match the index's exactly for sqlite to use it.
SELECT_SAMPLES = f"""
SELECT timestamp, register_wh, sampled_value FROM meter_samples
WHERE (id >> {BUCKET_SHIFT}) IN ({_BUCKETS}) AND transaction_id = ? ORDER BY id LIMIT ?
"""
SELECT_CONNECTOR_SAMPLES = """
SELECT timestamp, register_wh, sampled_value FROM (
    SELECT * FROM meter_samples ORDER BY id DESC LIMIT ?
)
WHERE charger_id = ? AND connector_id = ? AND transaction_id IS NULL
ORDER BY id DESC LIMIT ?
"""
SELECT_LAST_REGISTER = f"""
SELECT register_wh FROM meter_samples
WHERE (id >> {BUCKET_SHIFT}) IN ({_BUCKETS}) AND transaction_id = ? AND register_wh IS NOT NULL
ORDER BY id DESC LIMIT 1
"""

_STATUS_COLUMNS = """
charger_id, connector_id, status, error_code, info, vendor_id, vendor_error_code,
timestamp, received_at
"""
INSERT_STATUS = f"INSERT INTO status_history ({_STATUS_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
UPSERT_LATEST_STATUS = """
INSERT INTO latest_status (charger_id, connector_id, status_id) VALUES (?, ?, ?)
ON CONFLICT (charger_id, connector_id) DO UPDATE SET status_id = excluded.status_id
"""
SELECT_LATEST_STATUSES = """
SELECT h.charger_id, h.connector_id, h.status, h.error_code, h.info, h.vendor_id,
       h.vendor_error_code, h.timestamp, h.received_at
FROM latest_status AS l JOIN status_history AS h ON h.id = l.status_id
ORDER BY l.charger_id, l.connector_id
"""
SELECT_LATEST_STATUS_IDS = "SELECT status_id FROM latest_status"
SELECT_STATUS_HISTORY = f"""
SELECT {_STATUS_COLUMNS} FROM status_history WHERE charger_id = ? ORDER BY id DESC LIMIT ?
"""

INSERT_EVENT = "INSERT INTO events (charger_id, kind, data, at) VALUES (?, ?, ?, ?)"
SELECT_EVENTS = "SELECT charger_id, kind, data, at FROM events"

# Retention scans: oldest first from a cursor, bounded by a LIMIT.
SCAN_SAMPLES = (
    "SELECT id, received, transaction_id FROM meter_samples WHERE id > ? ORDER BY id LIMIT ?"
)
SCAN_TRANSACTIONS = """
SELECT id, stop_time, stopped_at, created_at FROM transactions WHERE id > ? ORDER BY id LIMIT ?
"""
SCAN_EVENTS = "SELECT id, at FROM events WHERE id > ? ORDER BY id LIMIT ?"
SCAN_STATUSES = "SELECT id, received_at FROM status_history WHERE id > ? ORDER BY id LIMIT ?"
