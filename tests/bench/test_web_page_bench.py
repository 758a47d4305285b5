"""`python -m bench.web_page` at its smallest (3 chargers, 2 s windows, one page), in
under a minute: the benchmark still runs against a real Chromium and reports every
measure. Its timings are not asserted: this machine is shared.

Browser-dependent like tests/web: without Chromium (or Playwright) it skips, except
under CI (`CI` set), where it fails."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import web_page

pytestmark = pytest.mark.slow  # starts edge-csms, a simulated site and a browser


def _need_browser() -> None:
    from tests.web.conftest import CHROMIUM

    if not CHROMIUM or not Path(CHROMIUM).exists():
        message = "no Chromium: apt-get install chromium (or set EDGE_TEST_CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("playwright.async_api")


def test_web_page_benchmark_reports_every_measure(tmp_path: Path) -> None:
    _need_browser()
    argv = ["--chargers", "3", "--window", "2", "--loads", "2", "--changes", "2"]
    argv += ["--pages", "1", "--meter-values", "2", "--status-every", "5"]
    assert web_page.main([*argv, "--out", str(tmp_path)]) == 0

    results = json.loads((tmp_path / "web-page.json").read_text())["results"]
    assert results["warmup"]["steady"]
    # 5. bytes: every static file, and the page loads the shell and the libraries.
    files = {f["file"]: f for f in results["bytes"]["files"]}
    assert files["index.html"]["loaded"] and files["vendor/preact.mjs"]["loaded"]
    assert all(f["gzip"] > 0 for f in files.values())
    assert 0 < results["bytes"]["loaded"]["gzip"] < results["bytes"]["loaded"]["raw"]
    assert isinstance(results["bytes"]["target_met"], bool)
    # 1. CPU: no page, one page, no page again; the page's cost.
    assert [w["pages"] for w in results["windows"]] == [0, 1, 0]
    assert all(w["cpu_pct"] >= 0 for w in results["windows"])
    received = results["windows"][1]["per_page_received"]
    assert received["messages_per_s"]
    # The live feed is deflated: fewer bytes on the wire than the messages hold.
    assert 0 < received["wire_bytes_per_s"] < received["bytes_per_s"]
    assert [c["pages"] for c in results["cost"]["open"]] == [1]
    assert isinstance(results["cost"]["target_met"], bool)
    # 2. and 3. page views: CPU per view and per login, first meaningful paint.
    views = results["views"]
    assert views["view"]["count"] == 2 and views["login"]["count"] == 2
    assert "cpu_ms_each" in views["view"] and "cpu_ms_each" in views["login"]
    assert views["first_meaningful_paint_ms"]["n"] == 2
    assert views["snapshot_bytes"] and views["bytes_over_the_wire"] > 0
    # The static files go gzipped: a cold load moves less than the files' raw bytes.
    assert views["bytes_over_the_wire"] < results["bytes"]["loaded"]["raw"] * 0.6
    assert isinstance(views["fmp_target_met"], bool)
    # 4. every change reached the open page.
    change = results["change"]
    assert change["missed"] == 0 and change["shown_ms"]["n"] == 2
    assert isinstance(change["target_met"], bool)
    assert results["edge"]["exit_code"] == 0 and results["edge"]["errors_logged"] == 0

    assert "## A change reaching an open page" in (tmp_path / "web-page.md").read_text()
    assert "### The technician's page" in (tmp_path / "web-page-readme.md").read_text()
