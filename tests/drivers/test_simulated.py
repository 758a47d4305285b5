"""SimulatedMeter: base load plus EV load, failure injection, energy."""

from __future__ import annotations

import pytest

from drivers import Meter, MeterTimeout, SimulatedMeter


async def test_base_plus_ev_load() -> None:
    """Current is base + EV per phase; power is current times voltage, import positive."""
    ev = [(16.0, 16.0, 16.0)]
    meter = SimulatedMeter(base_current_a=(5.0, -2.0, 0.0), ev_current_a=lambda: ev[0])
    assert isinstance(meter, Meter)
    r = await meter.read()
    assert r.current_a == (21.0, 14.0, 16.0)
    assert r.power_w == (21.0 * 230, 14.0 * 230, 16.0 * 230)
    assert r.total_power_w == pytest.approx(51.0 * 230)
    ev[0] = (0.0, 0.0, 0.0)
    meter.base_current_a = (-10.0, 0.0, 0.0)
    r = await meter.read()
    assert r.current_a == (-10.0, 0.0, 0.0)
    assert r.total_power_w == -2300.0
    assert r.import_energy_wh is not None
    assert r.import_energy_wh > 0.0


async def test_error_injection() -> None:
    """With error set, read raises it, and recovers when cleared."""
    meter = SimulatedMeter(error=MeterTimeout("simulated outage"))
    with pytest.raises(MeterTimeout):
        await meter.read()
    meter.error = None
    assert (await meter.read()).current_a == (0.0, 0.0, 0.0)
    await meter.close()
