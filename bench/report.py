"""Markdown rendering of the benchmark results (side by side, with ratios)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.stats import ACTIONS

__all__ = ["render"]

Result = dict[str, Any]
Getter = Callable[[Result], Any]

LEGEND = (
    "Ratio column: **e/b** = edge-csms ÷ baseline (throughput: above 1 means edge-csms "
    "does more); **b/e** = baseline ÷ edge-csms (costs: CPU, latency, memory; above 1 means "
    "edge-csms needs less). The baseline keeps everything in memory (no durable storage); "
    "edge-csms journals every transaction message to SQLite with `synchronous=FULL` "
    "(fsync, group commit) before answering it."
)


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in sorted(value.items())) or "none"
    return str(value)


def _ratio(edge: Any, base: Any, mode: str | None) -> str:
    if mode is None or not isinstance(edge, int | float) or not isinstance(base, int | float):
        return ""
    if mode == "e/b":
        return f"{edge / base:.2f}x e/b" if base else ""
    return f"{base / edge:.2f}x b/e" if edge else ""


def _get(*keys: str) -> Getter:
    def get(r: Result) -> Any:
        value: Any = r
        for k in keys:
            if not isinstance(value, dict) or k not in value:
                return None
            value = value[k]
        return value

    return get


def _table(
    edge: Result | None, base: Result | None, rows: list[tuple[str, Getter, str | None, int]]
) -> list[str]:
    lines = ["| metric | edge-csms | ocpp baseline | ratio |", "|---|--:|--:|--:|"]
    for label, get, mode, digits in rows:
        e = get(edge) if edge else None
        b = get(base) if base else None
        if e is None and b is None:
            continue
        lines.append(f"| {label} | {_fmt(e, digits)} | {_fmt(b, digits)} | {_ratio(e, b, mode)} |")
    return lines


def _latency_rows() -> list[tuple[str, Getter, str | None, int]]:
    rows: list[tuple[str, Getter, str | None, int]] = [
        ("p50 round trip, all actions (ms)", _get("p50_ms"), "b/e", 2),
        ("p99 round trip, all actions (ms)", _get("p99_ms"), "b/e", 2),
        ("max round trip (ms)", _get("max_ms"), None, 1),
    ]
    for action in ACTIONS:
        rows.append((f"{action} p50 (ms)", _get("actions", action, "p50_ms"), "b/e", 2))
        rows.append((f"{action} p99 (ms)", _get("actions", action, "p99_ms"), "b/e", 2))
    return rows


LOAD_ROWS: list[tuple[str, Getter, str | None, int]] = [
    ("chargers connected", _get("connected"), None, 0),
    ("calls answered / s", _get("calls_per_s"), "e/b", 1),
    *_latency_rows(),
    ("server CPU ms per 1000 calls", _get("cpu_ms_per_1000"), "b/e", 1),
    ("server CPU (% of one core)", _get("server_cpu_pct"), "b/e", 1),
    ("load generator CPU (% of one core)", _get("client_cpu_pct"), None, 1),
    ("other processes' CPU (% of one core)", _get("other_cpu_pct"), None, 1),
    ("other processes' load just before (cores)", _get("others_cores_before"), None, 2),
    ("server RSS at end (MB)", _get("rss_mb"), "b/e", 1),
    ("server peak RSS (MB)", _get("peak_rss_mb"), "b/e", 1),
    ("disk write_bytes in window", _get("write_bytes"), None, 0),
    ("bytes written per transaction message", _get("bytes_per_tx_message"), None, 0),
    ("bytes written per MeterValues (upper bound)", _get("bytes_per_meter_values_upper"), None, 0),
    ("errors answered in window", _get("window_errors"), None, 0),
    ("errors (whole run)", _get("errors"), None, 0),
    ("failed handshakes", _get("connect_failures"), None, 0),
    ("open-loop sends > 100 ms late", _get("late_sends"), None, 0),
    ("server ERROR log lines", _get("server_error_lines"), None, 0),
    ("server shutdown (s)", _get("server_stop_s"), None, 2),
]

IDLE_ROWS: list[tuple[str, Getter, str | None, int]] = [
    ("chargers connected and booted", _get("connected"), None, 0),
    ("time to connect + boot all (s)", _get("connect_boot_s"), "b/e", 2),
    ("RSS before connections (MB)", _get("rss_before_mb"), "b/e", 1),
    ("RSS with all idle (MB)", _get("rss_after_mb"), "b/e", 1),
    ("peak RSS (MB)", _get("peak_rss_mb"), "b/e", 1),
    ("RSS per idle connection (KiB)", _get("rss_per_conn_kb"), "b/e", 1),
    ("server CPU to accept + boot all (s)", _get("cpu_s_connect_boot"), "b/e", 2),
    ("failed handshakes", _get("connect_failures"), None, 0),
    ("call errors", _get("errors"), None, 0),
    ("server ERROR log lines", _get("server_error_lines"), None, 0),
]

STORM_ROWS: list[tuple[str, Getter, str | None, int]] = [
    ("chargers booted before restart", _get("connected_before"), None, 0),
    ("shutdown with all connected (s)", _get("first_stop_s"), "b/e", 2),
    ("restart until listening (s)", _get("restart_s"), "b/e", 2),
    ("reconnected", _get("reconnected"), None, 0),
    ("booted after restart", _get("booted"), None, 0),
    ("time until all connected (s)", _get("all_connected_s"), "b/e", 2),
    ("time until all booted (s)", _get("all_booted_s"), "b/e", 2),
    ("boot done p50 / p99 (s after go)", lambda r: _pair(r, "boot_p50_s", "boot_p99_s"), None, 2),
    ("failed handshakes (retried)", _get("failed_handshakes"), None, 0),
    ("refused (ECONNREFUSED or HTTP error)", _get("refused"), None, 0),
    ("failures by kind", _get("connect_failures"), None, 0),
    ("call errors", _get("errors"), None, 0),
    ("server CPU during the storm (s)", _get("storm_cpu_s"), "b/e", 2),
    ("peak RSS (MB)", _get("peak_rss_mb"), "b/e", 1),
    ("server ERROR log lines", _get("server_error_lines"), None, 0),
]


def _pair(r: Result, a: str, b: str) -> str | None:
    if r.get(a) is None:
        return None
    return f"{r[a]:.2f} / {r[b]:.2f}"


def _check(value: Any, ok: Callable[[float], bool]) -> str:
    if not isinstance(value, int | float):
        return "not measured"
    return "met" if ok(value) else "**not met**"


def _summary(results: dict[str, Result], target_n: int) -> list[str]:
    def pair(name: str) -> tuple[Result, Result]:
        return results.get(f"{name}/edge", {}), results.get(f"{name}/baseline", {})

    lines = ["| target | edge-csms | ocpp baseline | ratio | goal | |", "|---|--:|--:|--:|---|---|"]

    def row(label: str, e: Any, b: Any, mode: str | None, goal: str, verdict: str) -> None:
        lines.append(
            f"| {label} | {_fmt(e)} | {_fmt(b)} | {_ratio(e, b, mode)} | {goal} | {verdict} |"
        )

    sat_e, sat_b = next(
        (pair(k[:-5]) for k in results if k.startswith("saturation") and k.endswith("/edge")),
        ({}, {}),
    )
    e, b = sat_e.get("calls_per_s"), sat_b.get("calls_per_s")
    ratio = e / b if isinstance(e, float) and isinstance(b, float) and b else None
    row(
        "saturated throughput, calls/s (closed loop)",
        e,
        b,
        "e/b",
        "≥ 4x baseline",
        _check(ratio, lambda x: x >= 4),
    )
    t_e, t_b = pair(f"open-{target_n}")
    e, b = t_e.get("cpu_ms_per_1000"), t_b.get("cpu_ms_per_1000")
    ratio = b / e if isinstance(e, float) and isinstance(b, float) and e else None
    row(
        f"CPU ms / 1000 calls, {target_n} chargers x 1 msg/s",
        e,
        b,
        "b/e",
        "≤ ¼ of baseline",
        _check(ratio, lambda x: x >= 4),
    )
    row(
        f"p99 round trip (ms), {target_n} x 1 msg/s, all actions",
        t_e.get("p99_ms"),
        t_b.get("p99_ms"),
        "b/e",
        "< 5 ms",
        _check(t_e.get("p99_ms"), lambda x: x < 5),
    )
    worst = max((v["p99_ms"] for v in t_e.get("actions", {}).values()), default=None)
    row(
        f"worst per-action p99 (ms), {target_n} x 1 msg/s",
        worst,
        max((v["p99_ms"] for v in t_b.get("actions", {}).values()), default=None),
        "b/e",
        "< 5 ms",
        _check(worst, lambda x: x < 5),
    )
    i_e, i_b = next(
        (pair(k[:-5]) for k in results if k.startswith("idle") and k.endswith("/edge")), ({}, {})
    )
    row(
        f"RSS with {i_e.get('chargers', '?')} idle chargers (MB)",
        i_e.get("rss_after_mb"),
        i_b.get("rss_after_mb"),
        "b/e",
        "< 80 MB",
        _check(i_e.get("rss_after_mb"), lambda x: x < 80),
    )
    mv = t_e.get("bytes_per_meter_values_upper")
    row(
        "disk bytes per MeterValues (upper bound)",
        mv,
        None,
        None,
        "< 4 KB (4096)",
        _check(mv, lambda x: x < 4096),
    )
    s_e, s_b = next(
        (pair(k[:-5]) for k in results if k.startswith("storm") and k.endswith("/edge")), ({}, {})
    )
    e = s_e.get("all_booted_s")
    ok = isinstance(e, float) and e <= 30 and s_e.get("refused") == 0
    row(
        f"reconnect storm: {s_e.get('chargers', '?')} booted after restart (s)",
        e,
        s_b.get("all_booted_s"),
        "b/e",
        "≤ 30 s, none refused",
        ("met" if ok else "**not met**") if s_e else "not measured",
    )
    row(
        "reconnect storm: refused handshakes",
        s_e.get("refused"),
        s_b.get("refused"),
        None,
        "0",
        _check(s_e.get("refused"), lambda x: x == 0),
    )
    return lines


def render(info: dict[str, Any], results: dict[str, Result], target_n: int) -> str:
    out = [f"# edge-csms benchmark, {info['date']}", ""]
    out += [f"- **{k}**: {v}" for k, v in info["machine"].items()]
    out += [f"- **settings**: {info['settings']}", ""]
    out += ["## Summary against the targets", "", *_summary(results, target_n), "", LEGEND, ""]
    names: list[str] = []
    for key in results:
        name = key.rsplit("/", 1)[0]
        if name not in names:
            names.append(name)
    for name in names:
        edge, base = results.get(f"{name}/edge"), results.get(f"{name}/baseline")
        first = edge or base or {}
        if name.startswith("open-"):
            rate = first.get("rate_per_charger")
            title = f"Open loop: {first.get('chargers')} chargers x {rate} msg/s"
            rows = LOAD_ROWS
        elif name.startswith("saturation"):
            title = f"Saturation: closed loop, {first.get('chargers')} connections"
            rows = LOAD_ROWS
        elif name.startswith("idle"):
            title = f"Idle RSS: {first.get('chargers')} chargers connected, booted, idle"
            rows = IDLE_ROWS
        else:
            title = f"Reconnect storm: {first.get('chargers')} chargers, server restarted"
            rows = STORM_ROWS
        out += [f"## {title}", "", *_table(edge, base, rows), ""]
        for r in (edge, base):
            if r and r.get("failure"):
                out += [f"**{r['server']} failed:** `{r['failure']}`", ""]
            if r and r.get("server_log_tail"):
                out += [f"{r['server']} log tail:", "", "```", r["server_log_tail"], "```", ""]
    return "\n".join(out)
