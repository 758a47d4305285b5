"""Turning the journal's result rows into records."""

from __future__ import annotations

from typing import Any

from ._codec import decode_sampled_value
from .records import MeterSample, StatusRecord, TransactionRecord

__all__ = ["sample_record", "status_record", "transaction_record"]


def transaction_record(row: tuple[Any, ...]) -> TransactionRecord:
    return TransactionRecord(
        transaction_id=row[0],
        charger_id=row[1],
        connector_id=row[2],
        id_tag=row[3],
        id_tag_status=row[4],
        meter_start=row[5],
        start_time=row[6],
        reservation_id=row[7],
        stop_time=row[8],
        meter_stop=row[9],
        stop_reason=row[10],
        stop_id_tag=row[11],
        energy_wh=row[12],
        created_at=row[13],
    )


def sample_record(row: tuple[Any, ...]) -> MeterSample:
    return MeterSample(
        timestamp=row[0], register_wh=row[1], sampled_value=decode_sampled_value(row[2])
    )


def status_record(row: tuple[Any, ...]) -> StatusRecord:
    return StatusRecord(
        charger_id=row[0],
        connector_id=row[1],
        status=row[2],
        error_code=row[3],
        info=row[4],
        vendor_id=row[5],
        vendor_error_code=row[6],
        timestamp=row[7],
        received_at=row[8],
    )
