"""SiteHistory: one point a second for an hour, minute means for a day, in fixed rings."""

from __future__ import annotations

import math

from edge.site.history import MINUTE_POINTS, SECOND_POINTS, SiteHistory, sum_phases


def test_points_come_back_as_columns_with_gaps_for_a_stale_meter() -> None:
    """Each point keeps grid, EV and fallback; a stale meter's grid is null."""
    history = SiteHistory()
    t0 = 1_800_000_000.0
    history.record(t0, (10.0, 11.0, 12.0), (6.0, 0.0, 0.0), False)
    assert not history.due(t0 + 0.5)
    assert history.due(t0 + 1)
    history.record(t0 + 1, None, (6.0, 0.0, 0.0), True)
    window = history.window(900, t0 + 1)
    assert window == {
        "resolution": 1,
        "t": [t0, t0 + 1],
        "gridA": [[10.0, None], [11.0, None], [12.0, None]],
        "evA": [[6.0, 6.0], [0.0, 0.0], [0.0, 0.0]],
        "fallback": [0, 1],
    }
    assert history.window(1, t0 + 1)["t"] == [t0 + 1]


def test_minutes_are_means_and_any_fallback_marks_them() -> None:
    """Beyond an hour the window is one-minute means; a minute with a fallback is marked."""
    history = SiteHistory()
    t0 = 1_800_000_000.0 - 1_800_000_000.0 % 60
    for i in range(120):
        grid = (float(i < 60) * 10.0, 2.0, 3.0)
        history.record(t0 + i, None if i == 70 else grid, (1.0, 1.0, 1.0), i == 70)
    history.record(t0 + 120, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), False)  # closes minute 2
    window = history.window(7200, t0 + 120)
    assert window["resolution"] == 60
    assert window["t"] == [t0, t0 + 60]
    assert window["gridA"][0] == [10.0, 0.0]  # the stale point is left out of the mean
    assert window["evA"][1] == [1.0, 1.0]
    assert window["fallback"] == [0, 1]


def test_the_rings_never_grow() -> None:
    """A day and more of points keeps the same memory: the oldest are overwritten."""
    history = SiteHistory()
    for i in range(SECOND_POINTS + 10):
        history.record(float(i * 30), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), False)
    assert history.seconds.count == SECOND_POINTS
    assert len(history.seconds.data) == SECOND_POINTS * 8
    assert history.minutes.count == MINUTE_POINTS
    first = next(history.seconds.rows())[0]
    assert first == 10 * 30.0
    assert not math.isnan(first)


def test_sum_phases_skips_chargers_without_a_fresh_report() -> None:
    """None (no fresh report) counts as nothing drawn."""
    assert sum_phases([(1.0, 2.0, 3.0), None, (1.0, 0.0, 0.5)]) == (2.0, 2.0, 3.5)
