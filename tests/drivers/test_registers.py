"""Pure tests of register decoding, block planning and every shipped register map."""

from __future__ import annotations

import math

import pytest

from drivers import KNOWN_MODELS, MeterConfigError
from drivers.reading import reading_from_values
from drivers.registers import (
    Register,
    RegisterMap,
    decode,
    decode_blocks,
    encode,
    plan_map,
    plan_reads,
)


def reg(dtype: str, word_order: str = "big", scale: float = 1.0, address: int = 0) -> Register:
    return Register("power_total", address, "input", dtype, word_order, scale, "W")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dtype", "word_order", "words", "scale", "expected"),
    [
        ("float32", "big", [0x4148, 0x0000], 1.0, 12.5),
        ("float32", "little", [0x0000, 0x4148], 1.0, 12.5),
        ("int16", "big", [0xFFFF], 1.0, -1.0),
        ("uint16", "big", [0xFFFF], 1.0, 65535.0),
        ("int32", "big", [0xFFFF, 0xFFFE], 1.0, -2.0),
        ("int32", "little", [0xFFFE, 0xFFFF], 1.0, -2.0),
        ("uint32", "big", [0x0001, 0x0000], 1.0, 65536.0),
        ("uint32", "little", [0x0000, 0x0001], 1.0, 65536.0),
        ("int64", "big", [0xFFFF, 0xFFFF, 0xFFFF, 0xFFF6], 1.0, -10.0),
        ("uint64", "big", [0, 0, 1, 0], 1.0, 65536.0),
        ("uint64", "little", [1, 0, 0, 0], 1.0, 1.0),
        ("int32", "big", [0, 1234], 0.1, 123.4),
        ("int16", "big", [100], -1.0, -100.0),
        ("uint32", "big", [0, 5], 1000.0, 5000.0),
    ],
)
def test_decode(
    dtype: str, word_order: str, words: list[int], scale: float, expected: float
) -> None:
    """Each dtype and word order decodes to raw * scale."""
    assert decode(reg(dtype, word_order, scale), words) == pytest.approx(expected)


@pytest.mark.parametrize(
    "dtype", ["float32", "int16", "uint16", "int32", "uint32", "int64", "uint64"]
)
@pytest.mark.parametrize("word_order", ["big", "little"])
def test_encode_round_trips(dtype: str, word_order: str) -> None:
    """encode is the inverse of decode for every dtype and word order."""
    r = reg(dtype, word_order, scale=0.5)
    assert decode(r, encode(r, 1000.5)) == pytest.approx(1000.5)


def test_decode_rejects_wrong_length_and_range() -> None:
    """A word count that does not fit the dtype, or a word over 16 bits, is a ValueError."""
    with pytest.raises(ValueError, match="needs 2 words"):
        decode(reg("float32"), [1])
    with pytest.raises(ValueError, match=r"0\.\.65535"):
        decode(reg("uint16"), [0x10000])


def test_planner_merges_adjacent_and_splits_gaps() -> None:
    """Adjacent registers of one kind share a read; a gap or another kind starts a new one."""
    regs = [reg("float32", address=a) for a in (4, 0, 2, 10)]
    regs.append(Register("x", 6, "holding", "uint16", unit="W"))
    blocks = plan_reads(regs)
    assert [(b.kind, b.address, b.count) for b in blocks] == [
        ("holding", 6, 1),
        ("input", 0, 6),
        ("input", 10, 2),
    ]
    assert [r.address for r in blocks[1].registers] == [0, 2, 4]


def test_planner_spans_small_gaps_when_allowed() -> None:
    """With max_gap the planner reads across unused registers."""
    regs = [reg("float32", address=a) for a in (0, 10)]
    assert [(b.address, b.count) for b in plan_reads(regs, max_gap=8)] == [(0, 12)]
    assert len(plan_reads(regs, max_gap=7)) == 2


def test_planner_respects_125_register_limit() -> None:
    """No block is longer than 125 registers, even when everything is contiguous."""
    regs = [reg("float32", address=a) for a in range(0, 300, 2)]
    blocks = plan_reads(regs)
    assert [b.count for b in blocks] == [124, 124, 52]
    assert sum(len(b.registers) for b in blocks) == 150


def test_register_map_validation() -> None:
    """A map with a missing, duplicate or mis-unit register is a MeterConfigError."""
    sdm = KNOWN_MODELS["sdm630"]
    with pytest.raises(MeterConfigError, match="missing"):
        RegisterMap("bad", sdm.registers[1:])
    with pytest.raises(MeterConfigError, match="duplicate"):
        RegisterMap("bad", (*sdm.registers, sdm.registers[0]))
    wrong_unit = Register("current_l1", 6, "input", "float32", unit="mA")
    with pytest.raises(MeterConfigError, match="must be in A"):
        RegisterMap("bad", (wrong_unit, *(r for r in sdm.registers if r.name != "current_l1")))


