"""The report of `python -m bench.web_page`: Markdown for results/web-page.md and a
snippet for the README's Benchmarks section."""

from __future__ import annotations

from typing import Any

__all__ = ["TARGETS", "readme_snippet", "render"]

Json = dict[str, Any]

TARGETS = {
    "gzip_bytes": 150_000,  # page shell and libraries, gzip -9 (1 KB = 1000 bytes)
    "fmp_ms": 1000.0,  # first meaningful paint, cold cache, every load
    "change_ms": 2000.0,  # a change on an open page, every change
    "page_pct": 1.0,  # service CPU per open idle page, % of one core
}


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _kb(n: float) -> str:
    return f"{n / 1000:.1f}"


def _pair(m: Json) -> str:
    return f"{m['median']} / {m['max']}" if m["n"] else "n/a"


def _received(r: Json) -> str:
    got = r.get("per_page_received")
    if not got:
        return "n/a"
    sizes = got.get("bytes_per_s_by_type", {})
    kinds = ", ".join(
        f"{k} {v:g} ({sizes.get(k, 0):,} B)" for k, v in sorted(got["messages_per_s"].items())
    )
    wire = got.get("wire_bytes_per_s")
    on_wire = f"; over the wire {wire:,} B/s" if wire is not None else ""
    return f"{kinds}; {got['bytes_per_s']:,} B/s in all{on_wire}"


def summary_rows(results: Json) -> list[tuple[str, str, str]]:
    """(measure, value, target) for the summary table."""
    b, v, c, cost = results["bytes"], results["views"], results["change"], results["cost"]
    idle = [w["cpu_pct"] for w in results["windows"] if w["pages"] == 0]
    rows = [
        (
            f"page and libraries as loaded, gzip -9 (KB; raw; {len(v['files'])} files)",
            f"{_kb(b['loaded']['gzip'])} ({_kb(b['loaded']['raw'])} raw)",
            f"< {_kb(TARGETS['gzip_bytes'])}: {_met(b['target_met'])}",
        ),
        (
            "a cold load over the wire, as served (gzip; KB)",
            _kb(v["bytes_over_the_wire"]),
            "",
        ),
        (
            "the live socket's snapshot (KB)",
            _kb(v["snapshot_bytes"] or 0),
            "",
        ),
        (
            f"first meaningful paint, cold cache, median / max of {v['view']['count']} (ms)",
            _pair(v["first_meaningful_paint_ms"]),
            f"< {TARGETS['fmp_ms']:g}: {_met(v['fmp_target_met'])}",
        ),
        ("first contentful paint, median / max (ms)", _pair(v["fcp_ms"]), ""),
        (
            f"a status change shown on an open page ({c['view']} view), median / max of "
            f"{c['shown_ms']['n']} (ms)",
            _pair(c["shown_ms"]) + (f", {c['missed']} missed" if c["missed"] else ""),
            f"< {TARGETS['change_ms']:g}: {_met(c['target_met'])}",
        ),
        (
            "service CPU with no page open, first / last window (% of one core)",
            " / ".join(f"{x:.2f}" for x in idle),
            "",
        ),
    ]
    for o in cost["open"]:
        ok = o["per_page_pct"] < TARGETS["page_pct"]
        if o["pages"] == 1:
            label = "one open idle page: service CPU (% of one core; event loop thread)"
            value = f"{o['per_page_pct']:.2f} ({o['per_page_loop_pct']:.2f})"
        else:
            label = f"{o['pages']} open idle pages: service CPU together / each (% of one core)"
            value = f"{o['service_cpu_pct']:.2f} / {o['per_page_pct']:.2f}"
        rows.append((label, value, f"< {TARGETS['page_pct']:g} each: {_met(ok)}"))
    rows += [
        (
            "a page view, cold cache: service CPU (ms); a login (scrypt) adds",
            f"{v['view']['cpu_ms_each']}; {v['login']['cpu_ms_each']}",
            "",
        ),
        (
            "what an open page receives, per second (messages, their bytes as read; "
            "as sent, permessage-deflate)",
            _received(next(w for w in results["windows"] if w["pages"])),
            "",
        ),
    ]
    return rows


