"""Eastron SDM630 (Modbus v2) and SDM72D-M (v2).

Source: Eastron "SDM630 Modbus Protocol" and "SDM72D-M-2 user manual" input
register tables (FC04); the same addresses evcc's sdm630/sdm72 templates use.
All values are IEEE-754 float32, high word first. Power is signed, import
positive; currents are magnitudes. Energy registers count kWh (scale 1000 → Wh).
Uncertainty: the SDM72D-M v1 (not -2) lacks the per-phase quantities; use a v2.
"""

from __future__ import annotations

from drivers.registers import Register, RegisterMap


def _ir(name: str, address: int, unit: str, scale: float = 1.0) -> Register:
    return Register(name, address, "input", "float32", "big", scale, unit)


_COMMON = (
    _ir("voltage_l1", 0x0000, "V"),  # 30001 Phase 1 line to neutral volts
    _ir("voltage_l2", 0x0002, "V"),  # 30003 Phase 2 line to neutral volts
    _ir("voltage_l3", 0x0004, "V"),  # 30005 Phase 3 line to neutral volts
    _ir("current_l1", 0x0006, "A"),  # 30007 Phase 1 current
    _ir("current_l2", 0x0008, "A"),  # 30009 Phase 2 current
    _ir("current_l3", 0x000A, "A"),  # 30011 Phase 3 current
    _ir("power_l1", 0x000C, "W"),  # 30013 Phase 1 power
    _ir("power_l2", 0x000E, "W"),  # 30015 Phase 2 power
    _ir("power_l3", 0x0010, "W"),  # 30017 Phase 3 power
    _ir("power_total", 0x0034, "W"),  # 30053 Total system power
    _ir("import_energy", 0x0048, "Wh", 1000.0),  # 30073 Total import kWh
    _ir("export_energy", 0x004A, "Wh", 1000.0),  # 30075 Total export kWh
)

SDM630 = RegisterMap(
    model="sdm630",
    registers=_COMMON,
    description="Eastron SDM630 v2, input registers, float32 big-endian",
    unsigned_currents=True,
)

SDM72DM = RegisterMap(
    model="sdm72dm",
    registers=_COMMON,
    description="Eastron SDM72D-M v2, input registers, float32 big-endian (map as SDM630)",
    unsigned_currents=True,
)
