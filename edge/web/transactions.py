"""Transactions: `GET /api/transactions[?chargerId=&active=&from=&to=&limit=&before=]`
(JSON, or `format=csv`) and one by id."""

from __future__ import annotations

import csv
import io
from typing import Any

from aiohttp import web

from edge.services import Services
from edge.store import TransactionRecord
from edge.times import format_time, parse_time
from edge.web.common import (
    ApiError,
    Json,
    json_response,
    query_bool,
    query_int,
    services,
)

__all__ = ["add_routes", "transaction_json"]


def transaction_json(svc: Services, record: TransactionRecord) -> Json:
    energy = record.energy_wh
    if record.active:
        live = svc.transactions.get(record.transaction_id)
        energy = live.energy_wh if live is not None else None
    return {
        "transactionId": record.transaction_id,
        "chargerId": record.charger_id,
        "connectorId": record.connector_id,
        "idTag": record.id_tag,
        "idTagStatus": record.id_tag_status,
        "meterStart": record.meter_start,
        "meterStop": record.meter_stop,
        "energyWh": energy,
        "startTime": record.start_time,
        "stopTime": record.stop_time,
        "stopReason": record.stop_reason,
        "stopIdTag": record.stop_id_tag,
        "reservationId": record.reservation_id,
        "active": record.active,
    }


CSV_COLUMNS = (
    "transactionId",
    "chargerId",
    "connectorId",
    "idTag",
    "idTagStatus",
    "startTime",
    "stopTime",
    "meterStart",
    "meterStop",
    "energyWh",
    "stopReason",
    "stopIdTag",
    "reservationId",
    "active",
)
CSV_PAGE = 500  # rows read from the journal between two writes to the client
CSV_MAX = 100_000
# A cell starting with one of these is a formula to a spreadsheet: id tags and charger
# ids come from chargers, so they are quoted as text (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _time_query(request: web.Request, name: str) -> str | None:
    """`from`/`to` as canonical UTC text: an ISO 8601 date-time, or a date (its midnight UTC)."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        moment = parse_time(raw + "T00:00:00Z" if len(raw) == 10 else raw)
    except ValueError:
        raise ApiError(
            400, "invalid_query", f"{name} must be an ISO 8601 date-time or date"
        ) from None
    return format_time(moment)


def _filters(request: web.Request) -> dict[str, Any]:
    """The list's filters, shared by the JSON list and the CSV export."""
    return {
        "charger_id": request.query.get("chargerId"),
        "active": query_bool(request, "active"),
        "before_id": query_int(request, "before", None, 1, 2**62),
        "started_from": _time_query(request, "from"),
        "started_before": _time_query(request, "to"),
    }


async def list_transactions(request: web.Request) -> web.StreamResponse:
    """GET /api/transactions[?chargerId=&active=&from=&to=&limit=&before=][&format=csv]."""
    svc = services(request)
    form = request.query.get("format", "json")
    if form not in ("json", "csv"):
        raise ApiError(400, "invalid_query", "format must be json or csv")
    filters = _filters(request)
    if form == "csv":
        limit = query_int(request, "limit", CSV_MAX, 1, CSV_MAX) or CSV_MAX
        return await _stream_csv(request, svc, filters, limit)
    limit = query_int(request, "limit", 100, 1, 1000) or 100
    records = svc.journal.list_transactions(limit=limit, **filters)
    return json_response([transaction_json(svc, r) for r in records])


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


async def _stream_csv(
    request: web.Request, svc: Services, filters: dict[str, Any], limit: int
) -> web.StreamResponse:
    """The list as CSV (UTC times), newest first, read and sent a page at a time so a
    long export neither holds the event loop nor the whole list in memory."""
    stamp = svc.now().strftime("%Y%m%dT%H%M%SZ")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="transactions-{stamp}.csv"',
        }
    )
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    sent = 0
    before = filters.pop("before_id")
    while sent < limit:
        page = svc.journal.list_transactions(
            limit=min(CSV_PAGE, limit - sent), before_id=before, **filters
        )
        for record in page:
            row = transaction_json(svc, record)
            writer.writerow([_cell(row[column]) for column in CSV_COLUMNS])
        await response.write(buffer.getvalue().encode())
        buffer.seek(0)
        buffer.truncate()
        sent += len(page)
        if len(page) < CSV_PAGE:
            break
        before = page[-1].transaction_id
    await response.write_eof()
    return response


async def get_transaction(request: web.Request) -> web.Response:
    svc = services(request)
    try:
        transaction_id = int(request.match_info["transaction_id"])
    except ValueError:
        raise ApiError(400, "invalid_request", "transaction id must be an integer") from None
    record = svc.journal.get_transaction(transaction_id)
    if record is None:
        raise ApiError(404, "unknown_transaction", f"no transaction {transaction_id}")
    data = transaction_json(svc, record)
    if svc.config.upstream is not None:
        cloud = svc.journal.cloud_transaction(transaction_id)
        data["cloudTransactionId"] = cloud[0] if cloud else None
        data["cloudIdTagStatus"] = cloud[1] if cloud else None
    limit = query_int(request, "limit", 1000, 1, 100000) or 1000
    data["meterValues"] = [
        {"timestamp": s.timestamp, "sampledValue": s.sampled_value}
        for s in svc.journal.meter_samples(transaction_id, limit=limit)
    ]
    return json_response(data)


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_get("/api/transactions", list_transactions)
    router.add_get("/api/transactions/{transaction_id}", get_transaction)
