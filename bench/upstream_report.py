"""The cloud link benchmark's report: its profile summary, tables and README snippet.

Pure formatting of the results `bench.upstream` measured (no I/O but reading a profile).
"""

from __future__ import annotations

import json
import pstats
from pathlib import Path
from typing import Any

from edge.upstream.link import BATCH

__all__ = ["DRAIN_TARGET", "OVERHEAD_TARGET", "Json", "profile_summary", "readme_snippet", "render"]

Json = dict[str, Any]
DRAIN_TARGET = 500.0  # messages/s
OVERHEAD_TARGET = 1.5  # CPU and bytes per charger message, link on / off


# --- the profile --------------------------------------------------------------------------

FOCUS = (
    ("edge/upstream/link.py", "_serve"),
    ("edge/upstream/link.py", "_send_next"),
    ("edge/store/journal.py", "outbox_pending"),
    ("edge/store/_outbox.py", "pending"),
    ("edge/upstream/rules.py", "next_to_send"),
    ("edge/store/journal.py", "cloud_transaction"),
    ("edge/upstream/rules.py", "to_cloud"),
    ("edge/upstream/link.py", "_call"),
    ("edge/upstream/link.py", "_flush"),
    ("edge/upstream/link.py", "_acknowledged"),
    ("edge/upstream/link.py", "_read"),
    ("edge/features/core.py", "meter_values"),
    ("edge/store/journal.py", "add_meter_samples"),
)


def _where(key: tuple[str, int, str]) -> str:
    path, line, name = key
    if path == "~":
        return name
    if path == "<string>" and name == "validate":
        return "validate (a fastjsonschema validator, generated code)"
    parts = Path(path).parts
    for root in ("edge", "profiles", "drivers", "websockets", "asyncio", "sqlite3", "aiohttp"):
        if root in parts:
            return f"{'/'.join(parts[parts.index(root) :])}:{line}({name})"
    return f"{Path(path).name}:{line}({name})"


def profile_summary(path: Path, top: int = 15) -> Json:
    """Shares of the profiled CPU of the event loop thread: the link's and the outbox's
    functions with what they call (for a coroutine, "calls" counts its resumptions),
    and the `top` functions by their own time."""
    table: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    total = sum(value[2] for value in table.values())

    def share(seconds: float) -> float | None:
        return round(seconds / total * 100, 1) if total else None

    focus: Json = {}
    for file, name in FOCUS:
        keys = [k for k in table if k[0].endswith(file) and k[2] == name]
        focus[f"{file}:{name}"] = {
            "calls": sum(table[k][1] for k in keys),
            "share_pct": share(sum(table[k][3] for k in keys)),
        }
    own = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:top]
    return {
        "profiled_cpu_s": round(total, 2),
        "focus": focus,
        "top_own_time": [
            {"function": _where(key), "calls": value[1], "share_pct": share(value[2])}
            for key, value in own
        ],
    }


# --- report -------------------------------------------------------------------------------


def _met(ok: bool | None) -> str:
    return "met" if ok else "**not met**"


def _n(value: Any) -> str:
    """A number with thousands separators; "-" for none."""
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,}"
    return f"{int(value):,}"


