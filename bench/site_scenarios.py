"""Site load balancing on realistic sites, at production timings: what the EVs and the fuse get.

    .venv/bin/python -m bench.site_scenarios                   # six scenarios: ~25 minutes
    .venv/bin/python -m bench.site_scenarios --quick           # 75 s each: ~8 minutes
    .venv/bin/python -m bench.site_scenarios --only unbalanced # one scenario

Each scenario runs a real `edge.app.App` in this process against the site simulator the
integration tests use (`edge.sim.site`): a real Modbus TCP SDM630 showing
base load + every charger's draw (`SimSite`), and chargers on real WebSockets that keep
their charging profiles as real ones do, with an EV behind each (`SimCharger`). Timings
are production ones: meter poll 1 s, stale after 10 s, lease 60 s, min_update_interval
5 s, the site's dwell defaults (`SiteConfig`: min_run_time, min_pause_time,
rotation_period); every charger sends MeterValues every 10 s from its StartTransaction,
every EV takes 2 s to ramp up to a higher offer. The chargers connect and get their safe
profiles first and wait min_update_interval (an EV arrives long after its charger
booted), then the EVs are plugged in 0.5 s apart from t = 0; the run ends at t =
duration. Moving base load is scheduled from t = 0; with ``--quick`` every scenario is
75 s and its schedule is compressed to match (a PV fade and the EV taper keep their own
time).

- **unbalanced**: 3x32 A, margin 2 A, base L1 18 A growing to 24 A (from 60 s to 120 s),
  L2/L3 8 A; 1-phase EVs on R2 (a 3-phase charger wired L2L3L1), R3 (L3L1L2), R1
  (L1L2L3) and S2 (a 1-phase charger on L2), a 3-phase EV on T; EVs give up after 3 pauses;
- **noisy**: the same behind a meter with +-0.5 A of noise;
- **roomy**: 3x63 A, base 3 A, five 12 A 1-phase chargers (on L1, L2, L3, L1, L2) and a
  3-phase EV that tapers to 10 A 20 s into its session; +-0.5 A of noise;
- **pv**: 3x32 A, L1 exports 12 A (base -12/4/4 A), a 1-phase EV on L1 and a 3-phase EV;
  the export fades to 0 over 4 s at 40 % of the run (a cloud);
- **silent**: 3x32 A, base 14 A per phase, two 3-phase EVs, one on a charger whose
  MeterValues carry no Current.Import;
- **load-step**: 3x32 A, base 4 A, three 3-phase EVs; L1 +12 A at a third of the run,
  back at two thirds.

What is measured, per scenario, over [t = 0, end] (definitions: `bench.site_measures`):
overshoot above the fuse (A·s on the worst phase, the longest stretch, the largest
excess), utilisation (EV draw within what is available over what is available) and the
share of the EVs' demand served, Jain's fairness index over the mean draw of the EVs
that could use more, StartTransaction → first offer of 6 A or more (max, median),
pauses per session, EVs that gave up, starved EVs (charging at under a quarter of their
session), SetChargingProfile calls per charger per minute of its session, and the CPU
of a control cycle (`SiteController.cycle_cpu_total_s / cycles` over the run). The CPU
per cycle at 200 chargers comes from `bench.site`'s last result, if there is one.

Results: ``bench/results/site-scenarios.json`` and ``site-scenarios.md`` (a run with
``--only`` replaces its scenario's entry and keeps the others), and the unbalanced site
plotted: ``bench/site-unbalanced.svg`` (``bench/results/site-unbalanced-quick.svg`` with
``--quick``). Every scenario is bounded by a timeout; nothing listens beyond 127.0.0.1;
the data directories are removed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from bench.site import (
    RESULTS,
    WarningCounter,
    bench_config,
    machine,
    quiet_log_handlers,
    seed_tags,
)
from bench.site_fleet import run_loop
from bench.site_measures import (
    STARVED_SHARE,
    Ev,
    charging_share,
    demand_served,
    draw,
    fairness,
    mean_demand,
    mean_draw,
    overshoot,
    time_above,
    utilisation,
)
from bench.site_plot import (
    FUSE_COLOUR,
    PHASE_COLOURS,
    PHASE_DASHES,
    Frame,
    _fmt,
    _nice_step,
    svg_axes,
    svg_legend,
)
from edge.app import App
from edge.config import ChargerSettings, SiteConfig
from edge.sim.site import Phases, SimCharger, SimSite, SitePoint
from edge.site.report import site_json

__all__ = ["SCENARIOS", "Scenario", "main", "render_markdown", "render_svg", "run_scenario"]

BENCH = Path(__file__).resolve().parent
PLOT = BENCH / "site-unbalanced.svg"
Json = dict[str, Any]

# Production timings.
POLL_S = 1.0
STALE_S = 10.0
LEASE_S = 60.0
MIN_UPDATE_S = 5.0
REPORT_EVERY_S = 10.0  # MeterValues of a charger, from its StartTransaction
RAMP_S = 2.0  # an EV reaches a higher offer in this long
TICK_S = 0.1  # the simulation: meter update and EV draw
PLUG_GAP_S = 0.5  # between two StartTransactions
QUICK_S = 75.0
SETUP_TIMEOUT_S = 90.0  # connecting, safe profiles, tags: on top of the run's duration
DWELL = SiteConfig()  # the site's defaults: what the scenarios run with


# --- the scenarios ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Charger:
    """A charger (its wiring as configured and as built) and the EV plugged into it."""

    cid: str
    wiring: str = "L1L2L3"
    ev_phases: int = 3
    rating_a: float = 32.0
    ev_max_a: float = 32.0
    taper_a: float | None = None
    taper_after_s: float = 0.0
    give_up_after: int | None = None
    reports_current: bool = True

    def settings(self) -> ChargerSettings:
        return ChargerSettings(phases=self.wiring, max_current=self.rating_a)

    def sim_kwargs(self) -> Json:
        return {
            "wiring": self.wiring,
            "ev_phases": self.ev_phases,
            "rating_a": self.rating_a,
            "ev_max_a": self.ev_max_a,
            "taper_a": self.taper_a,
            "taper_after_s": self.taper_after_s,
            "give_up_after": self.give_up_after,
            "reports_current": self.reports_current,
            "ramp_s": RAMP_S,
            "report_every": REPORT_EVERY_S,
        }


@dataclass(frozen=True, slots=True)
class Move:
    """The base load moves (linearly) to `to` from `at_s` over `over_s` (0: a step).
    `at_s` (and `over_s`, unless `fixed`) are compressed with a shorter run."""

    at_s: float
    to: Phases
    over_s: float = 0.0
    label: str = ""
    fixed: bool = False

    def scaled(self, k: float) -> Move:
        return replace(self, at_s=self.at_s * k, over_s=self.over_s * (1.0 if self.fixed else k))


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    chargers: tuple[Charger, ...]
    fuse_a: float = 32.0
    margin_a: float = 2.0
    base_a: Phases = (4.0, 4.0, 4.0)
    moves: tuple[Move, ...] = ()
    noise_a: float = 0.0
    duration_s: float = 120.0

    def scaled(self, duration_s: float) -> Scenario:
        k = duration_s / self.duration_s
        return replace(self, duration_s=duration_s, moves=tuple(m.scaled(k) for m in self.moves))


def base_load(initial: Phases, moves: Sequence[Move], t0: datetime) -> Callable[[datetime], Phases]:
    """The base load at a moment: `initial`, then each move in turn from t0 on."""

    def load(now: datetime) -> Phases:
        s = (now - t0).total_seconds()
        a, b, c = initial
        for move in moves:
            if s < move.at_s:
                break
            k = 1.0 if move.over_s <= 0 else min(1.0, (s - move.at_s) / move.over_s)
            a, b, c = (a + (move.to[0] - a) * k, b + (move.to[1] - b) * k, c + (move.to[2] - c) * k)
        return a, b, c

    return load


def _unbalanced(name: str, title: str, noise_a: float, duration_s: float) -> Scenario:
    return Scenario(
        name=name,
        title=title,
        chargers=(
            Charger("R2", wiring="L2L3L1", ev_phases=1, give_up_after=3),
            Charger("R3", wiring="L3L1L2", ev_phases=1, give_up_after=3),
            Charger("R1", wiring="L1L2L3", ev_phases=1, give_up_after=3),
            Charger("S2", wiring="L2", ev_phases=1, give_up_after=3),
            Charger("T", wiring="L1L2L3", ev_phases=3, give_up_after=3),
        ),
        base_a=(18.0, 8.0, 8.0),
        moves=(Move(60.0, (24.0, 8.0, 8.0), over_s=60.0, label="L1 grows"),),
        noise_a=noise_a,
        duration_s=duration_s,
    )


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        _unbalanced("unbalanced", "Unbalanced site, L1 base load 18 → 24 A", 0.0, 480.0),
        _unbalanced("noisy", "Unbalanced site, ±0.5 A meter noise", 0.5, 480.0),
        Scenario(
            name="roomy",
            title="Room for all: 3x63 A, five 12 A 1-phase chargers, a tapering EV",
            chargers=(
                *(
                    Charger(cid, wiring=w, ev_phases=1, rating_a=12.0, ev_max_a=12.0)
                    for cid, w in (
                        ("P1a", "L1"),
                        ("P2a", "L2"),
                        ("P3", "L3"),
                        ("P1b", "L1"),
                        ("P2b", "L2"),
                    )
                ),
                Charger("T", taper_a=10.0, taper_after_s=20.0),
            ),
            fuse_a=63.0,
            base_a=(3.0, 3.0, 3.0),
            noise_a=0.5,
            duration_s=120.0,
        ),
        Scenario(
            name="pv",
            title="PV export on L1 (12 A) that fades over 4 s",
            chargers=(Charger("P1", wiring="L1", ev_phases=1), Charger("T")),
            base_a=(-12.0, 4.0, 4.0),
            moves=(Move(48.0, (0.0, 4.0, 4.0), over_s=4.0, label="cloud", fixed=True),),
            duration_s=120.0,
        ),
        Scenario(
            name="silent",
            title="A charger that reports no current",
            chargers=(Charger("A"), Charger("SILENT", reports_current=False)),
            base_a=(14.0, 14.0, 14.0),
            duration_s=120.0,
        ),
        Scenario(
            name="load-step",
            title="Load step: +12 A on L1 and back",
            chargers=(Charger("EV1"), Charger("EV2"), Charger("EV3")),
            base_a=(4.0, 4.0, 4.0),
            moves=(
                Move(35.0, (16.0, 4.0, 4.0), label="step"),
                Move(70.0, (4.0, 4.0, 4.0), label="back"),
            ),
            duration_s=105.0,
        ),
    )
}


# --- a run --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    scenario: Scenario
    t0: datetime
    end: datetime
    points: list[SitePoint]
    evs: list[Ev]
    cycles: int
    cycle_cpu_s: float
    warnings: int
    first_warnings: list[str]
    leases: dict[str, Any] = field(default_factory=dict)  # at the end, as the API shows them
    wall_s: float = 0.0


def tag(cid: str) -> str:
    return f"TAG-{cid}"


async def _wait_safe(chargers: Sequence[SimCharger], timeout: float = 15.0) -> None:
    """Until every charger acts on the site's profiles (a charger without any is unlimited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(list(c.effective(datetime.now(UTC))) for c in chargers):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"no site profiles on every charger after {timeout:g} s")


