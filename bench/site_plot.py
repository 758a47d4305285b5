"""A load step on a simulated site, plotted: grid current per phase against the fuse.

    .venv/bin/python -m bench.site_plot    # about 1 minute: bench/site-load-step.svg

A real `edge.app.App` balances three EVs (`edge.sim.site.SimCharger`: keeps
profiles like a charger, applies a new limit ``--reaction`` s after it arrived, sends
MeterValues every ``--meter-values`` s) behind a real Modbus SDM630 (`SimSite`) on a
32 A fuse with 4 A of other load per phase. The EVs charge from ``--warmup`` s before
t = 0 (``--warmup 0``: from t = 0, which shows the start as well). At ``--step-at`` s the
other load on L1 rises by ``--step`` A, at ``--step-back`` s it falls back.

The SVG (hand-written, no plotting library) shows the grid current per phase, the fuse
and the fuse minus the margin, with the time above the fuse shaded. The time above the
fuse and the largest overload are printed, and the timeline is saved in bench/results/
(``site-load-step.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from bench.site import RESULTS, bench_config, seed_tags
from edge.app import App
from edge.sim.site import Phases, SimCharger, SimSite, SitePoint
from edge.site.report import site_json

__all__ = ["Frame", "Scenario", "main", "render_svg", "run_scenario", "svg_axes", "svg_legend"]

PLOT = Path(__file__).resolve().parent / "site-load-step.svg"
PHASE_COLOURS = ("#1f77b4", "#e6550d", "#2ca02c")
PHASE_DASHES = ("", "", "6 4")  # L2 and L3 often coincide: L3 dashed on top
FUSE_COLOUR = "#c00000"


@dataclass(frozen=True, slots=True)
class Scenario:
    fuse_a: float = 32.0
    margin_a: float = 2.0
    base_a: float = 4.0
    evs: int = 3
    step_a: float = 12.0
    step_phase: int = 0
    step_at: float = 10.0
    step_back: float = 25.0
    duration: float = 35.0
    warmup: float = 20.0
    reaction_s: float = 0.5
    poll_interval: float = 1.0
    meter_values_every: float = 1.0
    lease_time: float = 60.0
    tick: float = 0.1


@dataclass(frozen=True, slots=True)
class Outcome:
    points: list[tuple[float, Phases]]  # (s since t=0, grid current per phase)
    above_fuse_s: float
    max_overload_a: float
    above_limit_s: float  # above fuse - margin
    notes: list[str]


def _base(scenario: Scenario, start: list[datetime]) -> Any:
    def load(now: datetime) -> Phases:
        base = [scenario.base_a] * 3
        if start:
            t = (now - start[0]).total_seconds()
            if scenario.step_at <= t < scenario.step_back:
                base[scenario.step_phase] += scenario.step_a
        return base[0], base[1], base[2]

    return load


def _time_above(points: Sequence[SitePoint], limit: float) -> float:
    """Seconds any phase was above `limit`: each point holds until the next one."""
    return sum(
        (b.t - a.t).total_seconds()
        for a, b in itertools.pairwise(points)
        if max(a.grid_a) > limit + 1e-9
    )


async def run_scenario(scenario: Scenario) -> Outcome:
    """Run the load step on a SimSite against a real App; the timeline from t=0."""
    start: list[datetime] = []
    data_dir = Path(tempfile.mkdtemp(prefix="edge-site-plot-"))
    try:
        async with SimSite(fuse_a=scenario.fuse_a, base_load_a=_base(scenario, start)) as site:
            await site.tick()
            config = bench_config(
                data_dir,
                site.meter_port,
                scenario.fuse_a,
                poll_interval=scenario.poll_interval,
                lease_time=scenario.lease_time,
                margin=scenario.margin_a,
            )
            async with App(config) as app:
                tags = [f"PLOT{i}" for i in range(1, scenario.evs + 1)]
                await seed_tags(app, tags)
                url = f"ws://127.0.0.1:{app.ocpp_port}/ocpp/"
                chargers: list[SimCharger] = []
                for i in range(1, scenario.evs + 1):
                    chargers.append(
                        await site.add_charger(
                            f"{url}EV{i}", f"EV{i}", reaction_s=scenario.reaction_s
                        )
                    )
                await _wait_safe(chargers, scenario.reaction_s)
                if scenario.warmup > 0:
                    for charger, tag in zip(chargers, tags, strict=True):
                        await charger.start_session(tag)
                    await site.run(
                        scenario.warmup,
                        scenario.tick,
                        meter_values_every=scenario.meter_values_every,
                    )
                start.append(datetime.now(UTC))
                first = len(site.timeline)
                run = asyncio.ensure_future(
                    site.run(
                        scenario.duration,
                        scenario.tick,
                        meter_values_every=scenario.meter_values_every,
                    )
                )
                if scenario.warmup <= 0:
                    for charger, tag in zip(chargers, tags, strict=True):
                        await charger.start_session(tag)
                await run
                notes = _notes(app)
        timeline = site.timeline[first:]
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    t0 = start[0]
    limit = scenario.fuse_a - scenario.margin_a
    return Outcome(
        points=[((p.t - t0).total_seconds(), p.grid_a) for p in timeline],
        above_fuse_s=_time_above(timeline, scenario.fuse_a),
        max_overload_a=max((p.overload_a for p in timeline), default=0.0),
        above_limit_s=_time_above(timeline, limit),
        notes=notes,
    )


async def _wait_safe(chargers: Sequence[SimCharger], reaction_s: float) -> None:
    """Until every charger acts on the site's profiles (a charger without any is unlimited)."""
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if all(list(c.effective(datetime.now(UTC))) for c in chargers):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"no site profiles on the chargers after 10 s (reaction {reaction_s} s)")


