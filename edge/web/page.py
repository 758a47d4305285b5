"""The technician's page: `/` and `/static/…`, static files shipped in the package.

No build step: ES modules (Preact + htm) and uPlot, vendored in `static/vendor/` by
`tools/vendor_web.py`. The files are public (they hold no data); everything they show
comes from `/api`, behind the login. Vendored files may be cached for a day; the
page's own files are revalidated on every load, so an upgrade shows at once.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

__all__ = ["STATIC", "add_hooks", "add_routes"]

STATIC = Path(__file__).parent / "static"
VENDOR_CACHE = "public, max-age=86400"
OWN_CACHE = "no-cache"


async def index(request: web.Request) -> web.StreamResponse:
    """GET /: the page."""
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": OWN_CACHE})


async def _cache_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith("/static/") and response.status == 200:
        vendored = request.path.startswith("/static/vendor/")
        response.headers["Cache-Control"] = VENDOR_CACHE if vendored else OWN_CACHE
        response.headers["X-Content-Type-Options"] = "nosniff"


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes (and its response hook, on the router's app)."""
    router.add_get("/", index)
    router.add_static("/static/", STATIC, follow_symlinks=False)


def add_hooks(app: web.Application) -> None:
    """Cache and nosniff headers on the static files."""
    app.on_response_prepare.append(_cache_headers)
