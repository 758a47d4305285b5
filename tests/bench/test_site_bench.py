"""`python -m bench.site` and `python -m bench.site_plot` at their smallest, in seconds."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench import site, site_plot

pytestmark = pytest.mark.slow  # starts a worker process and real servers


def test_site_benchmark_runs_and_writes_its_results(tmp_path: Path) -> None:
    argv = ["--sizes", "3", "--window", "2", "--repeats", "1", "--lease-time", "4"]
    argv += ["--poll-interval", "0.5", "--min-update-interval", "1", "--settle-timeout", "15"]
    assert site.main([*argv, "--out", str(tmp_path)]) == 0

    result = json.loads((tmp_path / "site.json").read_text())["results"]["3"]
    assert result["connect"]["charging"] == 3
    assert result["settle_s"] is not None
    (step,) = result["steps_down"]
    assert step["missing"] == 0 and step["all_s"] is not None
    assert step["limit_max_a"] < site.SHARE_A
    assert result["step_up"]["missing"] == 0
    assert result["cycle_cpu"]["cycles"] > 0 and result["cycle_cpu"]["thread_ms"]["mean"] > 0
    steady = result["steady"]
    assert steady["refresh_per_min_expected"] == 30.0
    assert steady["calls_per_charger_per_min"] > 0
    assert result["worker"]["errors"] == {}
    assert "3 chargers" in (tmp_path / "site.md").read_text()


def test_site_plot_runs_and_writes_an_svg(tmp_path: Path) -> None:
    out = tmp_path / "plot.svg"
    argv = ["--evs", "1", "--duration", "3", "--warmup", "0", "--step-at", "1"]
    argv += ["--step-back", "2", "--poll-interval", "0.5", "--lease-time", "4"]
    assert site_plot.main([*argv, "--out", str(out)]) == 0

    svg = ET.parse(out).getroot()
    ns = {"svg": "http://www.w3.org/2000/svg"}
    assert len(svg.findall("svg:polyline", ns)) == 3  # one line per phase
    texts = " ".join(t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text"))
    for label in ("L1", "L2", "L3", "fuse 32 A", "fuse - margin 30 A", "time (s)"):
        assert label in texts
    timeline = json.loads((site_plot.RESULTS / "plot.json").read_text())["timeline"]
    assert timeline[0][0] >= 0 and timeline[-1][0] >= 3
