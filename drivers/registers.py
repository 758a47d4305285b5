"""Register maps as data, and pure decoding of Modbus register words.

Invariants:
- A ``Register`` decodes to ``raw * scale`` in ``unit`` (A, V, W or Wh); every
  sign and scale correction for a model lives in the map, never in the reader.
- ``decode`` and ``encode`` are pure functions over ``list[int]`` (16-bit words
  as received on the wire); they do not need a pymodbus client.
- ``plan_reads`` never merges registers of different kinds and never reads more
  than ``MAX_READ_COUNT`` registers at once.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from drivers.errors import MeterConfigError

Kind = Literal["input", "holding"]
DType = Literal["float32", "int16", "uint16", "int32", "uint32", "int64", "uint64"]
WordOrder = Literal["big", "little"]

#: Modbus limit for one read of holding/input registers (FC03/FC04).
MAX_READ_COUNT = 125

# dtype -> (struct format, number of 16-bit words)
_FORMATS: dict[str, tuple[str, int]] = {
    "float32": (">f", 2),
    "int16": (">h", 1),
    "uint16": (">H", 1),
    "int32": (">i", 2),
    "uint32": (">I", 2),
    "int64": (">q", 4),
    "uint64": (">Q", 4),
}

#: Names the reader understands, with the unit each must decode to.
PHASE_NAMES = ("l1", "l2", "l3")
REQUIRED: dict[str, str] = {
    **{f"current_{p}": "A" for p in PHASE_NAMES},
    **{f"voltage_{p}": "V" for p in PHASE_NAMES},
    **{f"power_{p}": "W" for p in PHASE_NAMES},
}
OPTIONAL: dict[str, str] = {"power_total": "W", "import_energy": "Wh", "export_energy": "Wh"}


@dataclass(frozen=True, slots=True)
class Register:
    """One quantity of a meter.

    Args:
        name: one of ``REQUIRED`` or ``OPTIONAL`` (e.g. ``"current_l1"``).
        address: 0-based protocol address (datasheet 30001/40001 minus the offset).
        kind: ``"input"`` (FC04) or ``"holding"`` (FC03).
        dtype: wire type.
        word_order: ``"big"`` = high word first; ``"little"`` = low word first.
            Bytes within a word are always big-endian (Modbus).
        scale: multiply the raw value by this to get ``unit``; negative flips the sign
            (e.g. a meter reporting export positive).
        unit: unit after scaling: ``"A"``, ``"V"``, ``"W"`` or ``"Wh"``.
    """

    name: str
    address: int
    kind: Kind
    dtype: DType
    word_order: WordOrder = "big"
    scale: float = 1.0
    unit: str = ""

    @property
    def count(self) -> int:
        """Number of 16-bit registers this register spans."""
        return _FORMATS[self.dtype][1]


@dataclass(frozen=True, slots=True)
class RegisterMap:
    """A meter model described as data.

    Args:
        model: the ``KNOWN_MODELS`` key, e.g. ``"sdm630"``.
        registers: the quantities to read.
        description: manufacturer, model and datasheet the addresses come from.
        unsigned_currents: the meter reports current magnitudes; the reader gives
            each phase current the sign of that phase's power (import positive).
        max_gap: unused registers a block read may span to save a round trip.
            Keep 0 unless the meter is known to answer reads across gaps.

    Raises:
        MeterConfigError: on a missing or duplicate name, a wrong unit, a bad
            address or an unknown kind/dtype/word order.
    """

    model: str
    registers: tuple[Register, ...]
    description: str = ""
    unsigned_currents: bool = False
    max_gap: int = 0

    def __post_init__(self) -> None:
        names = [r.name for r in self.registers]
        if len(set(names)) != len(names):
            raise MeterConfigError(f"{self.model}: duplicate register names")
        missing = sorted(set(REQUIRED) - set(names))
        if missing:
            raise MeterConfigError(f"{self.model}: missing registers {missing}")
        units = REQUIRED | OPTIONAL
        for r in self.registers:
            if r.name not in units:
                raise MeterConfigError(f"{self.model}: unknown register name {r.name!r}")
            if r.unit != units[r.name]:
                raise MeterConfigError(
                    f"{self.model}: {r.name} must be in {units[r.name]}, not {r.unit!r}"
                )
            if r.kind not in ("input", "holding"):
                raise MeterConfigError(f"{self.model}: {r.name}: bad kind {r.kind!r}")
            if r.dtype not in _FORMATS:
                raise MeterConfigError(f"{self.model}: {r.name}: bad dtype {r.dtype!r}")
            if r.word_order not in ("big", "little"):
                raise MeterConfigError(f"{self.model}: {r.name}: bad word order")
            if not 0 <= r.address <= 0x10000 - r.count:
                raise MeterConfigError(f"{self.model}: {r.name}: bad address {r.address}")
            if not math.isfinite(r.scale) or r.scale == 0:
                raise MeterConfigError(f"{self.model}: {r.name}: bad scale {r.scale}")
        if self.max_gap < 0:
            raise MeterConfigError(f"{self.model}: max_gap must be >= 0")

    def __getitem__(self, name: str) -> Register:
        for r in self.registers:
            if r.name == name:
                return r
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: ``count`` registers of ``kind`` from ``address``."""

    kind: Kind
    address: int
    count: int
    registers: tuple[Register, ...]

    def words_of(self, register: Register, words: Sequence[int]) -> list[int]:
        """The slice of this block's ``words`` that belongs to ``register``."""
        start = register.address - self.address
        return list(words[start : start + register.count])


