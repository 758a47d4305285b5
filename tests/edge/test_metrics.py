"""Prometheus text rendering."""

from __future__ import annotations

from edge.metrics import Metrics


def test_counters_and_gauges_render_in_text_format() -> None:
    """Counters accumulate per label set; gauges are sampled at render time; labels escaped."""
    m = Metrics()
    m.describe_counter("edge_calls_total", "Calls")
    m.inc("edge_calls_total", action="Heartbeat")
    m.inc("edge_calls_total", 2, action="Heartbeat")
    m.inc("edge_calls_total", action='Odd"name')
    m.gauge("edge_up", "Up", lambda: [((), 1.0)])
    text = m.render()
    assert "# TYPE edge_calls_total counter" in text
    assert 'edge_calls_total{action="Heartbeat"} 3' in text
    assert 'edge_calls_total{action="Odd\\"name"} 1' in text
    assert "# TYPE edge_up gauge\nedge_up 1" in text
    assert m.value("edge_calls_total", action="Heartbeat") == 3