def _notes(app: App) -> list[str]:
    assert app.site is not None
    snapshot = site_json(app.site.statistics())
    return [
        f"{c['chargerId']}: lease {c['leaseA']} A, quirks {c['quirks']}"
        for c in snapshot["chargers"]
    ] + [f"cycles {snapshot['cycles']}, last cycle {snapshot['cycleCpuMs']} ms CPU"]


# --- SVG ------------------------------------------------------------------------------------


def _nice_step(span: float, ticks: int) -> float:
    """A 1-2-5 step giving about `ticks` intervals over `span`."""
    raw = span / max(1, ticks)
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * power >= raw:
            return m * power
    return 10 * power


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


@dataclass(frozen=True, slots=True)
class Frame:
    """Where a plot's area is in its SVG: left and top edge, width, height; the SVG's height."""

    left: float
    top: float
    width: float
    height: float
    svg_height: float


def svg_axes(
    frame: Frame,
    x: Callable[[float], float],
    y: Callable[[float], float],
    y_range: tuple[float, float, float],
    x_range: tuple[float, float],
    y_label: str,
) -> list[str]:
    """The grid lines, tick labels, frame and axis titles of a time plot (SVG elements).
    `y_range`: (lowest, highest, step) in A; `x_range`: (duration, step) in s."""
    left, top, pw, ph = frame.left, frame.top, frame.width, frame.height
    y_min, y_max, y_step = y_range
    duration, x_step = x_range
    out: list[str] = []
    n = 0
    while (value := y_min + n * y_step) <= y_max + 1e-9:
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            'stroke="#e4e4e4"/>'
        )
        out.append(
            f'<text x="{left - 8}" y="{y(value) + 4:.1f}" text-anchor="end">{_fmt(value)}</text>'
        )
        n += 1
    n = 0
    while (t := n * x_step) <= duration + 1e-9:
        out.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{top + ph}" stroke="#f0f0f0"/>'
        )
        out.append(
            f'<text x="{x(t):.1f}" y="{top + ph + 18}" text-anchor="middle">{_fmt(t)}</text>'
        )
        n += 1
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    bottom = frame.svg_height - 14
    out.append(f'<text x="{left + pw / 2}" y="{bottom}" text-anchor="middle">time (s)</text>')
    out.append(
        f'<text transform="translate(18 {top + ph / 2}) rotate(-90)" text-anchor="middle">'
        f"{y_label}</text>"
    )
    return out


Legend = tuple[str, str, str, float]
"""(label, colour, stroke-dasharray or "", stroke width) of one line of a plot."""


