"""Counters and gauges rendered in the Prometheus text exposition format.

Hand-written rather than prometheus_client: a handful of series, no threads,
and one dependency fewer on the Pi.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

__all__ = ["Metrics"]

LabelSet = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: LabelSet) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


class Metrics:
    """A registry of counters (monotonic) and gauges (sampled when rendered)."""

    def __init__(self) -> None:
        self._help: dict[str, tuple[str, str]] = {}
        self._counters: dict[str, dict[LabelSet, float]] = defaultdict(dict)
        self._gauges: dict[str, Callable[[], Iterable[tuple[LabelSet, float]]]] = {}

    def describe_counter(self, name: str, text: str) -> None:
        self._help[name] = ("counter", text)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        series = self._counters[name]
        series[key] = series.get(key, 0.0) + amount

    def value(self, name: str, **labels: str) -> float:
        return self._counters.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def labels_seen(self, name: str, label: str) -> set[str]:
        """The values `label` has taken in the counter `name` so far."""
        return {v for labels in self._counters.get(name, {}) for k, v in labels if k == label}

    def gauge(
        self, name: str, text: str, sample: Callable[[], Iterable[tuple[LabelSet, float]]]
    ) -> None:
        """Register a gauge whose samples are computed at render time."""
        self._help[name] = ("gauge", text)
        self._gauges[name] = sample

    def render(self) -> str:
        lines: list[str] = []
        names = sorted(set(self._counters) | set(self._gauges))
        for name in names:
            kind, text = self._help.get(name, ("counter", name))
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")
            if name in self._gauges:
                samples: Iterable[tuple[LabelSet, float]] = self._gauges[name]()
            else:
                samples = sorted(self._counters[name].items())
            for labels, value in samples:
                lines.append(f"{name}{_labels(labels)} {value:g}")
        return "\n".join(lines) + "\n"