def _outage_rows(r: Json) -> list[tuple[str, str]]:
    fill, drain, box, check = r["fill"], r["drain"], r["outbox"], r["check"]
    after = r["outbox_after"]
    trips = fill["charger_round_trip_ms"]
    outbox_mb = (box["table_bytes"] + box["index_bytes"]) / 2**20
    return [
        (
            "chargers x sessions x MeterValues per session",
            f"{r['chargers']} x {r['transactions_per_charger']} x "
            f"{r['meter_values_per_transaction']}",
        ),
        (
            "messages queued with the cloud down (of them MeterValues)",
            f"{_n(fill['messages'])} ({_n(fill['meter_values'])})",
        ),
        (
            "… sent in (s); charger round trip p50 / p99 (ms)",
            f"{fill['seconds']}; {trips['p50']} / {trips['p99']}",
        ),
        ("… edge CPU per message (µs)", _n(fill["edge_cpu_us_per_message"])),
        ("… **bytes written per message while queueing**", _n(fill["bytes_written_per_message"])),
        ("**peak RSS during the outage** (MB)", _n(fill["peak_rss_mb"])),
        (
            "**outbox on disk**: rows; table + index (MB); bytes per row",
            f"{_n(box['rows'])}; {outbox_mb:.1f}; {_n(box['bytes_per_row'])}",
        ),
        (
            "data directory growth during the outage (MB)",
            f"{fill['data_dir_growth_bytes'] / 2**20:.1f}",
        ),
        (
            "cloud back → every link reconnected, median / last (s)",
            f"{r['reconnect']['median_s']} / {r['reconnect']['last_s']}",
        ),
        (
            "messages drained: CALLs answered by the cloud (outbox rows cleared)",
            f"{_n(drain['messages'])} ({_n(drain['outbox_rows_cleared'])})",
        ),
        (
            f"**drain throughput** (msg/s; target ≥ {DRAIN_TARGET:g})",
            f"{_n(drain['messages_per_s'])}: {_met(drain['target_met'])}",
        ),
        ("**time to drain** (s, from the first Boot accepted)", _n(drain["seconds"])),
        (
            "chargers served during the drain: Heartbeat round trip p50 / p99 (ms; p99 < 10)",
            f"{drain['charger_p50_ms']} / {drain['charger_p99_ms']}: "
            f"{_met(drain['charger_p99_target_met'])}",
        ),
        ("**edge CPU per message drained** (µs)", _n(drain["edge_cpu_us_per_message"])),
        (
            "… of it the event loop thread / the other threads (µs)",
            f"{_n(drain['event_loop_us_per_message'])} / "
            f"{_n(drain['other_threads_us_per_message'])}",
        ),
        ("… edge CPU during the drain, % of one core", str(drain["edge_cpu_pct"])),
        (
            "… cloud + chargers process CPU during the drain, % of one core",
            str(drain["cloud_and_chargers_cpu_pct"]),
        ),
        ("**bytes written per message drained**", _n(drain["bytes_written_per_message"])),
        (
            "after the drain: outbox table + index (MB); data directory (MB)",
            f"{(after['table_bytes'] + after['index_bytes']) / 2**20:.1f}; "
            f"{r['data_dir_bytes_after'] / 2**20:.1f}",
        ),
        (
            "**peak RSS during the drain** (MB; largest sample)",
            f"{_n(drain['peak_rss_mb'])} ({drain['peak_rss_sampled_mb']})",
        ),
        (
            f"`_outbox.pending` CPU per read: {r['read_cost']['batch']} rows / 1 row (µs)",
            f"{r['read_cost']['pending_batch_us']} / {r['read_cost']['pending_1_us']}",
        ),
        (
            "every transaction message once, in order; outbox empty after",
            f"{'yes' if check['ok'] else '**NO**'} ({_n(check['transaction_messages_received'])}"
            f" of {_n(check['transaction_messages_sent'])}; statuses: "
            f"{_n(check['statuses_received'])} of {_n(check['statuses_sent'])}, offline ones "
            "coalesced)",
        ),
    ]


def _outage_notes(r: Json) -> list[str]:
    drain, cost = r["drain"], r["read_cost"]
    per_message = drain["edge_cpu_us_per_message"]
    reconnect = r["reconnect"]
    lines = [
        f"The edge used {drain['edge_cpu_pct']} % of one core during the drain and the "
        f"cloud's and chargers' process {drain['cloud_and_chargers_cpu_pct']} %; at "
        f"{per_message} µs per message the edge's own CPU would allow about "
        f"{1e6 / max(per_message, 1):,.0f} messages/s on one core.",
        "",
        f"The cloud was down for {reconnect['cloud_down_s']} s, so the links' back-off had "
        f"grown to {reconnect['last_s']} s at most; after a long outage it is up to 60 s "
        "(with full jitter), which comes before the time to drain.",
        "",
        f"Reading the outbox: the link reads up to {BATCH} rows at a time and sends them "
        f"from memory (`edge.upstream.link.BATCH`). On the filled outbox one such read costs "
        f"{cost['pending_batch_us']} µs of CPU ({cost['rows_per_read']} rows), one of 1 row "
        f"{cost['pending_1_us']} µs; `next_to_send` over the rows {cost['next_to_send_us']} "
        f"µs, `to_cloud` {cost['to_cloud_us']} µs (timed in the benchmark's process).",
    ]
    if r["batch"] == BATCH:
        share = cost["pending_batch_us"] / BATCH / max(per_message, 1) * 100
        lines[-1] += f" Spread over its {BATCH} rows: {share:.0f} % of the CPU per message drained."
    else:
        lines[-1] += (
            f" **This run's link read {r['batch']} row(s) per message** (`--batch`), and"
            f" coalesced statuses only within them."
        )
    return [*lines, ""]


def _profile_lines(profile: Json) -> list[str]:
    lines = [
        f"The event loop thread, {profile['profiled_cpu_s']} CPU s profiled "
        "(cProfile slows every Python call down, C calls such as SQLite's much less: read "
        "the shares as rough).",
        "",
        "| function, with what it calls | calls (coroutines: resumptions) | share |",
        "|---|--:|--:|",
        *(
            f"| `{name}` | {_n(f['calls'])} | {f['share_pct']} % |"
            for name, f in profile["focus"].items()
        ),
        "",
        "| function, own time | calls | share |",
        "|---|--:|--:|",
        *(
            f"| `{f['function']}` | {_n(f['calls'])} | {f['share_pct']} % |"
            for f in profile["top_own_time"]
        ),
    ]
    return [*lines, ""]


