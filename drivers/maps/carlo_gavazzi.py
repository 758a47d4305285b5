"""Carlo Gavazzi EM24 DIN (EM24DINAV93/AV53).

Source: Carlo Gavazzi "EM24 DIN Communication protocol" v3, instantaneous
variables table (FC03 or FC04 both answer; we use FC04). INT32 with the LSW
first (word order little). Weights: V x10, A x1000, W x10, kWh x10.
Power is signed, import positive; currents are magnitudes.
Uncertainty: kWh(-) TOT at 0x004E is from memory of the v3 table (earlier
firmware may lack it); check a device before relying on export energy.
"""

from __future__ import annotations

from drivers.registers import Register, RegisterMap


def _ir(name: str, address: int, unit: str, scale: float) -> Register:
    return Register(name, address, "input", "int32", "little", scale, unit)


EM24 = RegisterMap(
    model="em24",
    registers=(
        _ir("voltage_l1", 0x0000, "V", 0.1),  # 0000h V L1-N, INT32, Volt*10
        _ir("voltage_l2", 0x0002, "V", 0.1),  # 0002h V L2-N
        _ir("voltage_l3", 0x0004, "V", 0.1),  # 0004h V L3-N
        _ir("current_l1", 0x000C, "A", 0.001),  # 000Ch A L1, INT32, Ampere*1000
        _ir("current_l2", 0x000E, "A", 0.001),  # 000Eh A L2
        _ir("current_l3", 0x0010, "A", 0.001),  # 0010h A L3
        _ir("power_l1", 0x0012, "W", 0.1),  # 0012h W L1, INT32, Watt*10
        _ir("power_l2", 0x0014, "W", 0.1),  # 0014h W L2
        _ir("power_l3", 0x0016, "W", 0.1),  # 0016h W L3
        _ir("power_total", 0x0028, "W", 0.1),  # 0028h W sys, INT32, Watt*10
        _ir("import_energy", 0x0034, "Wh", 100.0),  # 0034h kWh (+) TOT, INT32, kWh*10
        _ir("export_energy", 0x004E, "Wh", 100.0),  # 004Eh kWh (-) TOT, INT32, kWh*10
    ),
    description="Carlo Gavazzi EM24 DIN, input registers, int32 LSW first",
    unsigned_currents=True,
)
