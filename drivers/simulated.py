"""Meters without hardware: an in-process ``SimulatedMeter`` and a real Modbus TCP server.

``serve_meter`` serves a ``RegisterMap`` from a pymodbus ``ModbusTcpServer``
(``SimDevice`` with the non-shared layout, so input and holding registers are
separate) and lets a test or a bench set the quantities in engineering units.
Addresses the map does not define answer with Modbus exception 2.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import cast

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.errors import MeterError
from drivers.reading import MeterReading, Phases, reading_from_values
from drivers.registers import RegisterMap, encode, plan_map

_ZERO: Phases = (0.0, 0.0, 0.0)


class SimulatedMeter:
    """A ``Meter`` computed from a base (non-EV) load plus an EV load.

    Args:
        base_current_a: per-phase non-EV current in A (import positive; negative = PV export).
        ev_current_a: called on every read for the per-phase EV current in A.
        voltage_v: phase voltage in V; power = current * voltage.
        error: when set, ``read`` raises it (to simulate a failing meter).

    All four are plain attributes; change them between reads. Energy is the
    integral of total power between reads (import and export counted apart).
    """

    def __init__(
        self,
        base_current_a: Phases = _ZERO,
        ev_current_a: Callable[[], Phases] | None = None,
        voltage_v: float = 230.0,
        error: MeterError | None = None,
    ) -> None:
        self.base_current_a = base_current_a
        self.ev_current_a = ev_current_a
        self.voltage_v = voltage_v
        self.error = error
        self.reads = 0
        self._import_wh = 0.0
        self._export_wh = 0.0
        self._last: tuple[float, float] | None = None  # (monotonic, total W)

    async def read(self) -> MeterReading:
        """The current simulated reading (A, V, W, Wh; import positive).

        Raises:
            MeterError: whatever ``error`` is set to.
        """
        self.reads += 1
        if self.error is not None:
            raise self.error
        ev = self.ev_current_a() if self.ev_current_a else _ZERO
        current = tuple(b + e for b, e in zip(self.base_current_a, ev, strict=True))
        power = [i * self.voltage_v for i in current]
        now = time.monotonic()
        if self._last is not None:
            then, watts = self._last
            wh = watts * (now - then) / 3600.0
            if wh >= 0:
                self._import_wh += wh
            else:
                self._export_wh -= wh
        self._last = (now, sum(power))
        values = {
            **{f"current_l{n}": v for n, v in enumerate(current, 1)},
            **{f"voltage_l{n}": self.voltage_v for n in (1, 2, 3)},
            **{f"power_l{n}": v for n, v in enumerate(power, 1)},
            "import_energy": self._import_wh,
            "export_energy": self._export_wh,
        }
        return reading_from_values(values, taken_at=datetime.now(UTC), monotonic=now)

    async def close(self) -> None:
        """Nothing to release."""


_FUNCTION_CODE = {"holding": 3, "input": 4}


class MeterServer:
    """A running Modbus TCP server that looks like a meter of ``register_map``.

    Use through ``serve_meter``. ``port`` stays the same across ``stop``/``start``.
    """

    def __init__(self, register_map: RegisterMap, host: str, port: int, unit: int) -> None:
        self.register_map = register_map
        self.host = host
        self.port = port
        self.unit = unit
        self._blocks = plan_map(register_map)
        self._values: dict[str, float] = {r.name: 0.0 for r in register_map.registers}
        for n in (1, 2, 3):
            self._values[f"voltage_l{n}"] = 230.0
        self._server: ModbusTcpServer | None = None

    @property
    def running(self) -> bool:
        """True while the server accepts connections."""
        return self._server is not None

    async def set(
        self,
        *,
        current_a: Phases | None = None,
        voltage_v: Phases | None = None,
        power_w: Phases | None = None,
        total_power_w: float | None = None,
        import_energy_wh: float | None = None,
        export_energy_wh: float | None = None,
    ) -> None:
        """Set quantities in A, V, W, Wh (import positive); the rest keep their values.

        With ``current_a`` but no ``power_w``, power is current * voltage per phase.
        Without ``total_power_w`` the total is the sum of the phase powers.
        Currents are served as magnitudes when the map says the meter does so.
        """
        v = self._values
        if voltage_v is not None:
            v.update({f"voltage_l{n}": x for n, x in enumerate(voltage_v, 1)})
        if current_a is not None:
            v.update({f"current_l{n}": x for n, x in enumerate(current_a, 1)})
            if power_w is None:
                power_w = cast(
                    Phases, tuple(v[f"current_l{n}"] * v[f"voltage_l{n}"] for n in (1, 2, 3))
                )
        if power_w is not None:
            v.update({f"power_l{n}": x for n, x in enumerate(power_w, 1)})
        v["power_total"] = (
            total_power_w if total_power_w is not None else sum(v[f"power_l{n}"] for n in (1, 2, 3))
        )
        if import_energy_wh is not None:
            v["import_energy"] = import_energy_wh
        if export_energy_wh is not None:
            v["export_energy"] = export_energy_wh
        if self._server is not None:
            for r in self.register_map.registers:
                await self._server.async_setValues(
                    self.unit, _FUNCTION_CODE[r.kind], r.address, self._words(r.name)
                )

    def _words(self, name: str) -> list[int]:
        register = self.register_map[name]
        value = self._values.get(name, 0.0)
        if self.register_map.unsigned_currents and name.startswith("current_"):
            value = abs(value)
        return encode(register, value)

    def _device(self) -> SimDevice:
        tables: dict[str, list[SimData]] = {"holding": [], "input": []}
        for block in self._blocks:
            words = [0] * block.count  # gaps inside a block read as 0
            for r in block.registers:
                start = r.address - block.address
                words[start : start + r.count] = self._words(r.name)
            tables[block.kind].append(
                SimData(block.address, values=words, datatype=DataType.REGISTERS)
            )
        for kind in ("holding", "input"):  # an empty table crashes pymodbus
            if not tables[kind]:
                tables[kind].append(SimData(0xFFFF, datatype=DataType.REGISTERS))
        bits = [SimData(0, datatype=DataType.BITS)]
        return SimDevice(id=self.unit, simdata=(bits, bits, tables["holding"], tables["input"]))

    async def start(self) -> None:
        """Start serving (again) on ``host``:``port`` with the values last set."""
        if self._server is not None:
            return
        server = ModbusTcpServer(self._device(), address=(self.host, self.port))
        await server.serve_forever(background=True)
        self._server = server
        listener = cast(asyncio.Server, server.transport)
        self.port = listener.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop serving: clients see their connection fail or time out."""
        server, self._server = self._server, None
        if server is not None:
            with suppress(Exception):
                await server.shutdown()


@asynccontextmanager
async def serve_meter(
    register_map: RegisterMap, *, host: str = "127.0.0.1", port: int = 0, unit: int = 1
) -> AsyncIterator[MeterServer]:
    """Serve ``register_map`` over Modbus TCP; ``port=0`` binds an ephemeral port.

    Yields the running ``MeterServer``; read ``.port`` for the bound port and
    ``await .set(current_a=…)`` to change what it serves (230 V, 0 A, 0 W at start).
    """
    sim = MeterServer(register_map, host, port, unit)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()