def _online_rows(off: Json, on: Json, ratio: Json) -> list[tuple[str, str, str, str]]:
    def trips(r: Json) -> str:
        return f"{r['charger_round_trip_ms']['p50']} / {r['charger_round_trip_ms']['p99']}"

    lag = on.get("cloud_lag_ms")
    return [
        ("charger MeterValues in the window", _n(off["messages"]), _n(on["messages"]), ""),
        (
            "**edge CPU per charger message** (µs)",
            _n(off["edge_cpu_us_per_message"]),
            _n(on["edge_cpu_us_per_message"]),
            f"{ratio['cpu_ratio']}x: {_met(ratio['cpu_target_met'])}",
        ),
        (
            "**bytes written per charger message**",
            _n(off["bytes_written_per_message"]),
            _n(on["bytes_written_per_message"]),
            f"{ratio['bytes_ratio']}x: {_met(ratio['bytes_target_met'])}",
        ),
        ("edge CPU, % of one core", _n(off["edge_cpu_pct"]), _n(on["edge_cpu_pct"]), ""),
        (
            "… of it the event loop thread (µs)",
            _n(off["event_loop_us_per_message"]),
            _n(on["event_loop_us_per_message"]),
            "",
        ),
        (
            "… of it the other threads: journal writer, checkpoints (µs)",
            _n(off["other_threads_us_per_message"]),
            _n(on["other_threads_us_per_message"]),
            "",
        ),
        ("peak RSS (MB)", _n(off["peak_rss_mb"]), _n(on["peak_rss_mb"]), ""),
        ("charger round trip p50 / p99 (ms)", trips(off), trips(on), ""),
        (
            "charger's answer → the cloud has it, p50 / p99 (ms)",
            "",
            f"{lag['p50']} / {lag['p99']}" if lag else "-",
            "",
        ),
    ]


def _online_notes(off: Json, on: Json) -> list[str]:
    loop = on["event_loop_us_per_message"] - off["event_loop_us_per_message"]
    others = on["other_threads_us_per_message"] - off["other_threads_us_per_message"]
    written = on["bytes_written_per_message"] - off["bytes_written_per_message"]
    return [
        f"The link adds {loop:+,} µs per message on the event loop thread (the CALL to the "
        "cloud: the row handed over from its commit, the frame out, the answer in, the ack "
        f"submitted) and {others:+,} µs on the other threads (the ack rides in the "
        f"journal's next commit, on disk before the next row goes), and {written:+,} bytes "
        "written per message: the outbox row in the commit that records the message, and "
        "its deletion in a later one.",
        "",
    ]


def render(info: Json, results: Json) -> str:
    """The results as Markdown."""
    lines = ["# Cloud link benchmark", "", *(f"- {k}: {v}" for k, v in info.items()), ""]
    if "outage" in results:
        r = results["outage"]
        lines += ["## Outage and replay", "", "| | |", "|---|--:|"]
        lines += [f"| {label} | {value} |" for label, value in _outage_rows(r)]
        lines += [""]
        if r["check"]["first_problems"]:
            lines += [f"Problems: `{json.dumps(r['check']['first_problems'])}`", ""]
        lines += _outage_notes(r)
        if "focus" in r.get("profile", {}):
            lines += ["### Profile of the drain", "", *_profile_lines(r["profile"])]
    if "online" in results:
        off, on, ratio = (results["online"][k] for k in ("off", "on", "ratio"))
        lines += [
            "## Link overhead online",
            "",
            f"{off['chargers']} chargers, each in a transaction, send MeterValues every "
            f"{off['interval_s']:g} s for {off['window_s']:g} s; the cloud is up.",
            "",
            "| | `[upstream]` off | on | on / off (target ≤ 1.5x) |",
            "|---|--:|--:|--:|",
            *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in _online_rows(off, on, ratio)),
            "",
            "With the link on, every message reached the cloud once, in order: "
            f"{'yes' if on.get('check', {}).get('ok') else '**NO**'}.",
            "",
            *_online_notes(off, on),
        ]
        for key, title in (("off", "link off"), ("on", "link on")):
            profile = results["online"][key].get("profile", {})
            if "focus" in profile:
                lines += [f"### Profile online, {title}", "", *_profile_lines(profile)]
    return "\n".join(lines)


