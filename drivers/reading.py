"""What a meter delivers: a timestamped ``MeterReading``, and the ``Meter`` protocol.

Conventions (DESIGN §4): amperes per phase, import (grid → site) positive.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

Phases = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One consistent snapshot of the grid meter.

    Attributes:
        taken_at: wall-clock time of the reading, timezone-aware UTC (for display/logs).
        monotonic: ``time.monotonic()`` at the reading; judge staleness with this.
        current_a: per-phase current L1, L2, L3 in A, import positive.
        voltage_v: per-phase voltage to neutral in V.
        power_w: per-phase active power in W, import positive.
        total_power_w: total active power in W, import positive.
        import_energy_wh: energy imported since manufacture in Wh, None if the model lacks it.
        export_energy_wh: energy exported since manufacture in Wh, None if the model lacks it.
    """

    taken_at: datetime
    monotonic: float
    current_a: Phases
    voltage_v: Phases
    power_w: Phases
    total_power_w: float
    import_energy_wh: float | None = None
    export_energy_wh: float | None = None

    def age(self, now: float | None = None) -> float:
        """Seconds since the reading, against ``now`` (default ``time.monotonic()``)."""
        return (time.monotonic() if now is None else now) - self.monotonic

    def is_stale(self, stale_after: float, now: float | None = None) -> bool:
        """True when the reading is older than ``stale_after`` seconds."""
        return self.age(now) > stale_after


@runtime_checkable
class Meter(Protocol):
    """A source of ``MeterReading``s (a Modbus meter, a simulation, …)."""

    async def read(self) -> MeterReading:
        """Read every quantity once: currents in A, voltages in V, powers in W, energy in Wh.

        Raises:
            MeterConnectionError: the meter is unreachable (``MeterTimeout``: no answer).
            MeterProtocolError: the meter answered with an error or unusable data.
            Keep the previous reading; it goes stale by ``monotonic``.
        """
        ...

    async def close(self) -> None:
        """Release the connection; ``read`` may reconnect afterwards."""
        ...


def reading_from_values(
    values: Mapping[str, float],
    *,
    unsigned_currents: bool = False,
    taken_at: datetime | None = None,
    monotonic: float | None = None,
) -> MeterReading:
    """Build a ``MeterReading`` from decoded register values (pure but for the default clocks).

    ``values`` uses the register names of ``drivers.registers`` (``current_l1``,
    ``power_total``, ``import_energy``, …). With ``unsigned_currents`` each current
    takes the sign of its phase's power. A missing ``power_total`` is the sum of
    the phases.

    Raises:
        KeyError: a required quantity is missing.
        ValueError: a value is NaN or infinite (meters send NaN while booting).
    """
    for name, value in values.items():
        if not math.isfinite(value):
            raise ValueError(f"{name} is not a finite number: {value}")
    power = _phases(values, "power")
    current = _phases(values, "current")
    if unsigned_currents:
        current = (
            math.copysign(abs(current[0]), power[0]) if power[0] else abs(current[0]),
            math.copysign(abs(current[1]), power[1]) if power[1] else abs(current[1]),
            math.copysign(abs(current[2]), power[2]) if power[2] else abs(current[2]),
        )
    return MeterReading(
        taken_at=taken_at if taken_at is not None else datetime.now(UTC),
        monotonic=monotonic if monotonic is not None else time.monotonic(),
        current_a=current,
        voltage_v=_phases(values, "voltage"),
        power_w=power,
        total_power_w=values.get("power_total", sum(power)),
        import_energy_wh=values.get("import_energy"),
        export_energy_wh=values.get("export_energy"),
    )


def _phases(values: Mapping[str, float], prefix: str) -> Phases:
    return (values[f"{prefix}_l1"], values[f"{prefix}_l2"], values[f"{prefix}_l3"])
