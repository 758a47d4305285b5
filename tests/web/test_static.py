"""The page's static files: vendored files match their sums, nothing points to another
origin, and they are served with the right types and cache headers."""

from __future__ import annotations

import hashlib
import re

import aiohttp

from edge.app import App
from edge.web.page import STATIC

VENDOR = STATIC / "vendor"
# XML namespace names inside Preact (identifiers, never fetched), uPlot's banner comment.
NOT_FETCHED = ("http://www.w3.org/", "https://github.com/leeoniya/uPlot")
URL = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}""", re.IGNORECASE)


def test_vendored_files_match_their_sums() -> None:
    """Every vendored file is listed in SHA256SUMS with its hash (tools/vendor_web.py)."""
    listed = {}
    for line in (VENDOR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        listed[name] = digest
    present = {p.name for p in VENDOR.iterdir()} - {"SHA256SUMS"}
    assert set(listed) == present
    for name, digest in listed.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    for package in ("preact", "htm", "uplot"):
        assert (VENDOR / f"LICENSE-{package}").exists()


def test_no_file_points_to_another_origin() -> None:
    """The site LAN has no internet: no CDN, no web font, no absolute URL to fetch."""
    for path in STATIC.rglob("*"):
        if path.is_dir() or path.name.startswith("LICENSE") or path.suffix == ".md":
            continue
        text = path.read_text(errors="replace")
        for match in URL.finditer(text):
            context = text[max(0, match.start() - 6) : match.end() + 40]
            assert any(allowed in context for allowed in NOT_FETCHED), (path.name, context)


async def test_page_and_static_files_are_served(app: App) -> None:
    """`/` is the page (revalidated each load), modules are JavaScript, vendored files
    are cached; no login needed for them; an unknown file is a 404."""
    base = f"http://127.0.0.1:{app.web_port}"
    async with aiohttp.ClientSession() as session:
        async with session.get(base + "/") as resp:
            assert resp.status == 200 and resp.content_type == "text/html"
            assert resp.headers["Cache-Control"] == "no-cache"
            assert 'href="data:,"' in await resp.text()
        async with session.get(base + "/static/app.mjs") as resp:
            assert resp.status == 200
            assert resp.content_type in ("text/javascript", "application/javascript")
            assert resp.headers["Cache-Control"] == "no-cache"
        async with session.get(base + "/static/vendor/preact.mjs") as resp:
            assert resp.status == 200
            assert resp.content_type in ("text/javascript", "application/javascript")
            assert resp.headers["Cache-Control"].startswith("public, max-age=")
        async with session.get(base + "/static/nothing.js") as resp:
            assert resp.status == 404
        async with session.get(base + "/static/../api_token") as resp:
            assert resp.status in (403, 404)
