"""The technician's page: `/` and `/static/…`, static files shipped in the package.

No build step: ES modules (Preact + htm) and uPlot, vendored in `static/vendor/` by
`tools/vendor_web.py`. The files are public (they hold no data); everything they show
comes from `/api`, behind the login. Vendored files may be cached for a day; the
page's own files are revalidated on every load, so an upgrade shows at once.

Compression (152 KB raw, about 60 KB gzipped): at start-up the shipped files are
copied, each with a gzip -9 sibling (`app.mjs.gz`), into
`<data_dir>/web-static/<digest of the shipped files>/`, and that directory is served.
aiohttp's FileResponse sends the `.gz` sibling (Content-Encoding: gzip, Vary:
Accept-Encoding) to a request that accepts gzip, the file itself otherwise; ETag and
Last-Modified come from the file sent, so conditional requests (304) work for both.
The digest covers every shipped file's path and bytes: an upgrade that changes one
makes a new directory (older ones are removed), so a `.gz` never outlives its file,
and a restart with the same files only hashes them (~150 KB). Copies keep the shipped
files' modification times, so ETags and Last-Modified are as without compression. If
the data directory cannot be written, the shipped files are served uncompressed.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from aiohttp import web

__all__ = ["STATIC", "add_hooks", "add_routes", "compressed_copy"]

log = logging.getLogger("edge.web.page")

STATIC = Path(__file__).parent / "static"
VENDOR_CACHE = "public, max-age=86400"
OWN_CACHE = "no-cache"
CACHE_DIR = "web-static"  # under the data directory
MIN_SAVING = 0.1  # a .gz only where it saves at least this share of the file


def _shipped(root: Path) -> list[Path]:
    """Every regular file under `root` (symlinks are not served, so not copied)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _digest(root: Path, files: list[Path]) -> str:
    h = hashlib.sha256()
    for path in files:
        name = path.relative_to(root).as_posix().encode()
        data = path.read_bytes()
        h.update(len(name).to_bytes(4, "big") + name + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()[:16]


def _build(root: Path, files: list[Path], target: Path) -> None:
    """Copies of `files` (times kept) under `target`, each with a `.gz` where it pays."""
    for path in files:
        copy = target / path.relative_to(root)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy)
        data = path.read_bytes()
        packed = gzip.compress(data, compresslevel=9, mtime=0)
        if len(packed) <= len(data) * (1 - MIN_SAVING):
            gz = copy.with_name(copy.name + ".gz")
            gz.write_bytes(packed)
            st = path.stat()
            os.utime(gz, ns=(st.st_atime_ns, st.st_mtime_ns))  # same Last-Modified


def compressed_copy(data_dir: Path, root: Path = STATIC) -> Path:
    """The directory to serve `root` from: `<data_dir>/web-static/<digest>/`, made if
    missing (atomically: built aside, then renamed), older digests removed; `root`
    itself if the data directory cannot be written."""
    try:
        files = _shipped(root)
        digest = _digest(root, files)
        cache = data_dir / CACHE_DIR
        target = cache / digest
        if not target.is_dir():
            cache.mkdir(parents=True, exist_ok=True)
            building = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
            try:
                _build(root, files, building)
                building.chmod(0o755)
                try:
                    building.rename(target)
                except OSError:
                    if not target.is_dir():  # not another process having made it
                        raise
            finally:
                shutil.rmtree(building, ignore_errors=True)
            log.info("page files compressed into %s", target)
        for old in cache.iterdir():  # earlier versions' files, a crashed build
            if old.name != digest:
                if old.is_dir() and not old.is_symlink():
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        old.unlink()
        return target
    except OSError as e:
        log.warning("page files served uncompressed (cannot prepare them: %s)", e)
        return root


def add_routes(router: web.UrlDispatcher, served: Path = STATIC) -> None:
    """Register this module's routes, serving the page's files from `served` (STATIC,
    or its `compressed_copy`)."""

    async def index(request: web.Request) -> web.StreamResponse:
        """GET /: the page."""
        return web.FileResponse(served / "index.html", headers={"Cache-Control": OWN_CACHE})

    router.add_get("/", index)
    router.add_static("/static/", served, follow_symlinks=False)


async def _cache_headers(request: web.Request, response: web.StreamResponse) -> None:
    static = request.path.startswith("/static/")
    if static and response.status == 200:
        vendored = request.path.startswith("/static/vendor/")
        response.headers["Cache-Control"] = VENDOR_CACHE if vendored else OWN_CACHE
        response.headers["X-Content-Type-Options"] = "nosniff"
    if (static or request.path == "/") and response.status in (200, 304):
        # aiohttp names it only on the gzip answer; a cache must know identity varies too.
        response.headers.setdefault("Vary", "Accept-Encoding")


def add_hooks(app: web.Application) -> None:
    """Cache, nosniff and Vary headers on the static files."""
    app.on_response_prepare.append(_cache_headers)
