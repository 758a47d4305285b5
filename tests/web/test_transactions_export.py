"""Transactions: `from`/`to` filters and the CSV export with the list's filter semantics."""

from __future__ import annotations

import csv
import io

import pytest

from edge.app import App
from edge.web import transactions
from tests.conftest import Api
from tests.helpers import booted, start_transaction


async def started(app: App, api: Api) -> dict[str, int]:
    """Three transactions on two chargers, started on 1, 2 and 3 March 2026 (UTC)."""
    ids = {}
    for tag in ("TAG1", "=SUM(A1)"):
        code, _ = await api.request("PUT", f"/api/id-tags/{tag}", {"status": "Accepted"})
        assert code == 201
    async with booted(app, "CP-A", available=(1, 2)) as a, booted(app, "CP-B") as b:
        ids["a1"] = await start_transaction(a, "TAG1", timestamp="2026-03-01T10:00:00Z")
        ids["a2"] = await start_transaction(
            a, "=SUM(A1)", connector_id=2, timestamp="2026-03-02T10:00:00+01:00"
        )
        ids["b1"] = await start_transaction(b, "TAG1", timestamp="2026-03-03T23:59:59.5Z")
    return ids


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_from_and_to_filter_by_start_time_in_json_and_csv(app: App, api: Api) -> None:
    """`from` is inclusive, `to` exclusive, dates are midnight UTC; CSV lists exactly the
    same transactions as JSON for the same filter, newest first."""
    ids = await started(app, api)

    async def listed(query: str) -> list[int]:
        return [t["transactionId"] for t in await api.get(f"/api/transactions?{query}")]

    assert await listed("from=2026-03-02") == [ids["b1"], ids["a2"]]
    assert await listed("to=2026-03-02T09:00:00Z") == [ids["a1"]]
    assert await listed("to=2026-03-02T09:00:00.001Z") == [ids["a2"], ids["a1"]]
    assert await listed("from=2026-03-02&to=2026-03-03&chargerId=CP-A") == [ids["a2"]]
    assert await listed("from=2026-03-01T10:00:00.001Z") == [ids["b1"], ids["a2"]]
    for query in ("from=2026-03-02", "chargerId=CP-A", "active=true&to=2026-03-03", ""):
        status, text = await api.request("GET", f"/api/transactions?format=csv&{query}")
        assert status == 200
        assert [int(r["transactionId"]) for r in rows(text)] == await listed(query)


async def test_csv_columns_utc_and_quoted_formulas(app: App, api: Api) -> None:
    """The CSV has a header, UTC times with Z, and a cell a spreadsheet would run as a
    formula is quoted as text."""
    ids = await started(app, api)
    async with api.session.get(
        api.base + "/api/transactions?format=csv",
        headers={"Authorization": "Bearer test-token-0123456789abcdef"},
    ) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert resp.headers["Content-Disposition"].startswith('attachment; filename="transactions-')
        text = await resp.text()
    assert text.splitlines()[0] == ",".join(transactions.CSV_COLUMNS)
    by_id = {int(r["transactionId"]): r for r in rows(text)}
    assert by_id[ids["a2"]]["startTime"] == "2026-03-02T09:00:00.000Z"
    assert by_id[ids["a2"]]["idTag"] == "'=SUM(A1)"
    assert by_id[ids["a1"]]["active"] == "true" and by_id[ids["a1"]]["stopTime"] == ""


async def test_csv_is_read_in_pages(app: App, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long export is read a page at a time and still lists everything once; `limit`
    bounds it."""
    monkeypatch.setattr(transactions, "CSV_PAGE", 2)
    ids = await started(app, api)
    status, text = await api.request("GET", "/api/transactions?format=csv")
    assert status == 200
    assert [int(r["transactionId"]) for r in rows(text)] == sorted(ids.values(), reverse=True)
    status, text = await api.request("GET", "/api/transactions?format=csv&limit=1")
    assert status == 200
    assert len(rows(text)) == 1


@pytest.mark.parametrize(
    "query",
    ["format=xml", "from=yesterday", "to=2026-13-01", "from=2026-03-01T25:00:00Z", "limit=0"],
)
async def test_bad_queries_are_400(app: App, api: Api, query: str) -> None:
    """Every bad filter is a JSON 400 invalid_query, for JSON and CSV alike."""
    for extra in ("", "&format=csv"):
        status, body = await api.request("GET", f"/api/transactions?{query}{extra}")
        assert status == 400, (query, body)
        assert body["error"] == "invalid_query"
