"""Energy register extraction and monotonic checks."""

from __future__ import annotations

import pytest

from edge.transactions.meter_values import (
    CurrentSample,
    check_register,
    import_currents,
    physical_currents,
    register_wh,
)


@pytest.mark.parametrize(
    ("sampled", "expected"),
    [
        ([{"value": "1234"}], 1234.0),  # measurand and unit default
        ([{"value": "1.5", "unit": "kWh", "measurand": "Energy.Active.Import.Register"}], 1500.0),
        ([{"value": "10", "measurand": "Power.Active.Import", "unit": "W"}], None),
        ([{"value": "5", "phase": "L1"}], None),  # per-phase, not the total
        ([{"value": "7", "location": "Inlet"}], None),
        ([{"value": "7", "format": "SignedData"}], None),
        ([{"value": "abc"}], None),
        ([{"value": "NaN"}], None),
        ([{"value": "3"}, {"value": "9", "location": "Outlet"}], 9.0),  # Outlet wins
        ([{"value": "3", "unit": "varh"}], None),
    ],
)
def test_register_wh(sampled: list[dict[str, str]], expected: float | None) -> None:
    """Only the total Energy.Active.Import.Register, in Wh or kWh, is the session register."""
    assert register_wh(sampled) == expected


def test_register_must_not_go_backwards() -> None:
    """A lower or negative register reading is refused with a reason; equal is fine."""
    assert check_register(None, 0).accepted
    assert check_register(100, 100).accepted
    assert check_register(100, 150).accepted
    assert check_register(100, 99).reason == "register went backwards"
    assert check_register(None, -1).reason == "negative register value"


# --- Current.Import for the site control loop -----------------------------------------------


def current(value: str, phase: str | None = None, **kw: str) -> dict[str, str]:
    sv = {"value": value, "measurand": "Current.Import", "unit": "A", **kw}
    if phase is not None:
        sv["phase"] = phase
    return sv


def test_import_currents_per_phase_and_total() -> None:
    sample = import_currents(
        [
            current("16.0", "L1"),
            current("15.5", "L2-N"),
            current("0.2", "L3"),
            current("31.0"),
            {"value": "1000", "measurand": "Energy.Active.Import.Register"},
        ]
    )
    assert sample == CurrentSample((16.0, 15.5, 0.2), 31.0)


def test_import_currents_skips_what_is_not_the_outlet_draw() -> None:
    assert import_currents([{"value": "5", "measurand": "Energy.Active.Import.Register"}]) is None
    assert import_currents([current("9", "L1", location="EV")]) is None
    assert import_currents([current("9", "L1-L2")]) is None  # phase to phase: not a draw
    assert import_currents([current("nan", "L1"), current("x", "L2")]) is None
    assert import_currents([current("-3", "L1")]) == CurrentSample((0.0, None, None), None)
    assert import_currents([current("9", "L1", unit="mA")]) is None


def test_physical_currents_follow_the_wiring() -> None:
    sample = CurrentSample((16.0, 0.0, 0.0), None)
    assert physical_currents(sample, (1, 2, 0)) == (0.0, 16.0, 0.0)  # L2L3L1
    assert physical_currents(sample, (2,)) == (0.0, 0.0, 16.0)  # 1-phase on L3
    assert physical_currents(CurrentSample((10.0, 11.0, 12.0), None), (2, 0, 1)) == (
        11.0,
        12.0,
        10.0,
    )


def test_a_total_without_phases_is_spread_over_the_wired_phases() -> None:
    """A sum or an average: spreading it never overstates the EV's draw on a phase."""
    sample = CurrentSample((None, None, None), 30.0)
    assert physical_currents(sample, (0, 1, 2)) == (10.0, 10.0, 10.0)
    assert physical_currents(sample, (1,)) == (0.0, 30.0, 0.0)