def _check(runner: asyncio.Future[Any]) -> None:
    if runner.done():
        runner.result()  # raises what stopped the simulation
        raise RuntimeError("the simulation stopped")


async def run_scenario(scenario: Scenario, *, seed: int = 1) -> Run:
    """One scenario against a real App; bounded by its duration + SETUP_TIMEOUT_S."""
    wall = time.monotonic()
    data_dir = Path(tempfile.mkdtemp(prefix="edge-bench-site-scenarios-"))
    warnings = WarningCounter()
    logging.getLogger().addHandler(warnings)
    try:
        async with (
            asyncio.timeout(scenario.duration_s + SETUP_TIMEOUT_S),
            SimSite(
                fuse_a=scenario.fuse_a,
                base_load_a=scenario.base_a,
                noise_a=scenario.noise_a,
                seed=seed,
            ) as site,
        ):
            await site.tick()
            config = bench_config(
                data_dir,
                site.meter_port,
                scenario.fuse_a,
                poll_interval=POLL_S,
                lease_time=LEASE_S,
                min_update_interval=MIN_UPDATE_S,
                margin=scenario.margin_a,
            )
            assert config.meter is not None
            config = replace(
                config,
                meter=replace(config.meter, stale_after=STALE_S),
                chargers={c.cid: c.settings() for c in scenario.chargers},
            )
            async with App(config) as app:
                controller = app.site
                assert controller is not None
                await seed_tags(app, [tag(c.cid) for c in scenario.chargers])
                runner = asyncio.ensure_future(site.run(1e9, TICK_S, meter_values_every=None))
                try:
                    url = f"ws://127.0.0.1:{app.ocpp_port}/ocpp/"
                    sims = [
                        await site.add_charger(url + c.cid, c.cid, **c.sim_kwargs())
                        for c in scenario.chargers
                    ]
                    await _wait_safe(sims)
                    await asyncio.sleep(MIN_UPDATE_S)
                    _check(runner)
                    cycles0, cpu0 = controller.cycles, controller.cycle_cpu_total_s
                    t0 = datetime.now(UTC)
                    site.base_load_a = base_load(scenario.base_a, scenario.moves, t0)
                    for sim in sims:
                        await sim.start_session(tag(sim.charger_id))
                        await asyncio.sleep(PLUG_GAP_S)
                    left = scenario.duration_s - (datetime.now(UTC) - t0).total_seconds()
                    await asyncio.sleep(max(0.0, left))
                    _check(runner)
                    end = datetime.now(UTC)
                    cycles = controller.cycles - cycles0
                    cpu = controller.cycle_cpu_total_s - cpu0
                    snapshot = site_json(controller.statistics())
                finally:
                    runner.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await runner
                evs = [Ev.of(sim) for sim in sims]
        points = [p for p in site.timeline if t0 <= p.t <= end]
    finally:
        logging.getLogger().removeHandler(warnings)
        shutil.rmtree(data_dir, ignore_errors=True)
    return Run(
        scenario=scenario,
        t0=t0,
        end=end,
        points=points,
        evs=evs,
        cycles=cycles,
        cycle_cpu_s=cpu,
        warnings=warnings.count,
        first_warnings=warnings.first,
        leases={c["chargerId"]: c.get("leaseA") for c in snapshot["chargers"]},
        wall_s=time.monotonic() - wall,
    )


