"""The site's non-EV ("house") load as the controller follows it from reading to reading.

`HouseLoad` keeps the estimate (`profiles.house_load.estimate_house`), updated once per
meter reading, and the readings that proved it rising: while it keeps rising it says how
much more room to leave free (`HouseLoad.rising_a`, from `profiles.house_load.heading`),
so the EVs are lowered at once to where the load is heading, not once per step of it.
A prediction stands for a window while the estimate stays within it: the estimate catches
up with the load a step at a time (the EVs' bands hide part of each step until they
followed), and extrapolating each step again would lower the EVs further and further after
the load stopped rising. One that goes past it (the load rose more than foreseen) makes a
new prediction from the rises since the last one alone, at most as much again as those.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from profiles.house_load import EvBand, Rise, estimate_house, heading

__all__ = ["HouseLoad"]

Phases = tuple[float, float, float]


class HouseLoad:
    """The house load estimate per phase and where a rising one is heading."""

    def __init__(self, *, horizon_s: float, window_s: float, min_rise_a: float) -> None:
        self.horizon_s = horizon_s
        """How long the controller takes to see a lowering's effect: the next lowering
        takes effect no sooner (a meter period, the EVs' follow time, the meter's lag)."""
        self.window_s = window_s
        """Two rises this close make a trend: the second may wait for the EVs to follow the
        lowering the first one caused and the meter to show it (the readings between do
        not tell the EVs' lowering from the load). Steps further apart are steps, each
        followed in full when it comes; steps closer than this are taken for a ramp (the
        safe side: the EVs are lowered further than needed for a while)."""
        self.hold_s = 2 * horizon_s
        """How long a prediction stands."""
        self.min_rise_a = min_rise_a
        self.estimate: Phases | None = None
        self.read_at: float | None = None
        self._rises: tuple[deque[Rise], ...] = (deque(), deque(), deque())
        self._heading: list[tuple[float, float] | None] = [None, None, None]
        """Per phase: (until, value) of the prediction in force."""

    def reset(self) -> None:
        """Forget everything (back from a gap in the readings: start from the worst)."""
        self.estimate = self.read_at = None
        for rises in self._rises:
            rises.clear()
        self._heading = [None, None, None]

    def update(
        self,
        read_at: float,
        meter_a: Phases,
        bands: Iterable[EvBand],
        *,
        noise_a: float,
        settle: float,
    ) -> None:
        """Take one meter reading (once per reading: cycles on the same reading must not
        take the limits they just sent for what the reading shows)."""
        previous, before_at = self.estimate, self.read_at
        new = estimate_house(previous, meter_a, bands, noise_a=noise_a, settle=settle)
        for p in range(3):
            rises = self._rises[p]
            while rises and read_at - rises[0].at > max(self.window_s, self.hold_s):
                rises.popleft()
            if previous is not None and before_at is not None and new[p] > previous[p] + 1e-6:
                rises.append(Rise(before_at, previous[p], read_at, new[p]))
            held = self._heading[p]
            if held is not None and (read_at > held[0] or new[p] > held[1]):
                held = None  # expired, or the load went past it
            if held is None:
                value = heading(
                    rises, new[p], read_at, window_s=self.window_s, horizon_s=self.horizon_s,
                    min_rise_a=self.min_rise_a,
                )  # fmt: skip
                if value is not None:
                    held = (read_at + self.hold_s, value)
                    rises.clear()  # the next prediction from the rises after this one
            self._heading[p] = held
        self.estimate, self.read_at = new, read_at

    def rising_a(self) -> Phases:
        """Per phase, how far above the estimate the load is heading (0: not rising)."""
        out = [0.0, 0.0, 0.0]
        if self.estimate is not None:
            for p, held in enumerate(self._heading):
                if held is not None:
                    out[p] = max(0.0, held[1] - self.estimate[p])
        return out[0], out[1], out[2]
