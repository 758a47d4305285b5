"""Why a charger gets what it gets: `limitedBy` in `GET /api/site` and on the page.

A pure function of the controller's snapshot (`ChargerStatistics`) and the site's
state, so the page shows the controller's reasons instead of guessing them. Each
reason is a short machine-readable code; the page and the README put them in words:

| code | meaning |
|---|---|
| `offline` | the charger is not connected (it applies its lease, then its safe value) |
| `idle` | no transaction: nothing to allocate |
| `not_controllable` | it refuses every profile: budgeted at its maximum, never limited |
| `fallback` | the meter is stale: every charger is at its safe value |
| `waiting:turn` | admitted later, in queue order: its minimum does not fit now |
| `fuse:L1` … `fuse:L3` | that grid phase is full (fuse - margin - other loads) |
| `cap:operator`, `cap:cloud` | held at a cap on the whole charger, from the API or the cloud |
| `max_current` | at the charger's own `max_current` (nothing on the site holds it back) |
| `draws_less` | its EV drew less than its limit, so it is capped at its draw + 2 A |
| `probing` | its EV's phase use is being learned: budgeted on every wired phase |

An empty list: it gets what it asks for and nothing named holds it (a raise may be on
its way, held by `min_update_interval` or hysteresis).
"""

from __future__ import annotations

from edge.site.statistics import ChargerStatistics, Phases

__all__ = ["FULL_PHASE_A", "limited_by"]

FULL_PHASE_A = 1.0
"""Headroom (A) under which a phase counts as full: limits go in 0.1 A steps, and a
limit kept by hysteresis may leave up to its 1 A band unused."""
EPSILON_A = 0.05


def limited_by(
    charger: ChargerStatistics, *, fallback: bool, headroom_a: Phases | None
) -> list[str]:
    """The reasons (codes in the module docstring) the charger's allocation is where it is."""
    c = charger
    if not c.connected:
        return ["offline"]
    if not c.transactions:
        return ["idle"]
    if not c.controllable:
        return ["not_controllable"]
    if fallback:
        return ["fallback"]
    reasons: list[str] = []

    def full_phases(need_a: float) -> list[str]:
        if headroom_a is None:
            return []
        return [f"fuse:L{p + 1}" for p in c.used_phases if headroom_a[p] < need_a]

    if c.waiting:
        # The phases that have no room for its minimum are why its turn has not come.
        return ["waiting:turn", *full_phases(c.min_a)]
    if c.probing:
        reasons.append("probing")
    allocation = c.allocation_a or 0.0
    if allocation >= c.max_a - EPSILON_A:
        return [*reasons, "max_current"]
    if c.cap_a is not None and allocation >= c.cap_a - EPSILON_A:
        if c.operator_cap_a is not None and c.operator_cap_a <= c.cap_a + EPSILON_A:
            reasons.append("cap:operator")
        if c.cloud_cap_a is not None and c.cloud_cap_a <= c.cap_a + EPSILON_A:
            reasons.append("cap:cloud")
        return reasons
    if c.reclaimed:
        reasons.append("draws_less")
    reasons.extend(full_phases(FULL_PHASE_A))
    return reasons