# --- measures -----------------------------------------------------------------------------------


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def measure(run: Run) -> Json:
    """The scenario's numbers (see the module docstring and `bench.site_measures`)."""
    sc, points, evs = run.scenario, run.points, run.evs
    area, longest, worst = overshoot(points)
    jain_index, limited = fairness(points, evs)
    per_ev: dict[str, Json] = {}
    for ev in evs:
        share = charging_share(points, ev)
        per_ev[ev.charger_id] = {
            "first_offer_s": _r(ev.first_offer_s()),
            "pauses": len(ev.pauses),
            "resumes": len(ev.resumes),
            "pauses_at_s": [round((t - run.t0).total_seconds(), 1) for t in ev.pauses],
            "resumes_at_s": [round((t - run.t0).total_seconds(), 1) for t in ev.resumes],
            "gave_up_at_s": _r((ev.gave_up_at - run.t0).total_seconds(), 1)
            if ev.gave_up_at
            else None,
            "charging_share": _r(share, 3),
            "starved": share is not None and share < STARVED_SHARE,
            "mean_draw_a": _r(mean_draw(points, ev)),
            "mean_demand_a": _r(mean_demand(points, ev)),
            "calls_per_min": _r(ev.calls_per_minute(run.end)),
            "lease_at_end_a": run.leases.get(ev.charger_id),
            "profiles": [
                [round((at - run.t0).total_seconds(), 1), limit]
                for at, limit in zip(ev.set_calls, ev.set_limits, strict=False)
                if ev.start is not None and at >= ev.start
            ],
        }
    firsts = [e["first_offer_s"] for e in per_ev.values()]
    offered = [f for f in firsts if f is not None]
    pauses = [e["pauses"] for e in per_ev.values()]
    calls = [e["calls_per_min"] for e in per_ev.values() if e["calls_per_min"] is not None]
    return {
        "name": sc.name,
        "title": sc.title,
        "duration_s": sc.duration_s,
        "measured_s": round((run.end - run.t0).total_seconds(), 1),
        "date": run.t0.strftime("%Y-%m-%d %H:%M UTC"),
        "fuse_a": sc.fuse_a,
        "margin_a": sc.margin_a,
        "noise_a": sc.noise_a,
        "evs": len(evs),
        "above_fuse_a_s": round(area, 2),
        "above_fuse_longest_s": round(longest, 1),
        "above_fuse_s": round(time_above(points, sc.fuse_a), 1),
        "above_fuse_max_a": round(worst, 2),
        "above_limit_s": round(time_above(points, sc.fuse_a - sc.margin_a), 1),
        "utilisation": _r(utilisation(points, sc.margin_a), 3),
        "demand_served": _r(demand_served(points, sc.margin_a, evs), 3),
        "jain": _r(jain_index, 3),
        "jain_among": limited,
        "first_offer_max_s": max(offered) if len(offered) == len(firsts) else None,
        "first_offer_median_s": _r(statistics.median(offered)) if offered else None,
        "never_offered": [cid for cid, e in per_ev.items() if e["first_offer_s"] is None],
        "pauses_max": max(pauses),
        "pauses_mean": round(statistics.fmean(pauses), 2),
        "gave_up": [cid for cid, e in per_ev.items() if e["gave_up_at_s"] is not None],
        "starved": [cid for cid, e in per_ev.items() if e["starved"]],
        "calls_per_min_max": max(calls) if calls else None,
        "calls_per_min_mean": _r(statistics.fmean(calls)) if calls else None,
        "cycles": run.cycles,
        "cycle_cpu_ms": _r(run.cycle_cpu_s * 1000 / run.cycles, 3) if run.cycles else None,
        "warnings": run.warnings,
        "first_warnings": run.first_warnings,
        "wall_s": round(run.wall_s, 1),
        "per_ev": per_ev,
    }