def svg_legend(entries: Sequence[Legend], lx: float, ly: float, width: float) -> list[str]:
    """A legend box at (`lx`, `ly`): a sample line per entry, then the shading of the
    time above the fuse."""
    out = [
        f'<rect x="{lx}" y="{ly}" width="{width}" height="{20 * len(entries) + 30}" '
        'fill="white" fill-opacity="0.9" stroke="#999"/>'
    ]
    for i, (label, colour, dash, stroke) in enumerate(entries):
        cy = ly + 16 + 20 * i
        out.append(
            f'<line x1="{lx + 10}" x2="{lx + 40}" y1="{cy}" y2="{cy}" stroke="{colour}" '
            f'stroke-width="{stroke}"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"
        )
        out.append(f'<text x="{lx + 48}" y="{cy + 4}">{escape(label)}</text>')
    cy = ly + 16 + 20 * len(entries)
    out.append(
        f'<rect x="{lx + 10}" y="{cy - 6}" width="30" height="12" fill="{FUSE_COLOUR}" '
        'fill-opacity="0.12"/>'
    )
    out.append(f'<text x="{lx + 48}" y="{cy + 4}">above the fuse</text>')
    return out


def render_svg(scenario: Scenario, outcome: Outcome, *, width: int = 960, height: int = 540) -> str:
    """Grid current per phase vs time, the fuse and the fuse minus margin, as SVG text."""
    left, right, top, bottom = 64, 24, 70, 56
    pw, ph = width - left - right, height - top - bottom
    duration = max([scenario.duration, *(t for t, _ in outcome.points)])
    peak = max([scenario.fuse_a, *(max(g) for _, g in outcome.points)])
    y_step = _nice_step(peak * 1.1, 8)
    y_max = math.ceil(peak * 1.1 / y_step) * y_step
    x_step = _nice_step(duration, 10)

    def x(t: float) -> float:
        return left + t / duration * pw

    def y(a: float) -> float:
        return top + ph - a / y_max * ph

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" '
        'font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    title = (
        f"Site load step: +{_fmt(scenario.step_a)} A on L{scenario.step_phase + 1} at "
        f"{_fmt(scenario.step_at)} s, back at {_fmt(scenario.step_back)} s"
    )
    subtitle = (
        f"{scenario.evs} EVs, fuse {_fmt(scenario.fuse_a)} A, other load "
        f"{_fmt(scenario.base_a)} A/phase, poll {_fmt(scenario.poll_interval)} s, EV reaction "
        f"{_fmt(scenario.reaction_s)} s, MeterValues every {_fmt(scenario.meter_values_every)} s"
        f", charging since t = {_fmt(-scenario.warmup)} s"
    )
    result = (
        f"Above the fuse {outcome.above_fuse_s:.1f} s, max overload "
        f"{outcome.max_overload_a:.1f} A; above fuse - margin {outcome.above_limit_s:.1f} s"
    )
    out.append(f'<text x="{left}" y="24" font-size="16" font-weight="bold">{escape(title)}</text>')
    out.append(f'<text x="{left}" y="42" fill="#444">{escape(subtitle)}</text>')
    out.append(f'<text x="{left}" y="57" fill="#444">{escape(result)}</text>')
    # Time above the fuse, shaded.
    points = outcome.points
    for (t, grid), (t_next, _) in itertools.pairwise(points):
        if max(grid) > scenario.fuse_a:
            out.append(
                f'<rect x="{x(t):.1f}" y="{top}" width="{max(0.5, x(t_next) - x(t)):.1f}" '
                f'height="{ph}" fill="{FUSE_COLOUR}" fill-opacity="0.12"/>'
            )
    # Grid and axes.
    out += svg_axes(
        Frame(left, top, pw, ph, height), x, y, (0.0, y_max, y_step), (duration, x_step),
        "grid current per phase (A)",
    )  # fmt: skip
    # The load step.
    for at, label in ((scenario.step_at, "step"), (scenario.step_back, "back")):
        if 0 <= at <= duration:
            out.append(
                f'<line x1="{x(at):.1f}" x2="{x(at):.1f}" y1="{top}" y2="{top + ph}" '
                'stroke="#777" stroke-dasharray="2 3"/>'
            )
            out.append(f'<text x="{x(at) + 4:.1f}" y="{top + 14}" fill="#555">{label}</text>')
    # Fuse and fuse - margin.
    limit = scenario.fuse_a - scenario.margin_a
    out.append(
        f'<line x1="{left}" x2="{left + pw}" y1="{y(scenario.fuse_a):.1f}" '
        f'y2="{y(scenario.fuse_a):.1f}" stroke="{FUSE_COLOUR}" stroke-width="2"/>'
    )
    out.append(
        f'<line x1="{left}" x2="{left + pw}" y1="{y(limit):.1f}" y2="{y(limit):.1f}" '
        f'stroke="{FUSE_COLOUR}" stroke-width="1.2" stroke-dasharray="8 4"/>'
    )
    # The phases, as steps (each sample holds until the next).
    for phase in range(3):
        coords: list[str] = []
        for i, (t, grid) in enumerate(points):
            if i:
                coords.append(f"{x(t):.1f},{y(points[i - 1][1][phase]):.1f}")
            coords.append(f"{x(t):.1f},{y(grid[phase]):.1f}")
        dash = PHASE_DASHES[phase]
        out.append(
            f'<polyline fill="none" stroke="{PHASE_COLOURS[phase]}" stroke-width="'
            f'{2.2 if phase == 0 else 1.6}" stroke-linejoin="round"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + f' points="{" ".join(coords)}"/>'
        )
    # Legend.
    entries: list[tuple[str, str, str, float]] = [
        (f"L{p + 1}", PHASE_COLOURS[p], PHASE_DASHES[p], 2.0) for p in range(3)
    ]
    entries.append((f"fuse {_fmt(scenario.fuse_a)} A", FUSE_COLOUR, "", 2.0))
    entries.append(
        (f"fuse - margin {_fmt(limit)} A", FUSE_COLOUR, "8 4", 1.2),
    )
    out += svg_legend(entries, left + pw - 170, top + 10, 160)
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --- command line ---------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> tuple[Scenario, Path]:
    d = Scenario()
    p = argparse.ArgumentParser(
        prog="python -m bench.site_plot", description=__doc__.splitlines()[0]
    )
    p.add_argument("--fuse", type=float, default=d.fuse_a, help="A per phase")
    p.add_argument("--margin", type=float, default=d.margin_a, help="A kept free per phase")
    p.add_argument("--base", type=float, default=d.base_a, help="other load, A per phase")
    p.add_argument("--evs", type=int, default=d.evs)
    p.add_argument("--step", type=float, default=d.step_a, help="A added on L1")
    p.add_argument("--step-at", type=float, default=d.step_at, help="s")
    p.add_argument("--step-back", type=float, default=d.step_back, help="s")
    p.add_argument("--duration", type=float, default=d.duration, help="s")
    p.add_argument("--warmup", type=float, default=d.warmup, help="charging before t=0, s")
    p.add_argument("--reaction", type=float, default=d.reaction_s, help="EV reaction, s")
    p.add_argument("--poll-interval", type=float, default=d.poll_interval, help="s")
    p.add_argument("--meter-values", type=float, default=d.meter_values_every, help="s")
    p.add_argument("--lease-time", type=float, default=d.lease_time, help="s")
    # The SVG is shown in the README, so it lives in the repository; the raw timeline
    # goes to the (ignored) results folder.
    p.add_argument("--out", type=Path, default=PLOT)
    a = p.parse_args(argv)
    scenario = Scenario(
        fuse_a=a.fuse,
        margin_a=a.margin,
        base_a=a.base,
        evs=a.evs,
        step_a=a.step,
        step_at=a.step_at,
        step_back=a.step_back,
        duration=a.duration,
        warmup=a.warmup,
        reaction_s=a.reaction,
        poll_interval=a.poll_interval,
        meter_values_every=a.meter_values,
        lease_time=a.lease_time,
    )
    return scenario, a.out