def decode(register: Register, words: Sequence[int]) -> float:
    """Decode the raw words of one register to ``raw * scale`` in ``register.unit``.

    Raises:
        ValueError: the number of words does not fit the dtype, or a word is not 16-bit.
    """
    fmt, count = _FORMATS[register.dtype]
    if len(words) != count:
        raise ValueError(f"{register.name}: {register.dtype} needs {count} words, got {len(words)}")
    ordered = list(words) if register.word_order == "big" else list(reversed(words))
    try:
        raw = struct.pack(f">{count}H", *ordered)
    except struct.error as err:
        raise ValueError(f"{register.name}: words must be 0..65535: {list(words)}") from err
    (value,) = struct.unpack(fmt, raw)
    return float(value) * register.scale


def encode(register: Register, value: float) -> list[int]:
    """The inverse of ``decode``: the words a meter would send for ``value`` (in ``unit``).

    Integer dtypes are rounded to the nearest raw step.

    Raises:
        ValueError: the value does not fit the dtype after scaling.
    """
    fmt, count = _FORMATS[register.dtype]
    raw = value / register.scale
    try:
        packed = struct.pack(fmt, raw if register.dtype == "float32" else round(raw))
    except (struct.error, OverflowError) as err:
        raise ValueError(f"{register.name}: {value} does not fit {register.dtype}") from err
    words = list(struct.unpack(f">{count}H", packed))
    return words if register.word_order == "big" else list(reversed(words))


def plan_reads(
    registers: Sequence[Register], *, max_gap: int = 0, max_count: int = MAX_READ_COUNT
) -> list[Block]:
    """Group registers into few contiguous block reads.

    Registers of the same kind are merged when the gap between them is at most
    ``max_gap`` words and the block stays within ``max_count`` registers.
    Blocks come out sorted by kind ("holding" before "input"), then address.
    """
    if not 1 <= max_count <= MAX_READ_COUNT:
        raise MeterConfigError(f"max_count must be 1..{MAX_READ_COUNT}")
    blocks: list[Block] = []
    for r in sorted(registers, key=lambda r: (r.kind, r.address)):
        if blocks:
            last = blocks[-1]
            end = last.address + last.count
            new_end = max(end, r.address + r.count)
            if (
                last.kind == r.kind
                and r.address - end <= max_gap
                and new_end - last.address <= max_count
            ):
                blocks[-1] = Block(
                    last.kind, last.address, new_end - last.address, (*last.registers, r)
                )
                continue
        blocks.append(Block(r.kind, r.address, r.count, (r,)))
    return blocks


def plan_map(register_map: RegisterMap) -> list[Block]:
    """``plan_reads`` for every register of a map, with the map's ``max_gap``."""
    return plan_reads(register_map.registers, max_gap=register_map.max_gap)


def decode_blocks(blocks: Sequence[Block], words: Sequence[Sequence[int]]) -> dict[str, float]:
    """Decode the answers to ``blocks`` (one word list per block, in order) by name.

    Raises:
        ValueError: a block's answer has the wrong length, or a word is out of range.
    """
    if len(blocks) != len(words):
        raise ValueError(f"expected {len(blocks)} blocks, got {len(words)}")
    values: dict[str, float] = {}
    for block, block_words in zip(blocks, words, strict=True):
        if len(block_words) != block.count:
            raise ValueError(
                f"{block.kind} block at {block.address}: expected {block.count} words, "
                f"got {len(block_words)}"
            )
        for r in block.registers:
            values[r.name] = decode(r, block.words_of(r, block_words))
    return values


def encode_values(
    register_map: RegisterMap, values: Mapping[str, float]
) -> dict[tuple[Kind, int], list[int]]:
    """Encode named values to ``{(kind, address): words}`` for each given register."""
    return {
        (register_map[name].kind, register_map[name].address): encode(register_map[name], value)
        for name, value in values.items()
    }