# --- the report ---------------------------------------------------------------------------------


def site_bench_cpu(path: Path = RESULTS / "site.json") -> str:
    """The CPU per control cycle at 200 chargers from `bench.site`'s last result."""
    try:
        data = json.loads(path.read_text())
        result = data["results"]["200"]["cycle_cpu"]
        mean = result["process_ms"]["mean"]
        return f"{mean:.2f} ms ({data['info']['date']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "run bench.site"


def _num(value: float | None, fmt: str = "{:.2f}", missing: str = "-") -> str:
    return missing if value is None else fmt.format(value)


def _names(ids: Sequence[str]) -> str:
    return ", ".join(ids) if ids else "none"


def _first(r: Json) -> str:
    never = r["never_offered"]
    high = _num(r["first_offer_max_s"], "{:.1f}", f"never: {_names(never)}")
    return f"{high} / {_num(r['first_offer_median_s'], '{:.1f}')}"


COLUMNS: list[tuple[str, Callable[[Json], str]]] = [
    ("scenario", lambda r: f"{r['name']} ({r['measured_s']:.0f} s, {r['evs']} EVs)"),
    (
        "above fuse: A·s / longest s / max A",
        lambda r: (
            f"{r['above_fuse_a_s']:.1f} / {r['above_fuse_longest_s']:.1f} / "
            f"{r['above_fuse_max_a']:.1f}"
        ),
    ),
    ("utilisation", lambda r: _num(r["utilisation"], "{:.0%}")),
    ("demand served", lambda r: _num(r["demand_served"], "{:.0%}")),
    (
        "Jain (EVs that could use more)",
        lambda r: f"{_num(r['jain'], '{:.2f}')} ({len(r['jain_among'])})",
    ),
    ("first offer max / median (s)", _first),
    ("pauses max / mean", lambda r: f"{r['pauses_max']} / {r['pauses_mean']:.1f}"),
    ("gave up", lambda r: _names(r["gave_up"])),
    ("starved", lambda r: _names(r["starved"])),
    (
        "SetChargingProfile /charger/min max / mean",
        lambda r: (
            f"{_num(r['calls_per_min_max'], '{:.1f}')} / {_num(r['calls_per_min_mean'], '{:.1f}')}"
        ),
    ),
    (
        "cycle CPU (ms)",
        lambda r: f"{_num(r['cycle_cpu_ms'], '{:.2f}')} ({r['cycles']} cycles)",
    ),
]


