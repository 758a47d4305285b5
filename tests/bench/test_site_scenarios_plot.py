"""The scenario benchmark's plot, from a hand-made run (no service, no simulation)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.site_measures import Ev
from bench.site_scenarios import SCENARIOS, Run, measure, render_svg
from edge.sim.site import SitePoint

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def test_the_unbalanced_site_plots_every_phase_the_fuse_and_the_time_above_it() -> None:
    scenario = SCENARIOS["unbalanced"]
    points = [
        SitePoint(
            t=T0 + timedelta(seconds=s),
            grid_a=(18.0 + (16.0 if 10 <= s < 12 else 6.0), 20.0, 14.0),
            fuse_a=scenario.fuse_a,
            base_a=(18.0, 8.0, 8.0),
            draws_a=(("R1", (6.0, 0.0, 0.0)),),
        )
        for s in range(0, 30)
    ]
    ev = Ev(charger_id="R1", start=T0, phases=(0,), max_a=32.0, resumes=(T0,))
    run = Run(scenario, T0, T0 + timedelta(seconds=29), points, [ev], 30, 0.01, 0, [])
    svg = render_svg(run, measure(run))
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "time (s)" in svg and "current per phase (A)" in svg
    assert 'fill-opacity="0.12"' in svg  # the seconds above the fuse are shaded
