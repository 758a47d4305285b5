"""Commissioning helpers: build and read the site meter, judge the fallback values.

Used by `edge-csms check` and `edge-csms meter probe`, and logged at start-up, so a
technician learns before the first overload whether the meter answers and whether
the configured fallback current fits the fuse.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict

from drivers import Meter, MeterError, MeterReading, open_meter
from edge.config import Config, MeterConfig
from edge.times import format_time
from profiles.allocation import SafeCharger, parse_wiring, safe_allocation

__all__ = ["build_meter", "describe_reading", "fallback_report", "probe_meter"]


def build_meter(config: MeterConfig) -> Meter:
    """The Meter for a `[meter]` section (nothing is connected until the first read).

    Raises:
        MeterError: unknown driver or settings that do not fit it.
    """
    settings = asdict(config)
    driver = settings.pop("driver")
    if settings["transport"] == "tcp":
        for key in ("device", "baudrate", "parity", "stopbits"):
            settings.pop(key)
    else:
        settings.pop("host")
        settings.pop("port")
    return open_meter(driver, **settings)


def describe_reading(reading: MeterReading) -> list[str]:
    """A reading as a technician reads it: per phase, then totals."""

    def triple(values: tuple[float, float, float], unit: str) -> str:
        return "  ".join(f"L{i + 1} {v:8.2f} {unit}" for i, v in enumerate(values))

    lines = [
        f"time     {format_time(reading.taken_at)}",
        f"current  {triple(reading.current_a, 'A')}",
        f"voltage  {triple(reading.voltage_v, 'V')}",
        f"power    {triple(reading.power_w, 'W')}",
        f"total    {reading.total_power_w:10.1f} W (import positive)",
    ]
    if reading.import_energy_wh is not None:
        lines.append(f"import   {reading.import_energy_wh / 1000:10.3f} kWh")
    if reading.export_energy_wh is not None:
        lines.append(f"export   {reading.export_energy_wh / 1000:10.3f} kWh")
    return lines


async def probe_meter(config: MeterConfig, *, count: int = 1, interval: float = 1.0) -> int:
    """Read the configured meter `count` times and print what it says; exit code 0 or 1."""
    try:
        meter = build_meter(config)
    except MeterError as err:
        print(f"meter: {err}")
        return 1
    failures = 0
    try:
        for n in range(count):
            if n:
                await asyncio.sleep(interval)
            try:
                reading = await meter.read()
            except MeterError as err:
                failures += 1
                print(f"meter {config.driver} ({config.transport}): {err}")
                continue
            print("\n".join(describe_reading(reading)))
            if count > 1:
                print()
    finally:
        await meter.close()
    return 1 if failures == count else 0


def fallback_report(config: Config) -> tuple[bool, list[str]]:
    """Whether `fallback_current` for every configured charger fits the fuse, and why.

    With no knowledge of the non-EV load (the meter is what went missing), the
    fallback values must fit the fuse by themselves; where they do not, some chargers
    get 0 A in fallback, chosen in rotation.
    """
    site = config.site
    chargers = [
        SafeCharger(
            charger_id=charger_id,
            wiring=parse_wiring(settings.phases),
            max_a=settings.max_current,
        )
        for charger_id, settings in sorted(config.chargers.items())
    ]
    if not chargers:
        return True, ["no chargers configured under [chargers.<id>]: fallback not checked"]
    plan = safe_allocation(
        chargers,
        limit_a=site.max_current,
        margin_a=site.margin,
        fallback_a=site.fallback_current,
        rotation_key=0,
    )
    usable = ", ".join(f"{limit - site.margin:g}" for limit in site.max_current)
    if plan.fits:
        return True, [
            f"fallback {site.fallback_current:g} A for each of {len(chargers)} chargers fits "
            f"the fuse ({usable} A per phase after the margin)"
        ]
    return False, [
        f"fallback {site.fallback_current:g} A for each of {len(chargers)} chargers does not fit "
        f"the fuse ({usable} A per phase after the margin): {len(plan.zeroed)} of them get 0 A "
        "while the meter is stale, in rotation"
    ]
