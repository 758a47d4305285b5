"""`bench.site_measures` on hand-made timelines (no servers, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bench.site_measures import (
    Ev,
    charging_share,
    demand_served,
    fairness,
    jain,
    overshoot,
    utilisation,
)
from bench.site_scenarios import SCENARIOS, Move, base_load
from edge.sim.site import Phases, SitePoint

T0 = datetime(2025, 6, 1, 12, tzinfo=UTC)


def point(s: float, grid: Phases, base: Phases, **draws: Phases) -> SitePoint:
    return SitePoint(T0 + timedelta(seconds=s), grid, 32.0, base, tuple(draws.items()))


def test_overshoot_integrates_the_worst_phase_and_finds_the_longest_stretch() -> None:
    points = [
        point(0, (33.0, 10.0, 10.0), (0, 0, 0)),  # 1 A over for 1 s
        point(1, (31.0, 34.0, 10.0), (0, 0, 0)),  # 2 A over (L2) for 2 s
        point(3, (10.0, 10.0, 10.0), (0, 0, 0)),
        point(4, (10.0, 10.0, -35.0), (0, 0, 0)),  # export: 3 A over for 0.5 s
        point(4.5, (10.0, 10.0, 10.0), (0, 0, 0)),
    ]
    area, longest, worst = overshoot(points)
    assert area == pytest.approx(1 + 4 + 1.5)
    assert longest == pytest.approx(3.0) and worst == pytest.approx(3.0)


def test_utilisation_and_demand_served() -> None:
    one_phase = Ev("A", T0, phases=(0,), max_a=16.0)
    # Fuse 32, margin 2, base 10 A: 20 A available per phase; A draws 16 A on L1 (all it can).
    points = [point(0, (26.0, 10.0, 10.0), (10.0, 10.0, 10.0), A=(16.0, 0.0, 0.0))]
    assert utilisation(points, 2.0) == pytest.approx(16 / 60)
    assert demand_served(points, 2.0, [one_phase]) == pytest.approx(1.0)
    half = [point(0, (18.0, 10.0, 10.0), (10.0, 10.0, 10.0), A=(8.0, 0.0, 0.0))]
    assert demand_served(half, 2.0, [one_phase]) == pytest.approx(0.5)


def test_jain_and_fairness_among_the_evs_that_could_use_more() -> None:
    assert jain([10.0, 10.0]) == pytest.approx(1.0)
    assert jain([10.0, 0.0]) == pytest.approx(0.5)
    assert jain([10.0]) is None and jain([0.0, 0.0]) is None
    evs = [
        Ev("A", T0, phases=(0,), max_a=32.0),
        Ev("B", T0, phases=(1,), max_a=32.0),
        Ev("C", T0, phases=(2,), max_a=6.0),  # has all it wants: not judged
    ]
    points = [
        point(s, (12.0, 4.0, 6.0), (0, 0, 0), A=(12.0, 0, 0), B=(0, 4.0, 0), C=(0, 0, 6.0))
        for s in (0, 1)
    ]
    index, among = fairness(points, evs)
    assert among == ["A", "B"] and index == pytest.approx(16**2 / (2 * (144 + 16)))


def test_session_measures_and_the_tapered_demand() -> None:
    ev = Ev(
        "T",
        T0 + timedelta(seconds=1),
        phases=(0, 1, 2),
        max_a=32.0,
        taper_a=10.0,
        taper_after_s=20.0,
        resumes=(T0 + timedelta(seconds=3),),
        set_calls=tuple(T0 + timedelta(seconds=s) for s in (0, 2, 31)),
    )
    points = [point(s, (0, 0, 0), (0, 0, 0), T=(6.0 if s >= 3 else 0.0,) * 3) for s in range(5)]
    assert charging_share(points, ev) == pytest.approx(0.5)  # of the 4 points from 1 s on
    assert ev.first_offer_s() == pytest.approx(2.0)
    assert ev.demand_a(T0) == 0.0 and ev.demand_a(T0 + timedelta(seconds=21)) == 10.0
    assert ev.calls_per_minute(T0 + timedelta(seconds=31)) == pytest.approx(4.0)  # 2 in 30 s


def test_base_load_moves_and_compresses_with_a_shorter_run() -> None:
    moves = (Move(10.0, (20.0, 4.0, 4.0), over_s=10.0), Move(30.0, (4.0, 4.0, 4.0)))
    load = base_load((4.0, 4.0, 4.0), moves, T0)
    assert [load(T0 + timedelta(seconds=s))[0] for s in (0, 15, 25, 30)] == [4, 12, 20, 4]
    quick = SCENARIOS["pv"].scaled(60.0)
    assert quick.moves[0].at_s == pytest.approx(24.0) and quick.moves[0].over_s == 4.0
