"""ABB B23 / B24 (B-series) 3-phase meters.

Source: ABB "B23/B24 User Manual" 2CMC485003M0201, Modbus mapping tables;
holding registers (FC03), big-endian words. Voltage UINT32 0.1 V, current
UINT32 0.01 A, active power INT32 0.01 W (import positive), energy UINT64
0.01 kWh (scale 10 → Wh). Currents are magnitudes.
Uncertainty: the manual forbids reads spanning undefined registers, so
``max_gap`` stays 0 (four reads per poll).
"""

from __future__ import annotations

from drivers.registers import DType, Register, RegisterMap


def _hr(name: str, address: int, dtype: DType, unit: str, scale: float) -> Register:
    return Register(name, address, "holding", dtype, "big", scale, unit)


ABB_B23 = RegisterMap(
    model="abb_b23",
    registers=(
        _hr("import_energy", 0x5000, "uint64", "Wh", 10.0),  # 5000h Active import kWh, 0.01 kWh
        _hr("export_energy", 0x5004, "uint64", "Wh", 10.0),  # 5004h Active export kWh, 0.01 kWh
        _hr("voltage_l1", 0x5B00, "uint32", "V", 0.1),  # 5B00h Voltage L1-N, 0.1 V
        _hr("voltage_l2", 0x5B02, "uint32", "V", 0.1),  # 5B02h Voltage L2-N
        _hr("voltage_l3", 0x5B04, "uint32", "V", 0.1),  # 5B04h Voltage L3-N
        _hr("current_l1", 0x5B0C, "uint32", "A", 0.01),  # 5B0Ch Current L1, 0.01 A
        _hr("current_l2", 0x5B0E, "uint32", "A", 0.01),  # 5B0Eh Current L2
        _hr("current_l3", 0x5B10, "uint32", "A", 0.01),  # 5B10h Current L3
        _hr("power_total", 0x5B14, "int32", "W", 0.01),  # 5B14h Active power total, 0.01 W
        _hr("power_l1", 0x5B16, "int32", "W", 0.01),  # 5B16h Active power L1
        _hr("power_l2", 0x5B18, "int32", "W", 0.01),  # 5B18h Active power L2
        _hr("power_l3", 0x5B1A, "int32", "W", 0.01),  # 5B1Ah Active power L3
    ),
    description="ABB B23/B24, holding registers, big-endian integers",
    unsigned_currents=True,
)