def render_markdown(info: Json, results: Sequence[Json]) -> str:
    lines = [
        "# Site load balancing on realistic sites",
        "",
        *(f"- {k}: {v}" for k, v in info.items()),
        "",
        "| " + " | ".join(name for name, _ in COLUMNS) + " |",
        "|---|" + "--:|" * (len(COLUMNS) - 1),
    ]
    for r in results:
        cells = []
        for _, get in COLUMNS:
            try:
                cells.append(get(r))
            except (KeyError, TypeError, ValueError):
                cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(
        "| bench.site, 200 chargers |" + " |" * (len(COLUMNS) - 2) + f" {site_bench_cpu()} |"
    )
    lines += [
        "",
        "Above the fuse: the integral of the worst phase's excess, the longest stretch, the "
        "largest excess. Utilisation: EV draw within fuse - margin - true base load, over that; "
        "demand served: EV draw over what the EVs could draw within it. Jain: over the mean "
        "draw of the EVs held below 95 % of their demand (their count in brackets). First "
        "offer: StartTransaction → 6 A or more offered. Starved: charging under a quarter of "
        "its session. Cycle CPU: `cycle_cpu_total_s / cycles` (process time) over the run; "
        "the last row is `bench.site` at 200 chargers (process time, mean).",
        "",
    ]
    return "\n".join(lines)


