"""Janitza UMG 604 (-PRO); the UMG 96RM uses the same 19000-range table.

Source: Janitza "Modbus address list UMG 604" frequently-used-values table
(addresses 19000-19078); holding registers (FC03), float32 big-endian. Values
are in V, A, W and Wh. Power is signed, consumed (import) positive.
Uncertainty: the consumed/delivered energy sums (19070/19078) follow the
L1, L2, L3, sum stride of that table from memory; verify on a device. Current
sign is taken from power to be safe.
"""

from __future__ import annotations

from drivers.registers import Register, RegisterMap


def _hr(name: str, address: int, unit: str) -> Register:
    return Register(name, address, "holding", "float32", "big", 1.0, unit)


JANITZA_UMG604 = RegisterMap(
    model="janitza_umg604",
    registers=(
        _hr("voltage_l1", 19000, "V"),  # 19000 _G_ULN[0] Voltage L1-N
        _hr("voltage_l2", 19002, "V"),  # 19002 _G_ULN[1] Voltage L2-N
        _hr("voltage_l3", 19004, "V"),  # 19004 _G_ULN[2] Voltage L3-N
        _hr("current_l1", 19012, "A"),  # 19012 _G_ILN[0] Current L1
        _hr("current_l2", 19014, "A"),  # 19014 _G_ILN[1] Current L2
        _hr("current_l3", 19016, "A"),  # 19016 _G_ILN[2] Current L3
        _hr("power_l1", 19020, "W"),  # 19020 _G_PLN[0] Real power L1
        _hr("power_l2", 19022, "W"),  # 19022 _G_PLN[1] Real power L2
        _hr("power_l3", 19024, "W"),  # 19024 _G_PLN[2] Real power L3
        _hr("power_total", 19026, "W"),  # 19026 _G_P_SUM3 Real power L1..L3
        _hr("import_energy", 19070, "Wh"),  # 19070 _G_WH_V_SUM3 Real energy consumed L1..L3
        _hr("export_energy", 19078, "Wh"),  # 19078 _G_WH_Z_SUM3 Real energy delivered L1..L3
    ),
    description="Janitza UMG 604 / UMG 96RM, holding registers, float32 big-endian",
    unsigned_currents=True,
    # Every address 19000..19078 is defined, so spanning the gaps is safe: 2 reads.
    max_gap=8,
)