def test_reading_signs_unsigned_currents_from_power() -> None:
    """Current magnitudes take their phase power's sign; total defaults to the phase sum."""
    values = {
        **{f"voltage_l{n}": 230.0 for n in (1, 2, 3)},
        **{f"current_l{n}": 10.0 for n in (1, 2, 3)},
        "power_l1": 2300.0,
        "power_l2": -2300.0,
        "power_l3": 0.0,
    }
    r = reading_from_values(values, unsigned_currents=True)
    assert r.current_a == (10.0, -10.0, 10.0)
    assert r.total_power_w == 0.0
    assert r.import_energy_wh is None
    assert r.taken_at.utcoffset() is not None


def test_reading_rejects_nan() -> None:
    """A NaN from a booting meter is not a reading."""
    values = {f"{q}_l{n}": 1.0 for q in ("current", "voltage", "power") for n in (1, 2, 3)}
    values["current_l2"] = math.nan
    with pytest.raises(ValueError, match="current_l2"):
        reading_from_values(values)


# Register dumps of each model for: 230.1/231.5/229.8 V, 10.5/12.25/3.0 A magnitudes,
# 2416/2835.5/-690 W (L3 exporting), 4561.5 W total, 1234.5 kWh imported, 89 kWh exported.
# One literal list of words per planned block, as the meter sends them.
EASTRON_DUMP: list[list[int]] = [
    # input 0x0000, 18 registers
    [
        17254,
        6554,
        17255,
        32768,
        17253,
        52429,
        16680,
        0,
        16708,
        0,
        16448,
        0,
        17687,
        0,
        17713,
        14336,
        50220,
        32768,
    ],
    # input 0x0034, 2 registers
    [17806, 35840],
    # input 0x0048, 4 registers
    [17562, 20480, 17074, 0],
]

DUMPS: dict[str, list[list[int]]] = {
    "sdm630": EASTRON_DUMP,
    # The SDM72D-M v2 has the SDM630's input register table.
    "sdm72dm": EASTRON_DUMP,
    "em24": [
        # input 0x0000, 6 registers
        [2301, 0, 2315, 0, 2298, 0],
        # input 0x000c, 12 registers
        [10500, 0, 12250, 0, 3000, 0, 24160, 0, 28355, 0, 58636, 65535],
        # input 0x0028, 2 registers
        [45615, 0],
        # input 0x0034, 2 registers
        [12345, 0],
        # input 0x004e, 2 registers
        [890, 0],
    ],
    "abb_b23": [
        # holding 0x5000, 8 registers
        [0, 0, 1, 57914, 0, 0, 0, 8900],
        # holding 0x5b00, 6 registers
        [0, 2301, 0, 2315, 0, 2298],
        # holding 0x5b0c, 6 registers
        [0, 1050, 0, 1225, 0, 300],
        # holding 0x5b14, 8 registers
        [6, 62934, 3, 44992, 4, 21406, 65534, 62072],
    ],
    "janitza_umg604": [
        # holding 0x4a38, 28 registers
        [
            17254,
            6554,
            17255,
            32768,
            17253,
            52429,
            0,
            0,
            0,
            0,
            0,
            0,
            16680,
            0,
            16708,
            0,
            16448,
            0,
            0,
            0,
            17687,
            0,
            17713,
            14336,
            50220,
            32768,
            17806,
            35840,
        ],
        # holding 0x4a7e, 10 registers
        [18838, 45600, 0, 0, 0, 0, 0, 0, 18349, 54272],
    ],
}


def test_every_shipped_model_has_a_dump() -> None:
    """No model ships without a decode fixture."""
    assert set(DUMPS) == set(KNOWN_MODELS)


@pytest.mark.parametrize("model", sorted(KNOWN_MODELS))
def test_decode_dump(model: str) -> None:
    """Each shipped map decodes its dump to the expected A, V, W and Wh, import positive."""
    register_map = KNOWN_MODELS[model]
    values = decode_blocks(plan_map(register_map), DUMPS[model])
    r = reading_from_values(values, unsigned_currents=register_map.unsigned_currents)
    assert r.voltage_v == pytest.approx((230.1, 231.5, 229.8), abs=1e-4)
    assert r.current_a == pytest.approx((10.5, 12.25, -3.0), abs=1e-4)
    assert r.power_w == pytest.approx((2416.0, 2835.5, -690.0), abs=1e-3)
    assert r.total_power_w == pytest.approx(4561.5, abs=1e-3)
    assert r.import_energy_wh == pytest.approx(1234500.0, rel=1e-6)
    assert r.export_energy_wh == pytest.approx(89000.0, rel=1e-6)
