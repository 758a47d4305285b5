"""What the site controller shows: `GET /api/site` and the `edge_site_*` metrics.

Rendered from `SiteStatistics` snapshots (`SiteController.statistics()`), never from
the controller's live state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from edge.metrics import Metrics
from edge.site.limits import limited_by
from edge.site.statistics import ChargerStatistics, SiteStatistics
from edge.times import epoch_text, format_time

__all__ = ["charger_json", "register_site_metrics", "site_json"]

Json = dict[str, Any]


def _triple(values: Iterable[float]) -> list[float]:
    return [round(v, 2) for v in values]


def charger_json(c: ChargerStatistics, site: SiteStatistics) -> Json:
    """One charger's part of `GET /api/site` (also `GET /api/chargers/{id}/site`)."""
    return {
        "chargerId": c.charger_id,
        "connected": c.connected,
        "phases": "".join(f"L{p + 1}" for p in c.wiring),
        "evPhases": c.ev_phases,
        "transactions": list(c.transactions),
        "allocationA": c.allocation_a,
        "targetA": c.target_a,
        "leaseA": c.lease_a,
        "leaseExpires": epoch_text(c.lease_expires),
        "leaseActive": c.lease_active,
        "safeA": c.safe_a,
        "safeInstalledA": c.safe_installed_a,
        "drawnA": _triple(c.drawn_a) if c.drawn_a is not None else None,
        "clockBehindS": None if c.clock_behind_s is None else round(c.clock_behind_s, 1),
        "waiting": c.waiting,
        "capA": c.cap_a,
        "operatorCapA": c.operator_cap_a,
        "cloudCapA": c.cloud_cap_a,
        "strategy": c.strategy,
        "controllable": c.controllable,
        "quirks": list(c.quirks),
        "lastError": c.last_error,
        "pauses": c.pauses,
        "probing": c.probing,
        "runningSince": epoch_text(c.running_since),
        "pausedSince": epoch_text(c.paused_since),
        "minA": c.min_a,
        "maxA": c.max_a,
        "usedPhases": [f"L{p + 1}" for p in c.used_phases],
        "limitedBy": limited_by(c, fallback=site.fallback, headroom_a=site.headroom_a),
    }


def site_json(stats: SiteStatistics) -> Json:
    """The site as `GET /api/site` shows it."""
    m = stats.meter
    meter: Json = {
        "driver": m.driver,
        "transport": m.transport,
        "pollInterval": m.poll_interval,
        "staleAfter": m.stale_after,
        "reading": None,
        "ageSeconds": None,
        "stale": True,
        "lastError": m.last_error,
        "readsOk": m.reads_ok,
        "readsFailed": m.reads_failed,
    }
    reading = m.reading
    if reading is not None and m.age_s is not None:
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
            ageSeconds=round(m.age_s, 3),
            stale=m.age_s > m.stale_after,
        )
    return {
        "enabled": True,
        "state": stats.state,
        "fallback": {
            "active": stats.fallback,
            "since": epoch_text(stats.fallback_since),
            "reason": stats.fallback_reason,
        },
        "meter": meter,
        "limits": {
            "maxCurrentA": list(stats.max_current_a),
            "marginA": stats.margin_a,
            "fallbackCurrentA": stats.fallback_current_a,
            "leaseTime": stats.lease_time,
            "nonEvLoadA": _triple(stats.house_a) if stats.house_a else None,
            "capacityA": _triple(stats.capacity_a) if stats.capacity_a else None,
            "headroomA": _triple(stats.headroom_a) if stats.headroom_a else None,
            "fallbackFits": stats.fallback_fits,
            "fallbackZeroed": list(stats.fallback_zeroed),
        },
        "chargers": [charger_json(c, stats) for c in stats.chargers],
        "waiting": list(stats.waiting),
        "notes": list(stats.notes),
        "cycles": stats.cycles,
        "cycleCpuMs": round(stats.cycle_cpu_s * 1000, 3),
        "cycleCpuMeanMs": round(stats.cycle_cpu_total_s * 1000 / max(1, stats.cycles), 3),
    }


def register_site_metrics(metrics: Metrics, statistics: Callable[[], SiteStatistics]) -> None:
    """The `edge_site_*` metrics, read from a fresh snapshot at each scrape."""
    m = metrics
    m.describe_counter("edge_site_meter_errors_total", "Failed grid meter reads")
    m.describe_counter("edge_site_leases_sent_total", "Lease profiles accepted, by reason")
    m.gauge(
        "edge_site_fallback",
        "1 while the grid meter is stale and chargers are at their safe values",
        lambda: [((), 1.0 if statistics().fallback else 0.0)],
    )

    def meter_age() -> list[tuple[tuple[tuple[str, str], ...], float]]:
        age = statistics().meter.age_s
        return [] if age is None else [((), age)]

    m.gauge("edge_site_meter_age_seconds", "Age of the latest valid grid meter reading", meter_age)

    def grid_current() -> list[tuple[tuple[tuple[str, str], ...], float]]:
        reading = statistics().meter.reading
        if reading is None:
            return []
        return [((("phase", f"L{p + 1}"),), reading.current_a[p]) for p in range(3)]

    m.gauge(
        "edge_site_grid_current_amperes",
        "Grid current per phase at the latest reading (import positive)",
        grid_current,
    )
    m.gauge(
        "edge_site_allocated_amperes",
        "Current allocated to each charger (A per phase)",
        lambda: [
            ((("charger", c.charger_id),), c.target_a)
            for c in statistics().chargers
            if c.target_a is not None
        ],
    )
