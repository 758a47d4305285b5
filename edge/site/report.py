"""What the site controller shows: `GET /api/site` and the `edge_site_*` metrics."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from edge.times import epoch_text, format_time, to_epoch

if TYPE_CHECKING:
    from edge.site.controller import SiteController

__all__ = ["register_site_metrics", "site_snapshot"]


def _triple(values: Iterable[float]) -> list[float]:
    return [round(v, 2) for v in values]


def site_snapshot(site: SiteController) -> dict[str, Any]:
    """The site as `GET /api/site` shows it."""
    now = to_epoch(site.svc.now())
    mono = site.monotonic()
    reading = site.reading
    plan = site.plan
    allocation = plan.allocation if plan is not None else None
    waiting = {cid for cid, _ in allocation.waiting} if allocation else set()
    meter: dict[str, Any] = {
        "driver": site.meter_config.driver,
        "transport": site.meter_config.transport,
        "pollInterval": site.meter_config.poll_interval,
        "staleAfter": site.meter_config.stale_after,
        "reading": None,
        "ageSeconds": None,
        "stale": True,
        "lastError": site.meter_error,
        "readsOk": site.reads_ok,
        "readsFailed": site.reads_failed,
    }
    if reading is not None:
        age = reading.age(mono)
        meter.update(
            reading={
                "takenAt": format_time(reading.taken_at),
                "currentA": _triple(reading.current_a),
                "voltageV": _triple(reading.voltage_v),
                "powerW": _triple(reading.power_w),
                "totalPowerW": round(reading.total_power_w, 1),
                "importEnergyWh": reading.import_energy_wh,
                "exportEnergyWh": reading.export_energy_wh,
            },
            ageSeconds=round(age, 3),
            stale=age > site.meter_config.stale_after,
        )
    chargers = []
    for cid, control in sorted(site.controls.items()):
        strategy = control.strategy
        draw = control.draw_a(now)
        chargers.append(
            {
                "chargerId": cid,
                "connected": site.sessions.get(cid) is not None,
                "phases": "".join(f"L{p + 1}" for p in control.wiring),
                "evPhases": control.ev_phases,
                "transactions": sorted(control.transactions),
                "allocationA": control.allocation_a if not site.fallback else None,
                "targetA": control.target_a,
                "leaseA": control.lease_a,
                "leaseExpires": epoch_text(control.valid_to),
                "leaseActive": control.valid_to is not None and control.valid_to > now,
                "safeA": plan.safe.get(cid) if plan is not None else None,
                "safeInstalledA": control.safe_a,
                "drawnA": _triple(draw) if draw is not None else None,
                "clockBehindS": (
                    None if (offset := control.clock_behind_s()) is None else round(offset, 1)
                ),
                "waiting": cid in waiting,
                "capA": control.cap_a,
                "strategy": strategy.describe() if strategy is not None else None,
                "controllable": strategy is not None,
                "quirks": list(control.quirks),
                "lastError": control.last_error,
            }
        )
    return {
        "enabled": True,
        "state": "fallback" if site.fallback else ("starting" if plan is None else "normal"),
        "fallback": {
            "active": site.fallback,
            "since": epoch_text(site.fallback_since),
            "reason": (site.meter_error or "no valid reading") if site.fallback else None,
        },
        "meter": meter,
        "limits": {
            "maxCurrentA": list(site.site.max_current),
            "marginA": site.site.margin,
            "fallbackCurrentA": site.site.fallback_current,
            "leaseTime": site.site.lease_time,
            "capacityA": _triple(allocation.capacity_a) if allocation else None,
            "headroomA": _triple(allocation.headroom_a) if allocation else None,
            "fallbackFits": plan.safe_fits if plan is not None else None,
            "fallbackZeroed": list(plan.zeroed) if plan is not None else [],
        },
        "chargers": chargers,
        "waiting": [cid for cid, _ in allocation.waiting] if allocation else [],
        "notes": list(allocation.notes) if allocation else [],
        "cycles": site.cycles,
        "cycleCpuMs": round(site.cycle_cpu_s * 1000, 3),
        "cycleCpuMeanMs": round(site.cycle_cpu_total_s * 1000 / max(1, site.cycles), 3),
    }


def register_site_metrics(site: SiteController) -> None:
    m = site.svc.metrics
    m.describe_counter("edge_site_meter_errors_total", "Failed grid meter reads")
    m.describe_counter("edge_site_leases_sent_total", "Lease profiles accepted, by reason")
    m.gauge(
        "edge_site_fallback",
        "1 while the grid meter is stale and chargers are at their safe values",
        lambda: [((), 1.0 if site.fallback else 0.0)],
    )
    m.gauge(
        "edge_site_meter_age_seconds",
        "Age of the latest valid grid meter reading",
        lambda: [] if site.reading is None else [((), site.reading.age(site.monotonic()))],
    )
    m.gauge(
        "edge_site_grid_current_amperes",
        "Grid current per phase at the latest reading (import positive)",
        lambda: (
            []
            if site.reading is None
            else [((("phase", f"L{p + 1}"),), site.reading.current_a[p]) for p in range(3)]
        ),
    )
    m.gauge(
        "edge_site_allocated_amperes",
        "Current allocated to each charger (A per phase)",
        lambda: [
            ((("charger", cid),), c.target_a)
            for cid, c in sorted(site.controls.items())
            if c.target_a is not None
        ],
    )
