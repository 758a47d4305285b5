"""The non-EV load estimate: bands of what each EV may draw, and an estimate that moves
only as far as a reading proves it wrong."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from profiles.house_load import EvBand, Rise, estimate_house, ev_band, heading

ALL = (0, 1, 2)
REACTION = 5.0
LAG = 1.5


def band(**kwargs: object) -> EvBand:
    args: dict[str, object] = {
        "phases": ALL,
        "limit_a": 16.0,
        "max_a": 32.0,
        "report": (16.0, 16.0, 16.0),
        "report_at": 100.0,
        "changed_at": None,
        "limit_before_a": math.inf,
        "read_at": 100.0,
        "reaction_s": REACTION,
        "meter_lag_s": LAG,
    }
    args.update(kwargs)
    return ev_band(**args)  # type: ignore[arg-type]


def test_a_report_after_the_ev_followed_its_limit_is_one_point() -> None:
    settled = band(changed_at=90.0, limit_before_a=10.0)
    assert settled.exact and settled.low == (16.0, 16.0, 16.0)


def test_a_report_above_the_limit_counts_only_up_to_the_limit() -> None:
    # A stale sample or a charger ignoring its limit: the excess stays with the house.
    assert band(report=(20.0, 20.0, 20.0)).high == (16.0, 16.0, 16.0)


def test_a_pause_spans_the_old_draw_to_zero_until_a_report_shows_it() -> None:
    """Paused at t=100 from 6 A: the last report (6 A) may or may not be on the meter."""
    paused = band(limit_a=0.0, report=(6.0, 6.0, 6.0), report_at=95.0, changed_at=100.0,
                  limit_before_a=6.0, read_at=101.0)  # fmt: skip
    assert paused.low == (0.0, 0.0, 0.0) and paused.high == (6.0, 6.0, 6.0)
    # Once the reading is past the EV's reaction and the meter's lag, it shows 0 A.
    later = band(limit_a=0.0, report=(6.0, 6.0, 6.0), report_at=95.0, changed_at=100.0,
                 limit_before_a=6.0, read_at=107.0)  # fmt: skip
    assert later.exact and later.high == (0.0, 0.0, 0.0)


def test_a_raise_spans_the_old_draw_to_the_new_limit_until_a_report_shows_it() -> None:
    raised = band(limit_a=16.0, report=(6.0, 6.0, 6.0), report_at=95.0, changed_at=100.0,
                  limit_before_a=6.0, read_at=120.0)  # fmt: skip
    assert raised.low == (6.0, 6.0, 6.0) and raised.high == (16.0, 16.0, 16.0)


def test_a_one_phase_ev_spans_only_its_phase() -> None:
    raised = band(phases=(1,), limit_a=16.0, report=(0.0, 6.0, 0.0), report_at=95.0,
                  changed_at=100.0, limit_before_a=6.0, read_at=120.0)  # fmt: skip
    assert raised.low == (0.0, 6.0, 0.0) and raised.high == (0.0, 16.0, 0.0)


def test_a_charger_that_never_reports_spans_zero_to_its_limit() -> None:
    silent = band(report=None, report_at=None, limit_a=10.0)
    assert silent.low == (0.0, 0.0, 0.0) and silent.high == (10.0, 10.0, 10.0)
    unlimited = band(report=None, report_at=None, limit_a=math.inf)
    assert unlimited.high == (32.0, 32.0, 32.0)


def test_the_estimate_stays_while_the_reading_allows_it() -> None:
    """A raise from 6 to 16 A ramping: the meter rises by what the EV takes, which its
    band explains; the estimate does not move (no phantom house load)."""
    ramping = EvBand((6.0, 6.0, 6.0), (16.0, 16.0, 16.0))
    for ev in (6.0, 9.0, 16.0):
        meter = (4.0 + ev, 4.0 + ev, 4.0 + ev)
        assert estimate_house((4.0, 4.0, 4.0), meter, [ramping], noise_a=0.5) == (4.0, 4.0, 4.0)


def test_a_rise_no_band_explains_moves_the_estimate_as_far_as_proven() -> None:
    settled = EvBand((16.0, 16.0, 16.0), (16.0, 16.0, 16.0))
    step = estimate_house((4.0, 4.0, 4.0), (32.0, 20.0, 20.2), [settled], noise_a=0.5)
    assert step == (16.0, 4.0, 4.0)  # L1 proven; L3's 0.2 A is noise


def test_without_a_previous_estimate_the_highest_allowed_is_taken() -> None:
    paused = EvBand((0.0, 0.0, 0.0), (6.0, 6.0, 6.0))
    assert estimate_house(None, (10.0, 10.0, 10.0), [paused], noise_a=0.5) == (10.0, 10.0, 10.0)


def test_export_gives_a_negative_estimate() -> None:
    assert estimate_house(None, (-12.0, 4.0, 4.0), [], noise_a=0.5) == (-12.0, 4.0, 4.0)


currents = st.floats(min_value=-20, max_value=60, allow_nan=False)


@given(
    previous=st.none() | st.tuples(currents, currents, currents),
    meter=st.tuples(currents, currents, currents),
    lows=st.lists(st.floats(min_value=0, max_value=32), min_size=0, max_size=4),
    widths=st.lists(st.floats(min_value=0, max_value=16), min_size=4, max_size=4),
)
def test_the_estimate_is_always_what_the_reading_allows_give_or_take_the_noise(
    previous: tuple[float, float, float] | None,
    meter: tuple[float, float, float],
    lows: list[float],
    widths: list[float],
) -> None:
    bands = [
        EvBand((lo, lo, lo), (lo + w, lo + w, lo + w)) for lo, w in zip(lows, widths, strict=False)
    ]
    out = estimate_house(previous, meter, bands, noise_a=0.5)
    for p in range(3):
        least = meter[p] - sum(b.high[p] for b in bands)
        most = meter[p] - sum(b.low[p] for b in bands)
        assert least - 0.5 - 1e-9 <= out[p] <= most + 0.5 + 1e-9
        if previous is not None and least - 0.5 <= previous[p] <= most + 0.5:
            assert out[p] == previous[p]


@pytest.mark.parametrize("read_at", [100.5, 103.0])
def test_a_lowering_in_flight_keeps_the_old_draw_as_possible(read_at: float) -> None:
    lowered = band(limit_a=8.0, report=(16.0, 16.0, 16.0), report_at=99.0, changed_at=100.0,
                   limit_before_a=16.0, read_at=read_at)  # fmt: skip
    assert lowered.low == (8.0, 8.0, 8.0) and lowered.high == (16.0, 16.0, 16.0)


def test_a_report_on_the_way_down_does_not_hide_the_old_draw_from_an_earlier_reading() -> None:
    """Lowered 14.5 -> 8.5 A at t=100; the charger reports 8.5 A at 100.5, the reading
    (taken at 100.3) still shows 14.5 A. Taking the report for the old draw made the band
    the point 8.5 A: the house load looked 6 A higher per EV and every EV was paused."""
    lowered = band(limit_a=8.5, report=(8.5, 8.5, 8.5), report_at=100.5, changed_at=100.0,
                   limit_before_a=14.5, read_at=100.3, follow_s=2.0)  # fmt: skip
    assert lowered.low == (8.5, 8.5, 8.5) and lowered.high == (14.5, 14.5, 14.5)
    # Once the reading is past the follow time and the meter's lag, the report stands.
    later = band(limit_a=8.5, report=(8.5, 8.5, 8.5), report_at=100.5, changed_at=100.0,
                 limit_before_a=14.5, read_at=104.0, follow_s=2.0)  # fmt: skip
    assert later.exact and later.high == (8.5, 8.5, 8.5)


def test_a_lowering_is_taken_as_followed_after_the_follow_time() -> None:
    """An EV sheds a lower limit within follow_s (2 s), not the 5 s a raise may take: a
    house load rising meanwhile is seen sooner."""
    kwargs: dict[str, object] = {
        "limit_a": 8.0, "report": (16.0, 16.0, 16.0), "report_at": 99.0, "changed_at": 100.0,
        "limit_before_a": 16.0, "follow_s": 2.0,
    }  # fmt: skip
    assert not band(read_at=103.0, **kwargs).exact  # within follow_s + the meter's lag
    assert band(read_at=104.0, **kwargs).high == (8.0, 8.0, 8.0)
    raised = band(limit_a=16.0, report=(8.0, 8.0, 8.0), report_at=99.0, changed_at=100.0,
                  limit_before_a=8.0, follow_s=2.0, read_at=104.0)  # fmt: skip
    assert raised.low == (8.0, 8.0, 8.0) and raised.high == (16.0, 16.0, 16.0)


def test_with_exact_bands_the_estimate_settles_on_a_noisy_meters_mean() -> None:
    """The estimate started 0.4 A high; readings alternate +-0.2 A around 10 A: it
    converges on 10 A (without settling it stays where the first reading that proved it
    wrong put it, at the edge of that reading's noise: 9.8 + 0.5 A)."""
    estimate: tuple[float, float, float] | None = (10.4, 10.4, 10.4)
    for k in range(80):
        noise = 0.2 if k % 2 else -0.2
        meter = (10.0 + noise, 10.0 + noise, 10.0 + noise)
        estimate = estimate_house(estimate, meter, [], noise_a=0.5, settle=0.1)
    assert estimate is not None and all(abs(e - 10.0) < 0.05 for e in estimate)
    kept: tuple[float, float, float] | None = (10.4, 10.4, 10.4)
    for k in range(80):
        noise = 0.2 if k % 2 else -0.2
        kept = estimate_house(kept, (10.0 + noise,) * 3, [], noise_a=0.5)  # type: ignore[arg-type]
    assert kept == (10.3, 10.3, 10.3)


def test_on_a_noisy_meter_the_estimate_stays_near_the_mean_instead_of_chasing_the_noise() -> None:
    """Readings uniform within +-0.5 A (the noise) of 8 A, every band exact: the estimate
    stays within 0.3 A of 8 A and seldom moves. (Moved to every reading that proved it
    wrong, it went from one edge of the noise to the other, 7.5 to 8.5 A, every few
    readings: on the noisy site an EV's limit followed it up and down past the
    hysteresis.)"""
    rng = random.Random(7)
    estimate: tuple[float, float, float] | None = None
    seen: list[float] = []
    for k in range(600):
        reading = 8.0 + rng.uniform(-0.5, 0.5)
        estimate = estimate_house(estimate, (reading,) * 3, [], noise_a=0.5, settle=0.1)  # type: ignore[arg-type]
        if k >= 50:
            seen.append(estimate[0])
    assert all(abs(e - 8.0) <= 0.3 for e in seen), (min(seen), max(seen))
    moves = sum(1 for a, b in itertools.pairwise(seen) if abs(a - b) > 0.05)
    assert moves < 0.05 * len(seen), moves


def test_a_small_proven_change_moves_to_the_edge_of_the_noise_a_larger_one_in_full() -> None:
    assert estimate_house((8.0,) * 3, (8.8, 8.0, 11.0), [], noise_a=0.5) == (8.3, 8.0, 11.0)  # type: ignore[arg-type]
    assert estimate_house((8.0,) * 3, (7.1, 8.0, 5.0), [], noise_a=0.5) == (7.6, 8.0, 5.0)  # type: ignore[arg-type]


# --- a load that keeps rising -------------------------------------------------------------


def rise(before_at: float, before_a: float, at: float, after_a: float) -> Rise:
    return Rise(before_at, before_a, at, after_a)


def test_a_single_step_is_no_trend() -> None:
    """A load step is proven by one reading: nothing is extrapolated from it."""
    step = [rise(99.0, 4.0, 100.0, 16.0)]
    assert heading(step, 16.0, 100.0, window_s=9.0, horizon_s=4.5, min_rise_a=2.0) is None
    assert heading(step, 16.0, 104.0, window_s=9.0, horizon_s=4.5, min_rise_a=2.0) is None


def test_a_load_proven_rising_twice_is_heading_further_at_most_as_far_again() -> None:
    """PV export fading: -12 A, proven -9.4 A at t=101, -5.9 A at t=103 (the reading
    between could not tell the EVs' lowering from the load): 6.1 A in 3 s. In 4.5 s more
    at that rate it would add 9.1 A; it is taken to add at most what it rose, 6.1 A."""
    rises = [rise(100.0, -12.0, 101.0, -9.4), rise(102.0, -9.4, 103.0, -5.9)]
    at = heading(rises, -5.9, 103.0, window_s=9.0, horizon_s=4.5, min_rise_a=2.0)
    assert at == pytest.approx(-5.9 + 6.1)
    slow = heading(rises, -5.9, 103.0, window_s=9.0, horizon_s=1.0, min_rise_a=2.0)
    assert slow == pytest.approx(-5.9 + 6.1 / 3)


def test_rises_that_stopped_within_the_noise_or_long_ago_are_no_trend() -> None:
    """Not proven higher by the latest reading: it may have stopped."""
    rises = [rise(100.0, -12.0, 101.0, -9.4), rise(102.0, -9.4, 103.0, -5.9)]
    assert heading(rises, -5.9, 104.0, window_s=9.0, horizon_s=4.5, min_rise_a=2.0) is None
    small = [rise(100.0, 8.0, 101.0, 8.3), rise(102.0, 8.3, 103.0, 8.6)]
    assert heading(small, 8.6, 103.0, window_s=9.0, horizon_s=4.5, min_rise_a=2.0) is None
    old = [rise(80.0, 4.0, 81.0, 8.0), rise(102.0, 8.0, 103.0, 12.0)]
    assert heading(old, 12.0, 103.0, window_s=9.0, horizon_s=4.5, min_rise_a=2.0) is None