def readme_snippet(info: Json, results: Json) -> str:
    """A short paragraph and a table for README.md's Benchmarks section."""
    lines = [
        "### Cloud link",
        "",
        f"`{info['command']}` runs edge-csms in its own process against the tests' OCPP 1.6J "
        "cloud (the `ocpp` package) and simulated chargers, both in the benchmark's process; "
        "the edge's CPU, peak RSS and bytes written (`write_bytes`) come from /proc for its "
        "pid. The outage: the cloud down while every charger runs its sessions, then back "
        "(Boot Pending until every link has reconnected after its back-off, then Accepted), "
        f"and the whole outbox drained. Measured {info['date']} on {info['machine']} "
        f"({info['cpu']}); the full table is in `bench/results/upstream.md`.",
        "",
        "| measure | value | target |",
        "|---|--:|---|",
    ]
    if "outage" in results:
        r = results["outage"]
        fill, drain = r["fill"], r["drain"]
        check = r["check"]
        verdict = (
            f"every transaction message once, in order; "
            f"{_n(check['statuses_sent'] - check['statuses_received'])} of "
            f"{_n(check['statuses_sent'])} statuses coalesced"
            if check["ok"]
            else "**delivery check failed**"
        )
        lines += [
            f"| outage: {r['chargers']} chargers queue {_n(fill['messages'])} messages "
            f"({_n(fill['meter_values'])} MeterValues), then the outbox drains | {verdict} | |",
            f"| drain throughput (msg/s) | {_n(drain['messages_per_s'])} | "
            f"≥ {DRAIN_TARGET:g}: {_met(drain['target_met'])} |",
            f"| time to drain (s; before it, the links reconnect after their back-off: the "
            f"last after {r['reconnect']['last_s']} s) | {drain['seconds']} | |",
            f"| chargers served during the drain, Heartbeat round trip p50 / p99 (ms) | "
            f"{drain['charger_p50_ms']} / {drain['charger_p99_ms']} | "
            f"p99 < 10: {_met(drain['charger_p99_target_met'])} |",
            f"| edge CPU per message drained (µs) | {_n(drain['edge_cpu_us_per_message'])} | |",
            f"| bytes written per message, queueing / draining | "
            f"{_n(fill['bytes_written_per_message'])} / "
            f"{_n(drain['bytes_written_per_message'])} | |",
            f"| peak RSS, outage / drain (MB) | {fill['peak_rss_mb']} / "
            f"{_n(drain['peak_rss_mb'])} | |",
            f"| outbox on disk per message (bytes, table + index) | "
            f"{_n(r['outbox']['bytes_per_row'])} | |",
        ]
    if "online" in results:
        off, on, ratio = (results["online"][k] for k in ("off", "on", "ratio"))
        lines += [
            f"| online, {off['chargers']} chargers x MeterValues every {off['interval_s']:g} s: "
            f"edge CPU per message, link off / on (µs) | {_n(off['edge_cpu_us_per_message'])} / "
            f"{_n(on['edge_cpu_us_per_message'])} ({ratio['cpu_ratio']}x) | "
            f"≤ {OVERHEAD_TARGET}x: {_met(ratio['cpu_target_met'])} |",
            f"| … bytes written per message, link off / on | "
            f"{_n(off['bytes_written_per_message'])} / {_n(on['bytes_written_per_message'])} "
            f"({ratio['bytes_ratio']}x) | "
            f"≤ {OVERHEAD_TARGET}x: {_met(ratio['bytes_target_met'])} |",
        ]
    lines.append("")
    if "outage" in results:
        drain, cost = results["outage"]["drain"], results["outage"]["read_cost"]
        lines += [
            f"During the drain the edge used {drain['edge_cpu_pct']} % of one core and the "
            f"cloud's process {drain['cloud_and_chargers_cpu_pct']} % (the `ocpp` package): "
            "the busier process was the cloud, not the edge. The link reads the outbox "
            f"{cost['batch']} rows at a time ({cost['pending_batch_us']:.0f} µs a read) and "
            f"sends them from memory: {drain['edge_cpu_us_per_message']} µs of the edge's CPU "
            "per message drained in all.",
            "",
        ]
    if "online" in results:
        off, on = results["online"]["off"], results["online"]["on"]
        lines += [
            "Online, the link relays each message as a second OCPP round trip and acks it "
            "in the journal's next commit: "
            f"{on['event_loop_us_per_message'] - off['event_loop_us_per_message']:+,} µs on "
            f"the event loop, "
            f"{on['other_threads_us_per_message'] - off['other_threads_us_per_message']:+,} "
            "µs in the journal's threads, "
            f"{on['bytes_written_per_message'] - off['bytes_written_per_message']:+,} bytes "
            "written per message.",
            "",
        ]
    return "\n".join(lines)