def brief(r: Json) -> str:
    """One scenario's per-EV story, for the console."""
    lines = [f"{r['name']}: {r['title']}"]
    for cid, e in r["per_ev"].items():
        lines.append(
            f"  {cid}: first offer {_num(e['first_offer_s'], '+{:.1f}s', 'never')}, "
            f"charging {_num(e['charging_share'], '{:.0%}')}, mean {e['mean_draw_a']} A of "
            f"{e['mean_demand_a']} A, pauses at {e['pauses_at_s']}, resumes at "
            f"{e['resumes_at_s']}"
            + (f", gave up at {e['gave_up_at_s']} s" if e["gave_up_at_s"] is not None else "")
            + f", {_num(e['calls_per_min'], '{:.1f}')} calls/min, lease at end "
            f"{e['lease_at_end_a']}"
        )
        lines.append(f"    profiles (s, A): {e.get('profiles', [])}")
    return "\n".join(lines)


# --- SVG ----------------------------------------------------------------------------------------

EV_COLOURS = ("#7f7f7f", "#9467bd", "#8c564b", "#17becf", "#bcbd22", "#e377c2")


def render_svg(run: Run, result: Json, *, width: int = 1040, height: int = 600) -> str:
    """Grid current per phase and each EV's draw vs time, the fuse and fuse - margin."""
    sc = run.scenario
    left, right, top, bottom = 64, 190, 92, 56
    pw, ph = width - left - right, height - top - bottom
    points = [((p.t - run.t0).total_seconds(), p) for p in run.points]
    duration = max([sc.duration_s, *(t for t, _ in points)])
    peak = max([sc.fuse_a, *(max(p.grid_a) for _, p in points)])
    low = min([0.0, *(min(p.grid_a) for _, p in points)])
    y_step = _nice_step((peak - low) * 1.1, 8)
    y_max = math.ceil(peak * 1.08 / y_step) * y_step
    y_min = math.floor(low / y_step) * y_step if low < 0 else 0.0
    x_step = _nice_step(duration, 10)

    def x(t: float) -> float:
        return left + t / duration * pw

    def y(a: float) -> float:
        return top + ph - (a - y_min) / (y_max - y_min) * ph

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" '
        'font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    chargers = ", ".join(
        f"{c.cid} {c.wiring}" + (" 1-ph EV" if c.ev_phases == 1 else "") for c in sc.chargers
    )
    subtitle = (
        f"fuse {_fmt(sc.fuse_a)} A, margin {_fmt(sc.margin_a)} A, base "
        f"{'/'.join(_fmt(a) for a in sc.base_a)} A at t = 0; poll {_fmt(POLL_S)} s, lease "
        f"{_fmt(LEASE_S)} s, MeterValues every {_fmt(REPORT_EVERY_S)} s, EV ramp {_fmt(RAMP_S)} s"
    )
    summary = (
        f"above the fuse {result['above_fuse_a_s']:.1f} A·s (longest "
        f"{result['above_fuse_longest_s']:.1f} s, up to {result['above_fuse_max_a']:.1f} A); "
        f"utilisation {_num(result['utilisation'], '{:.0%}')}; pauses max "
        f"{result['pauses_max']}; gave up: {_names(result['gave_up'])}; starved: "
        f"{_names(result['starved'])}"
    )
    out.append(
        f'<text x="{left}" y="24" font-size="16" font-weight="bold">{escape(sc.title)}</text>'
    )
    out.append(f'<text x="{left}" y="43" fill="#444">{escape(subtitle)}</text>')
    out.append(f'<text x="{left}" y="60" fill="#444">chargers: {escape(chargers)}</text>')
    out.append(f'<text x="{left}" y="77" fill="#444">{escape(summary)}</text>')
    for (t, p), (t_next, _) in itertools.pairwise(points):
        if p.overload_a > 0:
            out.append(
                f'<rect x="{x(t):.1f}" y="{top}" width="{max(0.5, x(t_next) - x(t)):.1f}" '
                f'height="{ph}" fill="{FUSE_COLOUR}" fill-opacity="0.12"/>'
            )
    out += svg_axes(
        Frame(left, top, pw, ph, height), x, y, (y_min, y_max, y_step), (duration, x_step),
        "current per phase (A)",
    )  # fmt: skip
    for move in sc.moves:
        for at, label in ((move.at_s, move.label), (move.at_s + move.over_s, "")):
            if 0 < at <= duration and (label or move.over_s > 0):
                out.append(
                    f'<line x1="{x(at):.1f}" x2="{x(at):.1f}" y1="{top}" y2="{top + ph}" '
                    'stroke="#777" stroke-dasharray="2 3"/>'
                )
                if label:
                    out.append(
                        f'<text x="{x(at) + 4:.1f}" y="{top + 14}" fill="#555">'
                        f"{escape(label)}</text>"
                    )
    limit = sc.fuse_a - sc.margin_a
    for level, stroke, dash in ((sc.fuse_a, 2.0, ""), (limit, 1.2, "8 4")):
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y(level):.1f}" y2="{y(level):.1f}" '
            f'stroke="{FUSE_COLOUR}" stroke-width="{stroke}"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + "/>"
        )

    def steps(values: Sequence[tuple[float, float]]) -> str:
        """Each value holds until the next: a point where the (drawn) value changes."""
        if not values:
            return ""
        coords = [f"{x(values[0][0]):.1f},{y(values[0][1]):.1f}"]
        held = y(values[0][1])
        for t, a in values[1:]:
            level = y(a)
            if abs(level - held) >= 0.05:
                coords += [f"{x(t):.1f},{held:.1f}", f"{x(t):.1f},{level:.1f}"]
                held = level
        coords.append(f"{x(values[-1][0]):.1f},{held:.1f}")
        return " ".join(coords)

    entries: list[tuple[str, str, str, float]] = []
    for i, ev in enumerate(run.evs):
        colour = EV_COLOURS[i % len(EV_COLOURS)]
        values = [(t, draw(p, ev.charger_id)) for t, p in points]
        out.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1" stroke-opacity="0.9" '
            f'points="{steps(values)}"/>'
        )
        phases = "".join(f"L{p + 1}" for p in ev.phases)
        entries.append((f"{ev.charger_id} draw ({phases})", colour, "", 1.0))
    for phase in range(3):
        dash = PHASE_DASHES[phase]
        values = [(t, p.grid_a[phase]) for t, p in points]
        out.append(
            f'<polyline fill="none" stroke="{PHASE_COLOURS[phase]}" stroke-width="'
            f'{2.2 if phase == 0 else 1.6}" stroke-linejoin="round"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + f' points="{steps(values)}"/>'
        )
    entries = [
        *((f"grid L{p + 1}", PHASE_COLOURS[p], PHASE_DASHES[p], 2.0) for p in range(3)),
        (f"fuse {_fmt(sc.fuse_a)} A", FUSE_COLOUR, "", 2.0),
        (f"fuse - margin {_fmt(limit)} A", FUSE_COLOUR, "8 4", 1.2),
        *entries,
    ]
    out += svg_legend(entries, left + pw + 10, top, right - 16)
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --- command line -------------------------------------------------------------------------------