def render(info: Json, results: Json) -> str:
    """The results as Markdown."""
    lines = ["# The technician's page", "", *(f"- {k}: {v}" for k, v in info.items()), ""]
    warm = results["warmup"]
    why = ", ".join(f"{k} {v}" for k, v in sorted(warm["limited_by"].items()))
    lines += [
        f"Site steady (normal state, every charger holding a lease, none probing) "
        f"{warm['seconds']} s after the last session started: "
        f"{'yes' if warm['steady'] else '**no**'}; chargers limited by: {why}.",
        "",
        "| measure | value | target |",
        "|---|--:|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in summary_rows(results)),
        "",
        "## CPU windows",
        "",
        "| pages open | s | service CPU (% of one core) | event loop thread (%) | RSS (MB) | "
        "one page receives (messages/s by type) |",
        "|--:|--:|--:|--:|--:|---|",
    ]
    for w in results["windows"]:
        lines.append(
            f"| {w['pages']} | {w['seconds']} | {w['cpu_pct']:.2f} | {w['loop_pct']:.2f} | "
            f"{w['rss_mb']} | {_received(w)} |"
        )
    cost = results["cost"]
    v = results["views"]
    lines += [
        "",
        "What limited the chargers as each window started: "
        + "; ".join(
            ", ".join(f"{k} {n}" for k, n in sorted(w["limited_by_at_start"].items()))
            for w in results["windows"]
        )
        + ".",
        "",
        f"A page's cost is a window's CPU minus the mean of the windows without a page "
        f"({cost['idle_pct']:.2f} %; they differ by {cost['idle_spread_pct']:.2f}, the noise "
        "between windows), divided by the pages open.",
        "",
        "## Page views",
        "",
        f"{v['view']['count']} cold loads one after another (each a fresh context with "
        f"the session cookie and an empty cache) took {v['view']['seconds']} s "
        f"and {v['view']['cpu_ms']} ms of the service's CPU, of which "
        f"{v['view']['idle_share_ms']} ms is the idle rate over that time: "
        f"**{v['view']['cpu_ms_each']} ms per view**. {v['login']['count']} logins alone "
        f"(`POST /api/session`): {v['login']['cpu_ms_each']} ms each, so a view that starts "
        f"with the login costs {v['view_with_login_cpu_ms']} ms. Files fetched: "
        + ", ".join(f"`{f}`" for f in v["files"])
        + ".",
        "",
        "| ms from navigation start | median | max |",
        "|---|--:|--:|",
        *(
            f"| {label} | {v[key]['median']} | {v[key]['max']} |"
            for label, key in (
                ("first contentful paint", "fcp_ms"),
                ("overview shows live data (DOM)", "live_dom_ms"),
                ("… the frame after (first meaningful paint)", "first_meaningful_paint_ms"),
            )
        ),
        "",
        "## A change reaching an open page",
        "",
        "From just before the charger sends its StatusNotification to the page's DOM "
        "showing the new status, and to the animation frame after (ms):",
        "",
        "| | median | max |",
        "|---|--:|--:|",
    ]
    c = results["change"]
    for label, key in (
        ("the edge answered the charger", "answered_ms"),
        ("the DOM shows it", "dom_ms"),
        ("the frame after", "shown_ms"),
    ):
        lines.append(f"| {label} | {c[key]['median']} | {c[key]['max']} |")
    b = results["bytes"]
    lines += [
        "",
        "## Static files",
        "",
        "| file | raw (bytes) | gzip -9 (bytes) | loaded by the page |",
        "|---|--:|--:|---|",
        *(
            f"| `{f['file']}` | {f['raw']:,} | {f['gzip']:,} | {'yes' if f['loaded'] else ''} |"
            for f in b["files"]
        ),
        f"| loaded by the page | {b['loaded']['raw']:,} | {b['loaded']['gzip']:,} | |",
        f"| every file | {b['all']['raw']:,} | {b['all']['gzip']:,} | |",
        "",
        f"edge-csms stopped in {results['edge']['stop_s']} s (exit code "
        f"{results['edge']['exit_code']}); it logged {results['edge']['warnings_logged']} "
        f"warnings and {results['edge']['errors_logged']} errors.",
        "",
    ]
    return "\n".join(lines)


def readme_snippet(info: Json, results: Json) -> str:
    """A short paragraph and a table for README.md's Benchmarks section."""
    lines = [
        "### The technician's page",
        "",
        f"`{info['command']}` runs edge-csms in its own process with a simulated site "
        f"({info['site']}) and opens the page in Debian's headless Chromium "
        f"({info['chromium']}) through Playwright, each load in a fresh context (an empty "
        "cache). The service's CPU comes from /proc for its pid; a page's cost is the "
        "difference with no page open. Measured "
        f"{info['date']} on {info['machine']} ({info['cpu']}), not on a Pi; the full table "
        "is in `bench/results/web-page.md`.",
        "",
        "| measure | value | target |",
        "|---|--:|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in summary_rows(results)),
        "",
    ]
    return "\n".join(lines)
