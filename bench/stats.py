"""Client-side measurements: per-action latencies, errors, connection timings."""

from __future__ import annotations

from array import array
from collections import Counter
from typing import Any

__all__ = ["ACTIONS", "TX_ACTIONS", "Stats", "merge", "percentile"]

ACTIONS = (
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "Authorize",
    "StartTransaction",
    "MeterValues",
    "StopTransaction",
)
TX_ACTIONS = frozenset({"StartTransaction", "MeterValues", "StopTransaction"})


def percentile(sorted_values: list[float] | array[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of an already sorted sequence."""
    n = len(sorted_values)
    if n == 0:
        return None
    rank = max(1, min(n, int(q / 100.0 * n + 0.999999)))
    return float(sorted_values[rank - 1])


class Stats:
    """Outcomes of one worker's calls. Latencies in ms, for answers inside the window."""

    def __init__(self) -> None:
        self.w0 = float("inf")
        self.w1 = float("-inf")
        self.latency: dict[str, array[float]] = {a: array("d") for a in ACTIONS}
        self.errors: Counter[str] = Counter()  # "Action:kind", whole run
        self.window_errors = 0
        self.late_sends = 0
        self.sends = 0
        self.connect_failures: Counter[str] = Counter()
        self.connected_at: array[float] = array("d")  # s after t_go (storm) or start (warm-up)
        self.booted_at: array[float] = array("d")

    def record(self, action: str, t_sent: float, t_done: float, error: str | None) -> None:
        if error is not None:
            self.errors[f"{action}:{error}"] += 1
            if self.w0 <= t_done <= self.w1:
                self.window_errors += 1
        elif self.w0 <= t_done <= self.w1:
            self.latency[action].append((t_done - t_sent) * 1000.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency": {a: v for a, v in self.latency.items()},
            "errors": dict(self.errors),
            "window_errors": self.window_errors,
            "late_sends": self.late_sends,
            "sends": self.sends,
            "connect_failures": dict(self.connect_failures),
            "connected_at": self.connected_at,
            "booted_at": self.booted_at,
        }


def merge(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine the `Stats.to_dict()` of several workers."""
    out: dict[str, Any] = {
        "latency": {a: array("d") for a in ACTIONS},
        "errors": Counter(),
        "connect_failures": Counter(),
        "connected_at": array("d"),
        "booted_at": array("d"),
        "window_errors": 0,
        "late_sends": 0,
        "sends": 0,
    }
    for s in stats:
        for a, values in s["latency"].items():
            out["latency"][a].extend(values)
        for key in ("errors", "connect_failures"):
            out[key].update(s[key])
        for key in ("connected_at", "booted_at"):
            out[key].extend(s[key])
        for key in ("window_errors", "late_sends", "sends"):
            out[key] += s[key]
    out["errors"] = dict(out["errors"])
    out["connect_failures"] = dict(out["connect_failures"])
    return out
