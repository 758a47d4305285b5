"""The house load as the controller follows it: the estimate once per reading, and where a
load that keeps rising is heading (`edge.site.house`)."""

from __future__ import annotations

import pytest

from edge.site.house import HouseLoad
from profiles.house_load import EvBand


def exact(*draw: float) -> EvBand:
    return EvBand((draw[0], draw[1], draw[2]), (draw[0], draw[1], draw[2]))


def lowered(before: float, now: float) -> EvBand:
    """A 1-phase EV on L1 lowered from `before` to `now`, not known to have followed."""
    return EvBand((now, 0.0, 0.0), (before, 0.0, 0.0))


def house() -> HouseLoad:
    return HouseLoad(horizon_s=4.5, window_s=9.0, min_rise_a=2.0)


def test_a_load_step_leaves_nothing_free_beyond_itself() -> None:
    h = house()
    h.update(100.0, (20.0, 4.0, 4.0), [exact(16.0, 0.0, 0.0)], noise_a=0.5, settle=0.1)
    h.update(101.0, (32.0, 4.0, 4.0), [exact(16.0, 0.0, 0.0)], noise_a=0.5, settle=0.1)
    assert h.estimate == (16.0, 4.0, 4.0) and h.rising_a() == (0.0, 0.0, 0.0)
    h.update(102.0, (28.0, 4.0, 4.0), [lowered(16.0, 12.0)], noise_a=0.5, settle=0.1)
    assert h.rising_a() == (0.0, 0.0, 0.0)


def test_steps_seconds_apart_are_steps_not_a_trend() -> None:
    """+20 A, then 10 s later +20 A more (the EVs followed the first meanwhile): each step
    is followed in full when it comes; nothing is extrapolated from the pair."""
    h = house()
    ev = exact(16.0, 16.0, 16.0)
    h.update(100.0, (26.0, 26.0, 26.0), [ev], noise_a=0.5, settle=0.1)
    h.update(101.0, (46.0, 46.0, 46.0), [ev], noise_a=0.5, settle=0.1)
    for t in range(102, 111):
        h.update(float(t), (44.0, 44.0, 44.0), [exact(14.0, 14.0, 14.0)], noise_a=0.5, settle=0.1)
    h.update(111.0, (64.0, 64.0, 64.0), [exact(14.0, 14.0, 14.0)], noise_a=0.5, settle=0.1)
    assert h.estimate == pytest.approx((50.0, 50.0, 50.0))
    assert h.rising_a() == (0.0, 0.0, 0.0)


def test_a_fading_export_is_followed_to_where_it_is_heading_once() -> None:
    """PV export on L1 (-12 A) fading under an EV at 21 A: proven -9.4 A at 101, then
    -7.7 A at 102 (the EV's lowering to 19.7 A not yet known to be followed): rising,
    4.3 A in 2 s; room is left for as much again. The readings that catch up with the
    load make no new prediction while within it; one above it makes a new one, from the
    rises since alone. A while later, nothing more is left free."""
    h = house()
    ev = exact(21.0, 0.0, 0.0)
    h.update(100.0, (9.0, 4.0, 4.0), [ev], noise_a=0.5, settle=0.1)
    h.update(101.0, (11.6, 4.0, 4.0), [ev], noise_a=0.5, settle=0.1)
    assert h.estimate == pytest.approx((-9.4, 4.0, 4.0))
    assert h.rising_a() == (0.0, 0.0, 0.0)  # one step: no trend yet
    h.update(102.0, (13.3, 4.0, 4.0), [lowered(21.0, 19.7)], noise_a=0.5, settle=0.1)
    assert h.estimate is not None and h.estimate[0] == pytest.approx(-7.7)
    assert h.rising_a() == pytest.approx((4.3, 0.0, 0.0))
    h.update(103.0, (16.4, 4.0, 4.0), [lowered(21.0, 19.7)], noise_a=0.5, settle=0.1)
    assert h.estimate[0] == pytest.approx(-4.6)
    assert h.estimate[0] + h.rising_a()[0] == pytest.approx(-3.4)  # the same prediction
    h.update(104.0, (15.0, 4.0, 4.0), [exact(15.0, 0.0, 0.0)], noise_a=0.5, settle=0.1)
    assert h.estimate[0] == pytest.approx(0.0)  # above it: 7.7 A more since 102, in 2 s
    assert h.rising_a()[0] == pytest.approx(7.7)
    for t in range(105, 115):
        h.update(float(t), (15.0, 4.0, 4.0), [exact(15.0, 0.0, 0.0)], noise_a=0.5, settle=0.1)
    assert h.rising_a() == (0.0, 0.0, 0.0)
