"""Pure helpers for OCPP MeterValues: find the energy register, check it only moves forward."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CurrentSample",
    "RegisterCheck",
    "check_register",
    "import_currents",
    "physical_currents",
    "register_wh",
]

ENERGY_REGISTER = "Energy.Active.Import.Register"
_UNIT_TO_WH = {"Wh": 1.0, "kWh": 1000.0}


def register_wh(sampled_values: Iterable[Mapping[str, Any]]) -> float | None:
    """The Energy.Active.Import.Register reading of one MeterValue element, in Wh.

    The measurand defaults to Energy.Active.Import.Register and the unit to Wh
    (OCPP 1.6 §7.45). Only the total (no `phase`) counts, and a reading at the
    Outlet wins over one without a location; Inlet/EV readings are not the
    charging session's register. Signed data and non-numeric values are skipped.
    """
    best: float | None = None
    best_rank = -1
    for sv in sampled_values:
        if sv.get("measurand", ENERGY_REGISTER) != ENERGY_REGISTER:
            continue
        if sv.get("phase") is not None or sv.get("format") == "SignedData":
            continue
        location = sv.get("location")
        rank = {"Outlet": 2, None: 1}.get(location, -1)
        if rank < 0:
            continue
        factor = _UNIT_TO_WH.get(sv.get("unit", "Wh"))
        if factor is None:
            continue
        try:
            value = float(sv["value"]) * factor
        except (KeyError, TypeError, ValueError):
            continue
        if value != value or value in (float("inf"), float("-inf")):
            continue
        if rank > best_rank:
            best, best_rank = value, rank
    return best


@dataclass(frozen=True, slots=True)
class RegisterCheck:
    """Outcome of checking a new register reading against the previous one."""

    accepted: bool
    reason: str | None = None


def check_register(previous_wh: float | None, value_wh: float) -> RegisterCheck:
    """A `.Register` measurand must be monotonically increasing (OCPP 1.6 errata 3.16).

    A reading below the previous one (meter replaced, wrapped, or a charger bug)
    is kept as sampled data but not used for the session's energy.
    """
    if value_wh < 0:
        return RegisterCheck(False, "negative register value")
    if previous_wh is not None and value_wh < previous_wh:
        return RegisterCheck(False, "register went backwards")
    return RegisterCheck(True)


CURRENT_IMPORT = "Current.Import"
_CURRENT_TO_A = {"A": 1.0, None: 1.0}
_PHASE_INDEX = {"L1": 0, "L2": 1, "L3": 2, "L1-N": 0, "L2-N": 1, "L3-N": 2}


@dataclass(frozen=True, slots=True)
class CurrentSample:
    """Current.Import of one MeterValue element, as the charger reported it."""

    per_phase: tuple[float | None, float | None, float | None]
    """By the charger's own phase L1, L2, L3 (its wiring maps them to the grid's)."""
    total: float | None
    """A value without a phase (some chargers send the sum, some the average)."""


def import_currents(sampled_values: Iterable[Mapping[str, Any]]) -> CurrentSample | None:
    """The Current.Import values of one MeterValue element (None: there are none).

    Readings at the EV or the inlet are skipped (the charger's outlet draw counts);
    phase-to-phase values and other units are ignored; negative values count as 0.
    """
    per_phase: list[float | None] = [None, None, None]
    total: float | None = None
    for sv in sampled_values:
        if sv.get("measurand") != CURRENT_IMPORT or sv.get("location") in ("EV", "Inlet"):
            continue
        factor = _CURRENT_TO_A.get(sv.get("unit"))
        if factor is None or sv.get("format") == "SignedData":
            continue
        try:
            value = float(sv["value"]) * factor
        except (KeyError, TypeError, ValueError):
            continue
        if not math.isfinite(value):
            continue
        value = max(0.0, value)
        phase = sv.get("phase")
        if phase is None:
            total = value
        elif phase in _PHASE_INDEX:
            per_phase[_PHASE_INDEX[phase]] = value
    if total is None and all(v is None for v in per_phase):
        return None
    return CurrentSample((per_phase[0], per_phase[1], per_phase[2]), total)


def physical_currents(sample: CurrentSample, wiring: tuple[int, ...]) -> tuple[float, float, float]:
    """The sample on the grid's phases (L1, L2, L3) through the charger's `wiring`.

    Without per-phase values a total is spread evenly over the wired phases: if it was
    the average rather than the sum, the EV's draw is underestimated, which leaves
    more of the meter's current to the non-EV load, the safe side.
    """
    grid = [0.0, 0.0, 0.0]
    if any(v is not None for v in sample.per_phase):
        for own, physical in enumerate(wiring):
            grid[physical] += sample.per_phase[own] or 0.0
    elif sample.total is not None:
        for physical in wiring:
            grid[physical] += sample.total / len(wiring)
    return grid[0], grid[1], grid[2]
