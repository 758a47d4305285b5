"""`limited_by`: why a charger gets what it gets, from the controller's snapshot."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from edge.site.limits import limited_by
from edge.site.statistics import ChargerStatistics

BASE = ChargerStatistics(
    charger_id="CP1",
    connected=True,
    wiring=(0, 1, 2),
    ev_phases=3,
    transactions=(7,),
    allocation_a=10.0,
    target_a=10.0,
    lease_a=10.0,
    lease_expires=None,
    lease_active=True,
    safe_a=6.0,
    safe_installed_a=6.0,
    drawn_a=(10.0, 10.0, 10.0),
    clock_behind_s=None,
    waiting=False,
    cap_a=None,
    operator_cap_a=None,
    cloud_cap_a=None,
    strategy="ChargePointMax L8",
    controllable=True,
    quirks=(),
    last_error=None,
    min_a=6.0,
    max_a=32.0,
    used_phases=(0, 1, 2),
)
ROOMY = (20.0, 20.0, 20.0)


def why(
    headroom: tuple[float, float, float] | None = ROOMY, fallback: bool = False, **c: Any
) -> list[str]:
    return limited_by(replace(BASE, **c), fallback=fallback, headroom_a=headroom)


@pytest.mark.parametrize(
    ("changes", "headroom", "fallback", "expected"),
    [
        # Nothing holds it: a raise may be on its way.
        ({}, ROOMY, False, []),
        ({"connected": False}, ROOMY, False, ["offline"]),
        ({"transactions": ()}, ROOMY, False, ["idle"]),
        ({"controllable": False, "strategy": None}, ROOMY, False, ["not_controllable"]),
        ({}, None, True, ["fallback"]),
        # A full phase, only those the EV uses count.
        ({}, (0.3, 20.0, 20.0), False, ["fuse:L1"]),
        ({"used_phases": (1,)}, (0.3, 20.0, 20.0), False, []),
        ({"used_phases": (1,)}, (0.3, 0.0, 20.0), False, ["fuse:L2"]),
        # Waiting: the phases without room for its minimum.
        ({"waiting": True, "allocation_a": 0.0}, (5.0, 20.0, 2.0), False,
         ["waiting:turn", "fuse:L1", "fuse:L3"]),
        ({"allocation_a": 32.0}, ROOMY, False, ["max_current"]),
        ({"cap_a": 10.0, "operator_cap_a": 10.0}, ROOMY, False, ["cap:operator"]),
        ({"cap_a": 10.0, "operator_cap_a": 16.0, "cloud_cap_a": 10.0}, ROOMY, False, ["cap:cloud"]),
        ({"cap_a": 10.0, "operator_cap_a": 10.0, "cloud_cap_a": 10.0}, ROOMY, False,
         ["cap:operator", "cap:cloud"]),
        # A cap above the allocation is not what holds it.
        ({"cap_a": 16.0, "operator_cap_a": 16.0}, (0.5, 9.0, 9.0), False, ["fuse:L1"]),
        ({"reclaimed": True}, ROOMY, False, ["draws_less"]),
        ({"probing": True, "ev_phases": None}, (0.0, 9.0, 9.0), False, ["probing", "fuse:L1"]),
    ],
)  # fmt: skip
def test_reasons(
    changes: dict[str, Any],
    headroom: tuple[float, float, float] | None,
    fallback: bool,
    expected: list[str],
) -> None:
    """Each situation the controller knows gives its reason code(s)."""
    assert why(headroom, fallback, **changes) == expected


def test_offline_wins_over_everything() -> None:
    """A charger that is gone says so first: nothing else about it is current."""
    assert why(None, True, connected=False, waiting=True) == ["offline"]
