"""The page's static files: vendored files match their sums, nothing points to another
origin, and they are served with the right types and cache headers."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import aiohttp

from edge.app import App
from edge.web.page import STATIC, compressed_copy

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


async def test_static_files_go_gzipped_when_accepted(app: App) -> None:
    """With Accept-Encoding: gzip a file comes compressed (and inflates to the shipped
    file byte for byte), without it as it is; both keep their headers, and a conditional
    request with either's ETag or Last-Modified is a 304."""
    base = f"http://127.0.0.1:{app.web_port}"
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        for path, shipped, cache in (
            ("/static/app.mjs", STATIC / "app.mjs", "no-cache"),
            ("/static/vendor/preact.mjs", VENDOR / "preact.mjs", "public, max-age=86400"),
            ("/", STATIC / "index.html", "no-cache"),
        ):
            raw = shipped.read_bytes()
            gzipped = {"Accept-Encoding": "gzip, deflate, br, zstd"}
            async with session.get(base + path, headers=gzipped) as resp:
                assert resp.status == 200, path
                assert resp.headers["Content-Encoding"] == "gzip", path
                assert resp.headers["Vary"] == "Accept-Encoding"
                assert resp.headers["Cache-Control"] == cache
                if path != "/":
                    assert resp.headers["X-Content-Type-Options"] == "nosniff"
                    assert "javascript" in resp.content_type
                body = await resp.read()
                assert int(resp.headers["Content-Length"]) == len(body) < len(raw) * 0.6
                assert gzip.decompress(body) == raw, path
                packed_tag, packed_date = resp.headers["ETag"], resp.headers["Last-Modified"]
            async with session.get(base + path, headers={"Accept-Encoding": "identity"}) as resp:
                assert resp.status == 200 and "Content-Encoding" not in resp.headers
                assert resp.headers["Vary"] == "Accept-Encoding"
                assert resp.headers["Cache-Control"] == cache
                assert await resp.read() == raw
                plain_tag, plain_date = resp.headers["ETag"], resp.headers["Last-Modified"]
            assert packed_tag != plain_tag and packed_date == plain_date
            for headers in (
                {**gzipped, "If-None-Match": packed_tag},
                {"Accept-Encoding": "identity", "If-None-Match": plain_tag},
                {**gzipped, "If-Modified-Since": packed_date},
            ):
                async with session.get(base + path, headers=headers) as resp:
                    assert resp.status == 304, (path, headers)
                    assert await resp.read() == b""


def test_the_compressed_copy_follows_the_shipped_files(tmp_path: Path) -> None:
    """The copy is keyed by the files' contents: changing one makes a new copy (the old
    one removed), so a .gz never outlives its file; an unwritable data dir serves the
    shipped files as they are."""
    shipped = tmp_path / "static"
    (shipped / "vendor").mkdir(parents=True)
    (shipped / "app.mjs").write_text("export const x = 1;\n" * 200)
    (shipped / "vendor" / "lib.mjs").write_text("export const y = 2;\n" * 200)
    (shipped / "tiny.txt").write_text("x")
    first = compressed_copy(tmp_path / "data", shipped)
    assert first.parent == tmp_path / "data" / "web-static"
    assert (
        gzip.decompress((first / "app.mjs.gz").read_bytes()) == (shipped / "app.mjs").read_bytes()
    )
    assert (first / "vendor" / "lib.mjs.gz").exists() and not (first / "tiny.txt.gz").exists()
    assert (first / "app.mjs").stat().st_mtime_ns == (shipped / "app.mjs").stat().st_mtime_ns
    assert (first / "app.mjs.gz").stat().st_mtime_ns == (shipped / "app.mjs").stat().st_mtime_ns
    assert compressed_copy(tmp_path / "data", shipped) == first  # the same files: reused
    (shipped / "app.mjs").write_text("export const x = 3;\n" * 200)
    second = compressed_copy(tmp_path / "data", shipped)
    assert second != first and not first.exists()
    assert [p.name for p in second.parent.iterdir()] == [second.name]
    assert gzip.decompress((second / "app.mjs.gz").read_bytes()).startswith(b"export const x = 3;")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the data directory should be")
    assert compressed_copy(blocked, shipped) == shipped