def _log(text: str) -> None:
    print(f"[bench.site_scenarios] {text}", file=sys.stderr, flush=True)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.site_scenarios", description=(__doc__ or "").splitlines()[0]
    )
    p.add_argument("--quick", action="store_true", help=f"{QUICK_S:g} s per scenario")
    p.add_argument("--only", choices=list(SCENARIOS), help="run one scenario")
    p.add_argument("--seed", type=int, default=1, help="meter noise")
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    p.add_argument("--plot", type=Path, help=f"the unbalanced site's SVG (default {PLOT.name})")
    return p.parse_args(argv)


async def _run_all(scenarios: Sequence[Scenario], seed: int) -> list[Run]:
    runs = []
    for scenario in scenarios:
        _log(f"{scenario.name}: {scenario.duration_s:g} s ...")
        runs.append(await run_scenario(scenario, seed=seed))
    return runs


def _previous(path: Path) -> list[Json]:
    try:
        results = json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return results if isinstance(results, list) else []


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    quiet_log_handlers()
    chosen = [SCENARIOS[args.only]] if args.only else list(SCENARIOS.values())
    if args.quick:
        chosen = [s.scaled(QUICK_S) for s in chosen]
    t0 = time.monotonic()
    info: Json = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "settings": (
            f"poll {POLL_S:g} s, stale after {STALE_S:g} s, lease {LEASE_S:g} s, min update "
            f"interval {MIN_UPDATE_S:g} s, hysteresis {DWELL.hysteresis:g} A, min run "
            f"{DWELL.min_run_time:g} s, min pause {DWELL.min_pause_time:g} s, rotation "
            f"{DWELL.rotation_period:g} s; MeterValues every {REPORT_EVERY_S:g} s per charger, "
            f"EV ramp {RAMP_S:g} s, simulation tick {TICK_S:g} s"
        ),
    }
    runs: list[Run] = run_loop(_run_all(chosen, args.seed))
    info["total_seconds"] = round(time.monotonic() - t0)
    results = [measure(run) for run in runs]
    for r in results:
        print(brief(r))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "site-scenarios.json"
    names = {r["name"] for r in results}
    merged = [r for r in _previous(json_path) if r.get("name") not in names] + results
    order = list(SCENARIOS)
    merged.sort(key=lambda r: order.index(r["name"]) if r.get("name") in order else len(order))
    json_path.write_text(json.dumps({"info": info, "results": merged}, indent=1))
    markdown = render_markdown(info, merged)
    (out / "site-scenarios.md").write_text(markdown)
    for run, r in zip(runs, results, strict=True):
        if run.scenario.name == "unbalanced":
            plot = args.plot or (out / "site-unbalanced-quick.svg" if args.quick else PLOT)
            plot.parent.mkdir(parents=True, exist_ok=True)
            plot.write_text(render_svg(run, r))
            _log(f"wrote {plot}")
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
