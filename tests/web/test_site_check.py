"""`GET /api/site/check`: the fallback report and the configured wiring, as JSON."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edge.config import ChargerSettings, SiteConfig
from tests.conftest import make_config, running


async def test_check_reports_fallback_fit_and_wiring(tmp_path: Path) -> None:
    """Two chargers sharing L1 at a 10 A fallback do not fit a 16 A fuse; the report
    says so, and lists each configured charger's wiring and range."""
    config = replace(
        make_config(tmp_path),
        site=SiteConfig(max_current=(16.0, 16.0, 16.0), margin=1.0, fallback_current=10.0),
        chargers={
            "CP1": ChargerSettings(phases="L2L3L1", max_current=16.0),
            "CP2": ChargerSettings(phases="L1", min_current=8.0),
        },
    )
    async with running(config) as (_app, api):
        check = await api.get("/api/site/check")
    assert check["fallbackFits"] is False
    assert check["report"] and all(isinstance(line, str) for line in check["report"])
    assert check["chargers"] == [
        {"chargerId": "CP1", "phases": "L2L3L1", "minA": 6.0, "maxA": 16.0},
        {"chargerId": "CP2", "phases": "L1", "minA": 8.0, "maxA": 32.0},
    ]
