"""The service's recent log: `GET /api/log?level=&limit=&since=[&format=text]`.

Served from the `LogRing` the App installs on the root logger (the last records at
INFO or above, in memory only). JSON is newest first, like every list of the API; the
text download reads as a log file, oldest first.
"""

from __future__ import annotations

import logging

from aiohttp import web

from edge.logs import LogEntry, LogRing
from edge.times import epoch_text, parse_time, to_epoch
from edge.web.common import ApiError, json_response, query_int

__all__ = ["LOG", "add_routes"]

LOG = web.AppKey("log", LogRing)

LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING,
          "ERROR": logging.ERROR, "CRITICAL": logging.CRITICAL}  # fmt: skip


def _json(entry: LogEntry) -> dict[str, object]:
    return {
        "seq": entry.seq,
        "at": epoch_text(entry.at),
        "level": logging.getLevelName(entry.level),
        "logger": entry.logger,
        "message": entry.message,
    }


def _line(entry: LogEntry) -> str:
    level = logging.getLevelName(entry.level)
    return f"{epoch_text(entry.at)} {level} {entry.logger}: {entry.message}"


async def get_log(request: web.Request) -> web.StreamResponse:
    """GET /api/log: the newest `limit` records (default 200, up to 2000) at `level`
    (default INFO) or above, from `since` (ISO 8601, inclusive) on."""
    ring = request.app.get(LOG)
    raw_level = request.query.get("level", "INFO").upper()
    if raw_level not in LEVELS:
        raise ApiError(400, "invalid_query", f"level must be one of {', '.join(LEVELS)}")
    limit = query_int(request, "limit", 200, 1, 2000) or 200
    since = None
    if request.query.get("since"):
        try:
            since = to_epoch(parse_time(request.query["since"]))
        except ValueError:
            raise ApiError(400, "invalid_query", "since must be an ISO 8601 time") from None
    level = LEVELS[raw_level]
    entries = [] if ring is None else ring.entries(level=level, since=since, limit=limit)
    fmt = request.query.get("format", "json")
    if fmt == "text":
        text = "".join(_line(e) + "\n" for e in reversed(entries))
        return web.Response(
            text=text,
            content_type="text/plain",
            charset="utf-8",
            headers={"Content-Disposition": 'attachment; filename="edge-csms.log"'},
        )
    if fmt != "json":
        raise ApiError(400, "invalid_query", "format must be json or text")
    return json_response([_json(e) for e in entries])


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_get("/api/log", get_log)
