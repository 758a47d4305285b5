"""Transactions: `GET /api/transactions[?chargerId=&active=&limit=&before=]` and one by id."""

from __future__ import annotations

from aiohttp import web

from edge.services import Services
from edge.store import TransactionRecord
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


async def list_transactions(request: web.Request) -> web.Response:
    svc = services(request)
    records = svc.journal.list_transactions(
        charger_id=request.query.get("chargerId"),
        active=query_bool(request, "active"),
        limit=query_int(request, "limit", 100, 1, 1000) or 100,
        before_id=query_int(request, "before", None, 1, 2**62),
    )
    return json_response([transaction_json(svc, r) for r in records])


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
