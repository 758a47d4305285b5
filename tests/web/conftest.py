"""Browser tests: a real headless Chromium (Debian's) driven by Playwright's async API,
in the test's own event loop, against a running App.

Chromium comes from EDGE_TEST_CHROMIUM or PATH (`apt-get install chromium`; never
`playwright install`). Without it the browser tests skip, except under CI (`CI` set),
where they fail: CI must never go green by skipping them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from edge.app import App
from tests.conftest import API_TOKEN, TIME_SCALE

CHROMIUM = os.environ.get("EDGE_TEST_CHROMIUM") or shutil.which("chromium")
ARGS = [
    "--disable-gpu",
    "--no-first-run",
    # Without these Chromium calls Google services the site LAN (and CI) refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
PHONE = {"width": 375, "height": 812}
LAPTOP = {"width": 1280, "height": 800}


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "browser: drives a headless Chromium (stdlib loop only)")


@dataclass
class PageWatch:
    """What a page did that a test must not let pass: console errors, uncaught
    exceptions, requests to another origin."""

    base: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))

        def request(r: Any) -> None:
            if not (r.url.startswith(self.base) or r.url.startswith("data:")):
                self.foreign.append(r.url)

        page.on("request", request)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM or not Path(CHROMIUM).exists():  # noqa: ASYNC240  (once, before any I/O)
        message = "no Chromium: apt-get install chromium (or set EDGE_TEST_CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, args=ARGS, timeout=30_000 * TIME_SCALE
        )
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def open_page(
    browser: Any, app: App, *, viewport: dict[str, int] = PHONE, login: bool = True
) -> AsyncIterator[tuple[Any, PageWatch]]:
    """A fresh context and page on `app`'s web port, logged in through the API (the
    cookie lands in the context); fails the test on console errors or a request to
    another origin."""
    base = f"http://127.0.0.1:{app.web_port}"
    context = await browser.new_context(
        viewport=viewport, timezone_id="UTC", locale="en-GB", base_url=base
    )
    page = await context.new_page()
    page.set_default_timeout(10_000 * TIME_SCALE)
    watch = PageWatch(base)
    watch.attach(page)
    if login:
        response = await context.request.post(
            "/api/session", data={"password": API_TOKEN}, headers={"Origin": base}
        )
        assert response.status == 204, await response.text()
    try:
        yield page, watch
    finally:
        await context.close()
    assert not watch.errors, watch.errors
    assert not watch.foreign, watch.foreign