def main(argv: list[str] | None = None) -> int:
    scenario, out = _parse(argv)
    logging.basicConfig(level=logging.ERROR)
    try:
        import uvloop
    except ImportError:
        outcome = asyncio.run(run_scenario(scenario))
    else:
        outcome = uvloop.run(run_scenario(scenario))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_svg(scenario, outcome))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / out.with_suffix(".json").name).write_text(
        json.dumps(
            {
                "scenario": {k: getattr(scenario, k) for k in Scenario.__dataclass_fields__},
                "above_fuse_s": round(outcome.above_fuse_s, 3),
                "max_overload_a": round(outcome.max_overload_a, 2),
                "above_fuse_minus_margin_s": round(outcome.above_limit_s, 3),
                "timeline": [[round(t, 3), [round(a, 2) for a in g]] for t, g in outcome.points],
            },
            indent=None,
        )
    )
    limit = scenario.fuse_a - scenario.margin_a
    print(f"time above the fuse ({_fmt(scenario.fuse_a)} A): {outcome.above_fuse_s:.2f} s")
    print(f"max overload: {outcome.max_overload_a:.1f} A")
    print(f"time above fuse - margin ({_fmt(limit)} A): {outcome.above_limit_s:.2f} s")
    for note in outcome.notes:
        print(f"  {note}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
