"""`GET /api/log`: the ring of the service's recent log records."""

from __future__ import annotations

import logging

import pytest

from edge.app import App
from edge.logs import LogRing
from tests.conftest import Api


def test_ring_keeps_the_newest_records_at_info_or_above() -> None:
    """The ring holds at most its capacity, drops DEBUG, filters by level and time,
    newest first, with tracebacks formatted."""
    ring = LogRing(capacity=3)
    logger = logging.getLogger("edge.test.ring")
    logger.setLevel(logging.DEBUG)
    ring.install(logger)
    try:
        logger.debug("not kept")
        for n in range(4):
            logger.info("record %d", n)
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("failed")
    finally:
        ring.remove(logger)
        logger.setLevel(logging.NOTSET)
    entries = ring.entries()
    assert [e.message.splitlines()[0] for e in entries] == ["failed", "record 3", "record 2"]
    assert "RuntimeError: boom" in entries[0].message
    assert [e.message for e in ring.entries(level=logging.ERROR)] == [entries[0].message]
    assert len(ring.entries(limit=1)) == 1
    assert ring.entries(since=entries[0].at + 1) == []


async def test_log_endpoint_filters_and_downloads(
    app: App, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """Records the service logs show up (newest first), by level, limit and since; the
    text form is a log file, oldest first; a bad level is a 400."""
    caplog.set_level(logging.INFO)
    log = logging.getLogger("edge.test.api")
    log.info("an info line")
    log.warning("a warning line")
    records = await api.get("/api/log?limit=2000")
    assert [r["message"] for r in records[:2]] == ["a warning line", "an info line"]
    first = records[0]
    assert first["level"] == "WARNING" and first["logger"] == "edge.test.api"
    assert first["at"].endswith("Z") and isinstance(first["seq"], int)
    warnings = await api.get("/api/log?level=warning")
    assert {r["level"] for r in warnings} <= {"WARNING", "ERROR", "CRITICAL"}
    assert any(r["message"] == "a warning line" for r in warnings)
    assert len(await api.get("/api/log?limit=1")) == 1
    assert await api.get("/api/log?since=2999-01-01T00:00:00Z") == []
    status, text = await api.request("GET", "/api/log?format=text")
    assert status == 200
    lines = text.splitlines()
    assert lines.index(next(x for x in lines if "an info line" in x)) < lines.index(
        next(x for x in lines if "a warning line" in x)
    )
    assert " WARNING edge.test.api: a warning line" in lines[-1]
    status, body = await api.request("GET", "/api/log?level=LOUD")
    assert status == 400 and body["error"] == "invalid_query"


async def test_log_needs_auth(app: App, api: Api) -> None:
    """Like the rest of the API, the log needs the token or the page's cookie."""
    status, _ = await api.request("GET", "/api/log", token=None)
    assert status == 401
