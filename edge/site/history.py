"""The site's recent past, in memory: grid and EV current per phase, and fallback.

The page plots it (`GET /api/site/history`). Readings are deliberately not journalled:
one row a second would be 86,400 SD-card writes a day for a picture. Two fixed rings
of plain doubles hold it instead, about 300 KB whatever happens:

- one point a second (at most; one per control cycle) for the last hour;
- one-minute means for the last day, folded from those points as each minute ends.

A point is (epoch s, grid L1-L3, EV L1-L3, fallback 0/1); the grid is NaN (null in
JSON) while the meter is stale, so the plot shows a gap instead of an invented line.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from edge.site.control import Phases

__all__ = ["SiteHistory", "sum_phases"]

WIDTH = 8  # t, grid L1-L3, EV L1-L3, fallback
SECOND_POINTS = 4000  # an hour at one a second, with room for cycles a little faster
MINUTE_POINTS = 24 * 60
MIN_SPACING = 0.9  # s: cycles also run on events; they do not add points
HOUR = 3600.0
NAN = math.nan


def sum_phases(draws: Iterable[Phases | None]) -> Phases:
    """The sum per phase of what the chargers draw (None: no fresh report, counted 0)."""
    l1 = l2 = l3 = 0.0
    for draw in draws:
        if draw is not None:
            l1 += draw[0]
            l2 += draw[1]
            l3 += draw[2]
    return (l1, l2, l3)


class _Ring:
    """A fixed number of WIDTH-wide rows of doubles, oldest overwritten first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.data = array("d", bytes(8 * WIDTH * capacity))
        self.count = 0
        self.next = 0

    def append(self, row: tuple[float, ...]) -> None:
        at = self.next * WIDTH
        self.data[at : at + WIDTH] = array("d", row)
        self.next = (self.next + 1) % self.capacity
        self.count = min(self.count + 1, self.capacity)

    def rows(self) -> Iterator[array[float]]:
        """Oldest first."""
        first = (self.next - self.count) % self.capacity
        for i in range(self.count):
            at = ((first + i) % self.capacity) * WIDTH
            yield self.data[at : at + WIDTH]


class SiteHistory:
    """Both rings and the minute being folded; see the module docstring."""

    def __init__(self) -> None:
        self.seconds = _Ring(SECOND_POINTS)
        self.minutes = _Ring(MINUTE_POINTS)
        self.listeners: list[Callable[[], None]] = []
        """Called after each point (the live page: at most about once a second)."""
        self._last_at = -math.inf
        self._minute: int | None = None
        self._sums = [0.0] * WIDTH
        self._grid_n = 0
        self._n = 0

    def due(self, at: float) -> bool:
        """Whether a point at `at` (epoch s) would be recorded (one a second at most)."""
        return at - self._last_at >= MIN_SPACING

    def record(self, at: float, grid_a: Phases | None, ev_a: Phases, fallback: bool) -> None:
        """Add a point; the caller checks `due` first, so the EV sum is not built for
        nothing."""
        self._last_at = at
        grid = grid_a if grid_a is not None else (NAN, NAN, NAN)
        row = (at, *grid, *ev_a, 1.0 if fallback else 0.0)
        self.seconds.append(row)
        self._fold(row, grid_a is not None)
        for listener in tuple(self.listeners):
            listener()

    def _fold(self, row: tuple[float, ...], has_grid: bool) -> None:
        minute = int(row[0] // 60)
        if self._minute is not None and minute != self._minute:
            self._flush()
        self._minute = minute
        sums = self._sums
        self._n += 1
        if has_grid:
            self._grid_n += 1
            for i in (1, 2, 3):
                sums[i] += row[i]
        for i in (4, 5, 6):
            sums[i] += row[i]
        sums[7] = max(sums[7], row[7])  # any fallback in the minute marks it

    def _flush(self) -> None:
        assert self._minute is not None
        s, n, g = self._sums, self._n, self._grid_n
        grid = (s[1] / g, s[2] / g, s[3] / g) if g else (NAN, NAN, NAN)
        self.minutes.append((self._minute * 60.0, *grid, s[4] / n, s[5] / n, s[6] / n, s[7]))
        self._sums = [0.0] * WIDTH
        self._n = self._grid_n = 0

    def window(self, seconds: float, now: float) -> dict[str, Any]:
        """The last `seconds` as columns (uPlot's shape): one point a second up to an
        hour, one-minute means beyond."""
        resolution, ring = (1, self.seconds) if seconds <= HOUR else (60, self.minutes)
        since = now - seconds
        t: list[float] = []
        grid: list[list[float | None]] = [[], [], []]
        ev: list[list[float]] = [[], [], []]
        fallback: list[int] = []
        for row in ring.rows():
            if row[0] <= since:
                continue
            t.append(round(row[0], 1))
            for p in range(3):
                value = row[1 + p]
                grid[p].append(None if math.isnan(value) else round(value, 2))
                ev[p].append(round(row[4 + p], 2))
            fallback.append(int(row[7]))
        return {"resolution": resolution, "t": t, "gridA": grid, "evA": ev, "fallback": fallback}
