"""The site's non-EV ("house") load, estimated from the grid meter and what the EVs may draw.

Pure (no clock, no I/O): the caller passes the times and the values it knows.

The grid meter shows house load plus EVs; the chargers report their EVs' current only now
and then (every 10-60 s), and right after the controller changed a limit nobody knows
whether the meter already shows the EV following it. Subtracting a point guess of each EV
from the meter (the obvious estimate) turns every such doubt into a phantom change of the
house load: a raise still ramping looks like the house taking more (so the EV is lowered
back), a pause whose last report still says 6 A looks like the house taking less (so its
room is handed out twice). Both flap, the second overloads.

So each EV is described by a *band*, the least and the most it can be drawing on each
phase at the moment of the reading (`ev_band`): one point when a report newer than its last
limit change shows its draw, the span between the old and the new draw while it may be
following a change, 0 up to its limit when it never reports. The house load then lies in
``[meter - sum(high), meter - sum(low)]`` per phase, and the estimate (`estimate_house`)
keeps its previous value unless the reading proves it wrong by more than the meter's noise,
then moves just as far as the reading proves: to the edge of the noise when it is proven
wrong by no more than twice the noise (what noise alone can do: the estimate then wanders
no further than the noise, instead of from one edge of it to the other), to what the
reading allows when by more (a load step, followed in full in one reading). A rise of the
house load that no band explains moves the estimate at once; a change an EV may explain
does not move it.

The estimate may be negative (PV export on a phase): that current is there for the EVs.

A load that keeps rising (PV export fading under a cloud, a heat pump ramping up) is proven
a step at a time, each step a reading or two after the EVs followed the last lowering: one
lowering per step keeps the site above the fuse a little after each. Where the readings
proved it rising twice within a short window, and by more than the margin in all,
`heading` tells where it will be by the time the next lowering takes effect, at the rate
it rose and by at most as much again: the EVs are lowered that far at once (a single step
is never taken for a trend).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["EvBand", "Rise", "estimate_house", "ev_band", "heading"]

Currents = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class EvBand:
    """The least and the most one charger may draw on each grid phase (A)."""

    low: Currents
    high: Currents

    @property
    def exact(self) -> bool:
        return self.low == self.high


def _on(phases: tuple[int, ...], value: float) -> Currents:
    out = [0.0, 0.0, 0.0]
    for p in phases:
        out[p] = value
    return out[0], out[1], out[2]


def ev_band(
    *,
    phases: tuple[int, ...],
    limit_a: float,
    max_a: float,
    report: Currents | None,
    report_at: float | None,
    changed_at: float | None,
    limit_before_a: float,
    read_at: float,
    reaction_s: float,
    meter_lag_s: float,
    follow_s: float | None = None,
) -> EvBand:
    """What a charger may be drawing at ``read_at`` (the meter reading's time, epoch s).

    `phases`: the grid phases it may draw on (all wired ones while its phase use is not
    known); `limit_a`: the limit in force per phase (inf: none known, then `max_a` bounds
    it); `report`: its latest per-phase Current.Import (None: none, or too old to say
    anything) received at `report_at`; `changed_at`: when the controller last changed its
    limit, from `limit_before_a`; an EV follows a change within `reaction_s` (a lower
    limit, which it sheds at once, within `follow_s`: default `reaction_s`), and a reading
    shows the site up to `meter_lag_s` late.

    - A report taken after the EV had time to follow the last change shows what it draws
      (capped at the limit: a charger that overdraws leaves the excess to the house load,
      the safe side): one point.
    - Otherwise, from what it drew before (the report, capped at the earlier limit; 0
      when nothing was ever reported) to what the limit lets it draw now: the EV may be
      anywhere between, and while the reading may predate the change, the earlier draw
      bounds the band too. An EV that takes longer than `follow_s` to shed a lower limit
      reads as house load for a moment: the others are lowered a little more, the safe
      side.
    """
    limit = min(limit_a, max_a)
    if report is not None and not math.isfinite(limit):
        return EvBand(report, report)  # not limited: it draws what it reports
    if report is None:
        high = limit if math.isfinite(limit) else max_a
        return EvBand((0.0, 0.0, 0.0), _on(phases, max(0.0, high)))
    settled = changed_at is None or (report_at is not None and report_at >= changed_at + reaction_s)
    if settled:
        point = (min(report[0], limit), min(report[1], limit), min(report[2], limit))
        return EvBand(point, point)
    before = min(limit_before_a, max_a)
    lows = [0.0, 0.0, 0.0]
    highs = [0.0, 0.0, 0.0]
    lowered = limit < before
    follow = reaction_s if follow_s is None or not lowered else follow_s
    in_transition = changed_at is not None and read_at < changed_at + follow + meter_lag_s
    # A report sent after the change (but before the EV surely followed it) shows the EV
    # on its way, not what it drew before: the reading, which may predate that report,
    # can still show anything up to the earlier limit.
    seen_after = changed_at is not None and report_at is not None and report_at > changed_at
    for p in range(3):
        drew = min(report[p], before) if math.isfinite(before) else report[p]
        if p not in phases:  # a phase its EV does not use: what it reported there
            lows[p] = highs[p] = min(drew, limit)
            continue
        # After the change: from what it drew to its new limit (a raise it may not take
        # in full; a lowering it follows).
        low, high = min(drew, limit), limit
        if in_transition:  # the reading may still show the draw before the change
            earlier = before if seen_after and math.isfinite(before) else drew
            low, high = min(low, drew), max(high, drew, earlier)
        lows[p], highs[p] = low, high
    return EvBand((lows[0], lows[1], lows[2]), (highs[0], highs[1], highs[2]))


def estimate_house(
    previous: Currents | None,
    meter_a: Currents,
    bands: Iterable[EvBand],
    *,
    noise_a: float,
    settle: float = 0.0,
) -> Currents:
    """The house load per phase: `previous` where the reading allows it, else the nearest
    value it allows (see the module docstring). No previous estimate: the highest value
    the reading allows (if in doubt, less room).

    `settle` (0..1): where every band is exact (the reading pins the house load down,
    up to its noise), the kept value moves this share of the way to what the reading
    shows, so it converges on the mean of a noisy meter instead of staying where the
    first noisy reading put it."""
    low = [0.0, 0.0, 0.0]
    high = [0.0, 0.0, 0.0]
    for band in bands:
        for p in range(3):
            low[p] += band.low[p]
            high[p] += band.high[p]
    out = [0.0, 0.0, 0.0]
    for p in range(3):
        least = meter_a[p] - high[p]
        most = meter_a[p] - low[p]
        if previous is None:
            out[p] = most
        elif least - noise_a <= previous[p] <= most + noise_a:
            out[p] = previous[p]  # the reading allows it, give or take its noise
            if settle and most - least <= noise_a:
                out[p] += settle * ((least + most) / 2 - previous[p])
        else:
            near = min(max(previous[p], least), most)
            if abs(near - previous[p]) <= 2 * noise_a:
                # Proven wrong by no more than the noise of this reading and of those that
                # put the estimate where it is: to the edge of what the reading allows
                # (moving to the reading itself would chase the noise, from one edge of it
                # to the other).
                out[p] = min(max(previous[p], least - noise_a), most + noise_a)
            else:
                out[p] = near  # proven wrong by more: a change of the load, followed in full
    return out[0], out[1], out[2]


@dataclass(frozen=True, slots=True)
class Rise:
    """A reading that proved the house load higher on one phase than the reading before."""

    before_at: float
    """When the reading before was taken (epoch s)."""
    before_a: float
    """The estimate then."""
    at: float
    """When this reading was taken."""
    after_a: float
    """The estimate now."""


def heading(
    rises: Sequence[Rise],
    estimate_a: float,
    now: float,
    *,
    window_s: float,
    horizon_s: float,
    min_rise_a: float,
) -> float | None:
    """Where a house load that keeps rising is heading on one phase, `horizon_s` after the
    reading of `now`; None unless it is rising.

    Rising: the reading of `now` proved it higher, and another one before within
    `window_s` (`rises`, in time order), by more than `min_rise_a` in all from the reading
    before the first of them to `estimate_a`. Then the estimate plus what it adds in
    `horizon_s` at the rate it rose, and at most as much again as it rose (a ramp is not
    extrapolated further than it was seen).
    """
    recent = [r for r in rises if now - r.at <= window_s]
    if len(recent) < 2 or recent[-1].at < now:
        return None
    first = recent[0]
    rise = estimate_a - first.before_a
    if rise <= min_rise_a:
        return None
    rate = rise / max(now - first.before_at, 1e-9)
    return estimate_a + min(rate * horizon_s, rise)
