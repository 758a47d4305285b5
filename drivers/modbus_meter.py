"""One generic Modbus reader that interprets any ``RegisterMap``, and ``open_meter``.

Invariants:
- Every pymodbus response is checked with ``isError()``; every pymodbus or OS
  exception is translated to ``drivers.errors`` here, at the boundary.
- Retries are bounded: one ``read`` takes at most about
  ``(retries + 1) * (timeout * blocks + retry_delay)`` seconds, then raises.
- After a connection failure the client is dropped; the next attempt reconnects.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from typing import Any, Literal

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from drivers.errors import MeterConfigError, MeterConnectionError, MeterProtocolError, MeterTimeout
from drivers.maps import KNOWN_MODELS
from drivers.reading import Meter, MeterReading, reading_from_values
from drivers.registers import RegisterMap, decode_blocks, plan_map

log = logging.getLogger(__name__)

Transport = Literal["tcp", "rtu"]


class ModbusMeter:
    """A meter read over Modbus TCP or RTU according to a ``RegisterMap``.

    Args:
        register_map: the model's registers.
        transport: ``"tcp"`` (``host``, ``port``) or ``"rtu"`` (``device``,
            ``baudrate``, ``parity``, ``stopbits``; needs the ``[serial]`` extra).
        unit: Modbus device id (1..247; 0 is broadcast and never answers).
        timeout: seconds to wait for each answer (and for connecting).
        retries: further attempts after a connection failure or timeout (≥ 0).
        retry_delay: seconds between attempts.

    Raises:
        MeterConfigError: bad settings, or RTU without pyserial installed.
    """

    def __init__(
        self,
        register_map: RegisterMap,
        *,
        transport: Transport = "tcp",
        host: str = "127.0.0.1",
        port: int = 502,
        device: str | None = None,
        baudrate: int = 9600,
        parity: str = "N",
        stopbits: int = 1,
        unit: int = 1,
        timeout: float = 1.0,
        retries: int = 2,
        retry_delay: float = 0.1,
    ) -> None:
        if transport not in ("tcp", "rtu"):
            raise MeterConfigError(f"transport must be 'tcp' or 'rtu', not {transport!r}")
        if not 1 <= unit <= 247:
            raise MeterConfigError(f"unit (Modbus device id) must be 1..247, not {unit}")
        if timeout <= 0 or retries < 0 or retry_delay < 0:
            raise MeterConfigError("timeout must be > 0, retries and retry_delay >= 0")
        if transport == "tcp" and not 0 < port < 65536:
            raise MeterConfigError(f"port must be 1..65535, not {port}")
        if transport == "rtu":
            if not device:
                raise MeterConfigError("transport 'rtu' needs device (e.g. /dev/ttyUSB0)")
            if parity not in ("N", "E", "O") or stopbits not in (1, 2) or baudrate <= 0:
                raise MeterConfigError("parity must be N|E|O, stopbits 1|2, baudrate > 0")
            if importlib.util.find_spec("serial") is None:
                raise MeterConfigError(
                    "transport 'rtu' needs pyserial: pip install 'edge-csms[serial]'"
                )
        self.register_map = register_map
        self._transport = transport
        self._host, self._port, self._device = host, port, device
        self._baudrate, self._parity, self._stopbits = baudrate, parity, stopbits
        self._unit = unit
        self._timeout = timeout
        self._retries = retries
        self._retry_delay = retry_delay
        self._blocks = plan_map(register_map)
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None

    @property
    def where(self) -> str:
        """Human-readable address of the meter, for logs and errors."""
        if self._transport == "tcp":
            return f"{self.register_map.model} at {self._host}:{self._port} unit {self._unit}"
        return f"{self.register_map.model} at {self._device} unit {self._unit}"

    async def read(self) -> MeterReading:
        """Read every register of the map once (A, V, W, Wh; import positive).

        Raises:
            MeterConnectionError: unreachable after all attempts (``MeterTimeout``
                if the last attempt timed out). Poll again later.
            MeterProtocolError: the meter answered with a Modbus exception or bad
                data; not retried (it is deterministic), fix the map or the unit.
        """
        last: MeterConnectionError | None = None
        for attempt in range(self._retries + 1):
            if attempt:
                await asyncio.sleep(self._retry_delay)
            try:
                return await self._read_once()
            except MeterConnectionError as err:
                last = err
                self._drop()
                log.debug("meter %s: attempt %d failed: %s", self.where, attempt + 1, err)
        assert last is not None
        raise last

    async def close(self) -> None:
        """Close the connection; a later ``read`` reconnects."""
        self._drop()

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _make_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._transport == "tcp":
            return AsyncModbusTcpClient(
                self._host, port=self._port, timeout=self._timeout, retries=0, reconnect_delay=0
            )
        assert self._device is not None
        try:
            return AsyncModbusSerialClient(
                self._device,
                baudrate=self._baudrate,
                parity=self._parity,
                stopbits=self._stopbits,
                timeout=self._timeout,
                retries=0,
                reconnect_delay=0,
            )
        except RuntimeError as err:  # pymodbus: "Serial client requires pyserial"
            raise MeterConfigError(
                "transport 'rtu' needs pyserial: pip install 'edge-csms[serial]'"
            ) from err

    async def _connected(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is None:
            self._client = self._make_client()
        if not self._client.connected:
            try:
                ok = await self._client.connect()
            except (OSError, ModbusException) as err:
                raise MeterConnectionError(f"cannot connect to {self.where}: {err}") from err
            if not ok:
                raise MeterConnectionError(f"cannot connect to {self.where}")
        return self._client

    async def _read_once(self) -> MeterReading:
        client = await self._connected()
        answers: list[list[int]] = []
        for block in self._blocks:
            what = f"{self.where}: {block.kind} {block.address}+{block.count}"
            read = (
                client.read_input_registers
                if block.kind == "input"
                else client.read_holding_registers
            )
            try:
                async with asyncio.timeout(2 * self._timeout + 1):  # belt and braces
                    rr = await read(block.address, count=block.count, device_id=self._unit)
            except (ModbusIOException, TimeoutError) as err:
                raise MeterTimeout(f"{what}: no answer within {self._timeout} s") from err
            except (ConnectionException, OSError) as err:
                raise MeterConnectionError(f"{what}: {err}") from err
            except ModbusException as err:
                raise MeterProtocolError(f"{what}: {err}") from err
            if rr.isError():
                code = getattr(rr, "exception_code", None)
                raise MeterProtocolError(f"{what}: Modbus exception code {code}", code)
            if len(rr.registers) != block.count:
                raise MeterProtocolError(f"{what}: got {len(rr.registers)} registers")
            answers.append(list(rr.registers))
        try:
            values = decode_blocks(self._blocks, answers)
            return reading_from_values(
                values, unsigned_currents=self.register_map.unsigned_currents
            )
        except (ValueError, KeyError) as err:
            raise MeterProtocolError(f"{self.where}: {err}") from err


# [meter] keys that belong to the poller, not to the connection.
_POLLER_KEYS = frozenset({"poll_interval", "stale_after"})


def open_meter(driver: str, **settings: Any) -> Meter:
    """Build the meter named by ``[meter] driver`` from the rest of the ``[meter]`` keys.

    ``driver`` is a ``KNOWN_MODELS`` name, or ``"simulated"`` for a ``SimulatedMeter``
    (development without hardware). ``poll_interval`` and ``stale_after`` are
    accepted and ignored (they are the caller's). Nothing is connected yet: the
    first ``read`` connects.

    Raises:
        MeterConfigError: unknown driver or key, or bad settings.
    """
    settings = {k: v for k, v in settings.items() if k not in _POLLER_KEYS}
    if driver == "simulated":
        from drivers.simulated import SimulatedMeter

        if settings.keys() - {"transport", "host", "port", "unit"}:
            raise MeterConfigError(f"simulated meter takes no settings: {sorted(settings)}")
        return SimulatedMeter()
    register_map = KNOWN_MODELS.get(driver)
    if register_map is None:
        known = ", ".join(sorted([*KNOWN_MODELS, "simulated"]))
        raise MeterConfigError(f"unknown meter driver {driver!r}; known: {known}")
    try:
        return ModbusMeter(register_map, **settings)
    except TypeError as err:
        raise MeterConfigError(f"bad [meter] settings: {err}") from err
