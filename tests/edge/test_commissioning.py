"""Commissioning: the meter probe, the meter check and the fallback report."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers import KNOWN_MODELS, MeterError, serve_meter
from edge.cli import main
from edge.config import ChargerSettings, Config, MeterConfig, SiteConfig
from edge.site.commissioning import build_meter, fallback_report, probe_meter


def _site(chargers: int, fuse: float, *, phases: str = "L1L2L3") -> Config:
    return Config(
        meter=MeterConfig(driver="sdm630"),
        site=SiteConfig(max_current=(fuse, fuse, fuse), margin=2.0, fallback_current=6.0),
        chargers={f"CP{n}": ChargerSettings(phases=phases) for n in range(chargers)},
    )


def test_fallback_that_fits_the_fuse() -> None:
    """Three 3-phase chargers at 6 A fit a 25 A fuse with 2 A margin."""
    fits, report = fallback_report(_site(3, 25.0))
    assert fits and "fits the fuse" in report[0]


def test_fallback_that_does_not_fit_says_who_gets_nothing() -> None:
    """Three 3-phase chargers at 6 A do not fit a 16 A fuse: one gets 0 A in fallback."""
    fits, report = fallback_report(_site(3, 16.0))
    assert not fits
    assert "does not fit" in report[0] and "1 of them get 0 A" in report[0]


def test_single_phase_chargers_on_rotated_phases_fit() -> None:
    """1-phase chargers spread over the phases are budgeted on their own phase only."""
    config = Config(
        site=SiteConfig(max_current=(16.0, 16.0, 16.0), margin=2.0, fallback_current=6.0),
        chargers={
            "A": ChargerSettings(phases="L1"),
            "B": ChargerSettings(phases="L2"),
            "C": ChargerSettings(phases="L3"),
            "D": ChargerSettings(phases="L1"),
        },
    )
    assert fallback_report(config)[0]


def test_unknown_driver_is_a_meter_error() -> None:
    """A [meter] driver no map exists for is refused before anything connects."""
    with pytest.raises(MeterError):
        build_meter(MeterConfig(driver="nosuchmeter"))


def test_check_reports_meter_and_fallback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`check` fails on an unknown meter driver and warns when the fallback does not fit."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[meter]\ndriver = "nosuchmeter"\n')
    assert main(["check", "--config", str(bad)]) == 2
    assert "unknown meter driver" in capsys.readouterr().err
    tight = tmp_path / "tight.toml"
    tight.write_text(
        '[meter]\ndriver = "sdm630"\n[site]\nmax_current = [16, 16, 16]\n'
        "[chargers.A]\n[chargers.B]\n[chargers.C]\n"
    )
    assert main(["check", "--config", str(tight)]) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "does not fit" in out and "configuration OK" in out


def test_probe_without_meter_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`meter probe` without a [meter] section says so and exits 2."""
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert main(["meter", "probe", "--config", str(empty)]) == 2
    assert "no [meter] section" in capsys.readouterr().err


async def test_probe_reads_a_real_meter(capsys: pytest.CaptureFixture[str]) -> None:
    """The probe reads a Modbus TCP meter and prints per-phase currents and totals."""
    async with serve_meter(KNOWN_MODELS["sdm630"]) as sim:
        await sim.set(current_a=(10.5, 11.0, 9.5), power_w=(2400.0, 2500.0, 2100.0))
        config = MeterConfig(driver="sdm630", host="127.0.0.1", port=sim.port)
        assert await probe_meter(config, count=2, interval=0.1) == 0
    out = capsys.readouterr().out
    assert "L1    10.50 A" in out and "L3     9.50 A" in out
    assert out.count("current") == 2


async def test_probe_of_an_unreachable_meter(
    unused_tcp_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """A meter that does not answer gives a readable message and exit code 1."""
    config = MeterConfig(driver="sdm630", host="127.0.0.1", port=unused_tcp_port)
    assert await probe_meter(config) == 1
    out = capsys.readouterr().out
    assert "meter sdm630 (tcp):" in out and "Traceback" not in out
