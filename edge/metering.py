"""Pure helpers for OCPP MeterValues: find the energy register, check it only moves forward."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["RegisterCheck", "check_register", "register_wh"]

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
