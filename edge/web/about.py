"""`GET /api/about`: what a technician asks first — which version, since when, is the
clock right, and how full is the disk."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from importlib import metadata
from pathlib import Path

from aiohttp import web

from edge.clock import clock_synchronised
from edge.times import format_time
from edge.web.common import Json, json_response, services

__all__ = ["add_routes", "version"]

STARTED = web.AppKey("started", tuple)  # (wall-clock datetime, monotonic s)


def version() -> str:
    """The installed distribution's version ("unknown" when run from a bare source tree)."""
    try:
        return metadata.version("edge-csms")
    except metadata.PackageNotFoundError:
        return "unknown"


def _disk(data_dir: Path) -> Json:
    """Bytes used by the data dir (a walk: run it in a thread) and free on its filesystem."""
    used = 0
    for root, _dirs, files in os.walk(data_dir):
        for name in files:
            # A file may go while walking (retention, a journal checkpoint).
            with contextlib.suppress(OSError):
                used += os.lstat(os.path.join(root, name)).st_size
    usage = shutil.disk_usage(data_dir)
    return {"dataDirBytes": used, "freeBytes": usage.free, "totalBytes": usage.total}


async def about(request: web.Request) -> web.Response:
    """GET /api/about."""
    svc = services(request)
    started_at, started_mono = request.app[STARTED]
    data_dir = svc.config.storage.data_dir
    return json_response(
        {
            "version": version(),
            "startedAt": format_time(started_at),
            "uptimeSeconds": round(time.monotonic() - started_mono, 1),
            "now": svc.now_text(),
            "clockSynchronised": clock_synchronised(),
            "dataDir": str(data_dir.resolve()),
            "disk": await asyncio.to_thread(_disk, data_dir),
            "siteControl": svc.config.meter is not None,
            "cloudLink": svc.config.upstream is not None,
            # The wss listener runs: GET /api/security/tls describes it (404 otherwise).
            "wss": svc.security is not None and svc.security.describe_tls is not None,
        }
    )


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_get("/api/about", about)
