"""The HTTP application: the operator API (JSON; Bearer token or the page's login
session), the technician's page, metrics and file transfers.

One module per concern registers its routes here. Errors are `{"error": "<code>",
"detail": …}` with a fitting status (`edge.web.common`). Every operation sent to a
charger goes through `edge.operations` and is journalled with its outcome.
"""

from __future__ import annotations

import time

from aiohttp import web

from edge.files.store import FileStore
from edge.logs import LogRing
from edge.operations.pipeline import Operations
from edge.security.token import TokenStore
from edge.site.controller import SiteController
from edge.upstream import Upstream
from edge.web import (
    about,
    api_token,
    ca,
    certificates,
    chargers,
    files,
    id_tags,
    live,
    local_auth,
    log,
    login,
    operations,
    page,
    remote_trigger,
    reservation,
    security,
    security_events,
    site,
    smart_charging,
    transactions,
    upstream,
)
from edge.web.auth import WebAuth
from edge.web.common import (
    MAX_BODY,
    OPERATIONS,
    REFUSED_METRIC,
    SERVICES,
    SESSIONS,
    SITE,
    UPSTREAM,
    WEB_AUTH,
    errors_and_auth,
    json_response,
    services,
)

__all__ = ["build_app"]


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        text=services(request).metrics.render(),
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def build_app(
    ops: Operations,
    token: TokenStore,
    file_store: FileStore | None = None,
    site_controller: SiteController | None = None,
    upstream_links: Upstream | None = None,
    log_ring: LogRing | None = None,
) -> web.Application:
    """The aiohttp application serving the API, metrics and (with a FileStore) file transfers;
    `GET /api/log` serves `log_ring` (an empty list without one)."""
    app = web.Application(middlewares=[errors_and_auth], client_max_size=MAX_BODY)
    app[SERVICES] = ops.services
    app[SESSIONS] = ops.sessions
    app[OPERATIONS] = ops
    app[WEB_AUTH] = WebAuth(token, ops.services.config.web.password)
    ops.services.metrics.describe_counter(
        REFUSED_METRIC,
        "Operator API requests refused for their credentials: wrong (credentials) or from"
        " an address backed off after several wrong ones (throttled)",
    )
    if site_controller is not None:
        app[SITE] = site_controller
    if upstream_links is not None:
        app[UPSTREAM] = upstream_links
    if log_ring is not None:
        app[log.LOG] = log_ring
    r = app.router
    r.add_get("/api/health", health)
    r.add_get("/metrics", metrics)
    app[about.STARTED] = (ops.services.now(), time.monotonic())
    hub = app[live.LIVE] = live.LiveHub(app, ops.services, site_controller)
    app.on_shutdown.append(hub.shutdown)
    for module in (
        about,
        login,
        live,
        chargers,
        id_tags,
        transactions,
        operations,
        smart_charging,
        reservation,
        local_auth,
        log,
        remote_trigger,
        certificates,
        security_events,
        site,
        upstream,
        ca,
        api_token,
        security,
    ):
        module.add_routes(r)
    if file_store is not None:
        app[files.FILES] = file_store
        files.add_routes(r)
    page.add_routes(r, page.compressed_copy(ops.services.config.storage.data_dir))
    page.add_hooks(app)
    return app
