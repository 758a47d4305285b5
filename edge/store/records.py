"""Value objects read from and written to the journal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["JournalStatistics", "MeterSample", "StatusRecord", "TransactionRecord"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionRecord:
    """One charging transaction. Times are ISO 8601 UTC strings ending in ``Z``."""

    transaction_id: int
    charger_id: str
    connector_id: int
    id_tag: str
    id_tag_status: str  # the idTagInfo.status returned in StartTransaction.conf
    meter_start: int  # Wh
    start_time: str
    reservation_id: int | None
    stop_time: str | None
    meter_stop: int | None  # Wh
    stop_reason: str | None
    stop_id_tag: str | None
    energy_wh: float | None  # meter_stop - meter_start once stopped
    created_at: str  # server time the start was recorded

    @property
    def active(self) -> bool:
        """Whether the transaction has not been stopped yet."""
        return self.stop_time is None


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterSample:
    """One OCPP MeterValue element."""

    timestamp: str
    register_wh: float | None  # Energy.Active.Import.Register in Wh, if the element has one
    sampled_value: list[dict[str, Any]]  # the OCPP sampledValue list as received


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusRecord:
    """One StatusNotification as received."""

    charger_id: str
    connector_id: int
    status: str
    error_code: str
    info: str | None
    vendor_id: str | None
    vendor_error_code: str | None
    timestamp: str | None  # the charger's timestamp, if it sent one
    received_at: str  # server time


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalStatistics:
    """A snapshot of the journal writer's counters."""

    commits: int  # transactions committed (one fsync each with synchronous=FULL)
    operations: int  # operations completed, successfully or not
    failed_operations: int
    largest_batch: int  # most operations in one commit
    last_batch: int
    queue_depth: int  # operations submitted and not yet completed
    fallbacks: int  # batches whose transaction failed and were re-run one op at a time
    commit_seconds: float  # total time spent in COMMIT (mostly fsync)
    max_commit_seconds: float
