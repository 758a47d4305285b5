"""ModbusMeter against a real pymodbus ModbusTcpServer on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import replace

import pytest

from drivers import (
    KNOWN_MODELS,
    Meter,
    MeterConfigError,
    MeterConnectionError,
    MeterProtocolError,
    ModbusMeter,
    SimulatedMeter,
    open_meter,
    serve_meter,
)
from drivers.registers import Register

# Real waits are scaled by this factor (EDGE_TEST_TIME_SCALE=3 on a slow Pi).
TIME_SCALE = float(os.environ.get("EDGE_TEST_TIME_SCALE", "1"))
TIMEOUT = 0.3 * TIME_SCALE


def modbus_meter(model: str, port: int, **kwargs: object) -> ModbusMeter:
    settings: dict[str, object] = {"timeout": TIMEOUT, "retries": 0, "retry_delay": 0.0}
    settings.update(kwargs)
    return ModbusMeter(KNOWN_MODELS[model], host="127.0.0.1", port=port, **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("model", sorted(KNOWN_MODELS))
async def test_reads_full_reading(model: str) -> None:
    """Every shipped model reads back the A, V, W and Wh the server was set to."""
    async with serve_meter(KNOWN_MODELS[model]) as sim:
        await sim.set(
            current_a=(16.0, 8.5, -4.0),
            voltage_v=(230.0, 231.0, 229.0),
            import_energy_wh=500_000.0,
            export_energy_wh=1_000.0,
        )
        meter = modbus_meter(model, sim.port)
        try:
            before = time.monotonic()
            r = await meter.read()
        finally:
            await meter.close()
    assert r.current_a == pytest.approx((16.0, 8.5, -4.0), abs=0.01)
    assert r.voltage_v == pytest.approx((230.0, 231.0, 229.0), abs=0.1)
    assert r.power_w == pytest.approx((3680.0, 1963.5, -916.0), abs=0.1)
    assert r.total_power_w == pytest.approx(4727.5, abs=0.1)
    assert r.import_energy_wh == pytest.approx(500_000.0, rel=1e-6)
    assert r.export_energy_wh == pytest.approx(1_000.0, rel=1e-6)
    assert r.monotonic >= before


async def test_updates_are_seen_on_the_next_read() -> None:
    """A value set while a client is connected shows in its next reading."""
    async with serve_meter(KNOWN_MODELS["sdm630"]) as sim:
        meter = modbus_meter("sdm630", sim.port)
        assert (await meter.read()).current_a == (0.0, 0.0, 0.0)
        await sim.set(current_a=(32.0, 0.0, 0.0))
        assert (await meter.read()).current_a == (32.0, 0.0, 0.0)
        await meter.close()


async def test_modbus_exception_is_protocol_error() -> None:
    """An address the meter does not define answers exception 2, raised as MeterProtocolError."""
    served = KNOWN_MODELS["sdm630"]
    regs = tuple(
        replace(r, address=0x0100) if r.name == "export_energy" else r for r in served.registers
    )
    async with serve_meter(served) as sim:
        meter = ModbusMeter(replace(served, registers=regs), port=sim.port, timeout=TIMEOUT)
        with pytest.raises(MeterProtocolError, match="exception code 2") as info:
            await meter.read()
        await meter.close()
    assert info.value.exception_code == 2


async def test_outage_fails_within_timeout_then_recovers() -> None:
    """A stopped server fails the read within the retry budget; the same meter reconnects later."""
    async with serve_meter(KNOWN_MODELS["em24"]) as sim:
        await sim.set(current_a=(10.0, 10.0, 10.0))
        meter = modbus_meter("em24", sim.port, retries=1, retry_delay=0.05)
        assert (await meter.read()).current_a == pytest.approx((10.0, 10.0, 10.0))
        await sim.stop()
        start = time.monotonic()
        with pytest.raises(MeterConnectionError):  # MeterTimeout is a MeterConnectionError
            await meter.read()
        assert time.monotonic() - start < 2 * (TIMEOUT + 0.05) + 0.5 * TIME_SCALE
        await sim.start()
        await sim.set(current_a=(12.0, 12.0, 12.0))
        assert (await meter.read()).current_a == pytest.approx((12.0, 12.0, 12.0))
        await meter.close()


async def test_nothing_listening_is_connection_error(unused_tcp_port: int) -> None:
    """A refused connection is a MeterConnectionError naming the meter, without a wait."""
    meter = modbus_meter("sdm630", unused_tcp_port, retries=2)
    with pytest.raises(MeterConnectionError, match=f"127.0.0.1:{unused_tcp_port}"):
        await meter.read()
    await meter.close()


@pytest.mark.skipif(importlib.util.find_spec("serial") is not None, reason="pyserial installed")
def test_rtu_without_pyserial_is_config_error() -> None:
    """RTU without the [serial] extra fails at construction with an install hint, no traceback."""
    with pytest.raises(MeterConfigError) as info:
        open_meter("sdm630", transport="rtu", device="/dev/ttyUSB0", baudrate=9600)
    assert "pip install 'edge-csms[serial]'" in str(info.value)
    assert "Traceback" not in str(info.value)


@pytest.mark.parametrize(
    ("driver", "settings", "match"),
    [
        ("sdm999", {}, "unknown meter driver 'sdm999'"),
        ("sdm630", {"hots": "x"}, "bad \\[meter\\] settings"),
        ("sdm630", {"transport": "udp"}, "transport"),
        ("sdm630", {"unit": 0}, "1..247"),
        ("sdm630", {"transport": "rtu"}, "needs device"),
    ],
)
def test_open_meter_rejects_bad_config(
    driver: str, settings: dict[str, object], match: str
) -> None:
    """open_meter turns unknown models and bad [meter] keys into MeterConfigError."""
    with pytest.raises(MeterConfigError, match=match):
        open_meter(driver, **settings)


def test_open_meter_builds_meters() -> None:
    """open_meter accepts a whole [meter] section, poller keys included."""
    meter = open_meter(
        "abb_b23", transport="tcp", host="10.0.0.5", port=502, unit=3,
        poll_interval=1.0, stale_after=10.0,
    )  # fmt: skip
    assert isinstance(meter, ModbusMeter)
    assert isinstance(meter, Meter)
    assert meter.where == "abb_b23 at 10.0.0.5:502 unit 3"
    assert isinstance(open_meter("simulated", poll_interval=1.0), SimulatedMeter)


def test_maps_reference_their_datasheets() -> None:
    """Every map is registered under its own model name and says which datasheet it follows."""
    for model, register_map in KNOWN_MODELS.items():
        assert register_map.model == model
        assert register_map.description
        assert all(isinstance(r, Register) for r in register_map.registers)
