"""Energy register extraction and monotonic checks."""

from __future__ import annotations

import pytest

from edge.metering import check_register, register_wh


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
