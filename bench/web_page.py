"""The technician's page: what it weighs, how fast it shows, what it costs the service.

    python -m bench.web_page            # 50 chargers, 60 s windows, 10 loads: ~6 minutes
    python -m bench.web_page --quick    # 50 chargers, 15 s windows, 5 loads: ~2 minutes
    python -m bench.web_page --chargers 3 --window 2 --loads 2 --changes 2 --pages 1

edge-csms runs as its own process (`python -m edge serve`, a temporary config and data
directory, everything on 127.0.0.1, a `[web] password` so a login costs what it costs on
site: one scrypt). A simulated site runs in this process (`edge.sim.site.SimSite`): a real
Modbus TCP SDM630 the edge polls every second, so the site loop runs and `/api/live`
sends a site message a second, and N `SimCharger`s on real WebSockets: 1-phase chargers
on L1, L2, L3 in turn, each charging an EV of 16 A at most (the fuse leaves each about
12 A, so the site is held, steadily, and every EV charges). Each charger sends MeterValues every
`--meter-values` s (10) and repeats its connector's StatusNotification every
`--status-every` s (60), each at its own phase, and answers the edge's
SetChargingProfile (a lease refresh per charger every 30 s). The browser is Debian's
Chromium, headless, driven by Playwright's async API in this process (as tests/web does;
never `playwright install`), each page in a fresh context (an empty cache) logged in
with the password through `POST /api/session`.

The service's CPU is utime + stime of /proc/PID/stat (every thread; 10 ms ticks), and
the event loop thread's own share from /proc/PID/task/PID/stat. Measured, in this order:

1. **bytes**: every file under edge/web/static, raw and gzip -9, and which of them a
   cold load fetches (from the page's resource timing); the target (under 150 KB,
   1 KB = 1000 bytes) is on the files the page loads. The service sends them gzipped
   (Chromium accepts gzip): "bytes over the wire" is what a cold load transfers, the
   resource timing's transferSize (headers and body as sent) summed over its files.
2. **idle, no page**: the service's CPU over `--window` s (% of one core).
3. **page views**: `--loads` cold loads one after another, each a fresh context: login,
   `/`, every static file, `/api/session`, the live socket and its snapshot, until the
   overview shows live data; the context is then closed. Service CPU per view = the
   CPU over the whole series, minus the idle rate of (2) over the same time, / loads.
   The same for `--loads` logins alone (`POST /api/session`: scrypt), to split a view
   into its login and the rest.
   **First meaningful paint**, per load: from navigation start (performance.now() in
   the page) to the first animation frame after the overview shows a grid current on
   the L1 bar and the badge says "live" (a MutationObserver installed before any
   script of the page); also first contentful paint. Median and max.
4. **one page open, idle** on the overview: CPU over the window; what the page gets
   over its socket (messages by type and their bytes as the page reads them, per
   second), and what goes over the wire: the pages kept open are loaded through a
   counting TCP relay in this process (127.0.0.1, in front of the service), which adds
   up the bytes the service sends them, HTTP and WebSocket frames as sent (compressed
   by permessage-deflate), without TCP/IP headers; per page = that / pages open.
   (The page of 5. is one of them: the relay is in its path too.)
5. **a change reaching the page**: the page on the chargers view; `--changes` times a
   charger's StatusNotification (Charging <-> SuspendedEV) is sent at t0 (time.time()
   just before the send) and the page records Date.now() when its DOM shows the new
   status and at the next animation frame; latency = that frame - t0. Median and max.
6. **3 pages open** (if `--pages` has 3), then **no page again**: the page's cost is the
   CPU with pages open minus the mean of the two windows without (the second one shows
   the drift over the run); per page, divided by the pages open.

Targets (the issue's): page and libraries < 150 KB gzipped; first meaningful paint < 1 s
from a cold cache; a change on an open page < 2 s; an open page < 1 % of a core at 50
chargers. Results: ``bench/results/web-page.json`` and ``web-page.md``, and a README
snippet ``web-page-readme.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.load import raise_nofile_limit
from bench.servers import ProcSample, ServerProcess, proc_sample
from bench.site import quiet_log_handlers, run_info
from bench.site_fleet import run_loop
from bench.web_page_report import TARGETS, readme_snippet, render
from edge.sim.site import SimCharger, SimSite
from edge.web.page import STATIC

__all__ = ["Options", "main", "static_bytes"]

RESULTS = Path(__file__).resolve().parent / "results"
API_TOKEN = "bench-page-token-0123456789abcdef"
PASSWORD = "bench-page-password"
BASE_A = 20.0  # other loads on every phase
EV_MAX_A = 16.0
SHARE_A = 12.0  # what the fuse leaves each EV, about
MARGIN_A = 2.0
WIRINGS = ("L1", "L2", "L3")  # 1-phase chargers, spread over the grid's phases
PHONE = {"width": 375, "height": 812}
SETTLE = 3.0  # s after opening or closing pages before a window starts
TIMEOUT_MS = 30_000
CLK_TCK = os.sysconf("SC_CLK_TCK")
Json = dict[str, Any]

# Installed in every page before its own scripts: marks when the overview first shows
# live data (a grid current on L1, the badge "live"), and the frame after.
MARK_LIVE = """(() => {
  const mark = (window.__bench = {});
  const ready = () => {
    const badge = document.querySelector('[data-testid="link"]');
    const bar = document.querySelector('[data-testid="phase-L1"]');
    return badge && bar && badge.textContent.trim() === "live" && /\\d A of /.test(bar.textContent);
  };
  const observer = new MutationObserver(() => {
    if (mark.dom !== undefined || !ready()) return;
    mark.dom = performance.now();
    observer.disconnect();
    requestAnimationFrame(() => { mark.frame = performance.now(); });
  });
  observer.observe(document, { childList: true, subtree: true, characterData: true });
})();"""

PAINT = """() => {
  const fcp = performance.getEntriesByName("first-contentful-paint")[0];
  const nav = performance.getEntriesByType("navigation")[0];
  const files = performance.getEntriesByType("resource").map((r) => ({
    name: new URL(r.name).pathname, transfer: r.transferSize, body: r.encodedBodySize }));
  if (nav) files.push({ name: "/", transfer: nav.transferSize, body: nav.encodedBodySize });
  return { fcp: fcp ? fcp.startTime : null, dom: window.__bench.dom,
           frame: window.__bench.frame, files };
}"""

# Resolves with the wall-clock times (ms) at which the element `testid` first contains
# `text`, and at the animation frame after; null after `timeout` ms.
WATCH_CHANGE = """([testid, text, timeout]) => {
  window.__change = new Promise((resolve) => {
    const shows = () => {
      const el = document.querySelector(`[data-testid="${testid}"]`);
      return el !== null && el.textContent.includes(text);
    };
    let observer = null;
    const timer = setTimeout(() => { observer.disconnect(); resolve(null); }, timeout);
    observer = new MutationObserver(() => {
      if (!shows()) return;
      const dom = Date.now();
      observer.disconnect();
      clearTimeout(timer);
      requestAnimationFrame(() => resolve({ dom, frame: Date.now() }));
    });
    observer.observe(document.body, { childList: true, subtree: true, characterData: true });
  });
}"""


@dataclass(slots=True)
class Options:
    """One invocation; `--quick` and the defaults fill it."""

    chargers: int = 50
    window: float = 60.0  # s per CPU window
    loads: int = 10  # cold page loads (and logins)
    changes: int = 10
    pages: tuple[int, ...] = (1, 3)
    meter_values: float = 10.0  # s between a charger's MeterValues
    status_every: float = 60.0  # s between a charger's repeated StatusNotification
    warmup: float = 60.0  # s at most for every charger to hold a lease
    seed: int = 1
    out: Path = RESULTS


def _log(text: str) -> None:
    print(f"[bench.web_page] {text}", file=sys.stderr, flush=True)


def _ms(values: Sequence[float]) -> Json:
    """Median and max, ms."""
    if not values:
        return {"n": 0, "median": None, "max": None}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 1),
        "max": round(max(values), 1),
    }


# --- 1. the page's bytes ------------------------------------------------------------------


def static_bytes(loaded: set[str] | None = None) -> Json:
    """Every file under edge/web/static, raw and gzip -9; totals over the files the page
    loads (`loaded`: paths as served, e.g. /static/app.mjs and / for index.html) and over
    all."""
    files: list[Json] = []
    for path in sorted(p for p in STATIC.rglob("*") if p.is_file()):
        rel = path.relative_to(STATIC).as_posix()
        served = "/" if rel == "index.html" else f"/static/{rel}"
        data = path.read_bytes()
        files.append(
            {
                "file": rel,
                "raw": len(data),
                "gzip": len(gzip.compress(data, compresslevel=9, mtime=0)),
                "loaded": loaded is not None and served in loaded,
            }
        )
    chosen = [f for f in files if f["loaded"]] if loaded is not None else files
    total = {k: sum(f[k] for f in chosen) for k in ("raw", "gzip")}
    return {
        "files": files,
        "loaded": total,
        "all": {k: sum(f[k] for f in files) for k in ("raw", "gzip")},
        "target_met": total["gzip"] < TARGETS["gzip_bytes"],
    }


# --- the service under test ---------------------------------------------------------------


def fuse_a(chargers: int) -> float:
    """A fuse that leaves each EV about SHARE_A: the site is held, steadily."""
    per_phase = -(-chargers // len(WIRINGS))
    return float(round(BASE_A + MARGIN_A + per_phase * SHARE_A))


class Edge:
    """`python -m edge serve` with a temporary config; its /proc counters."""

    def __init__(self, workdir: Path, meter_port: int, chargers: int) -> None:
        data_dir = workdir / "data"
        config = workdir / "edge.toml"
        fuse = fuse_a(chargers)
        lines = [
            "[ocpp]",
            'host = "127.0.0.1"',
            "port = 0",
            'unknown_chargers = "accept"',
            "[web]",
            'host = "127.0.0.1"',
            "port = 0",
            f'api_token = "{API_TOKEN}"',
            f'password = "{PASSWORD}"',
            "[storage]",
            f'data_dir = "{data_dir}"',
            "[meter]",
            'driver = "sdm630"',
            'host = "127.0.0.1"',
            f"port = {meter_port}",
            "poll_interval = 1.0",
            "[site]",
            f"max_current = [{fuse}, {fuse}, {fuse}]",
            f"margin = {MARGIN_A}",
        ]
        for i in range(1, chargers + 1):
            lines += [f"[chargers.{charger_id(i)}]", f'phases = "{WIRINGS[i % len(WIRINGS)]}"']
        config.write_text("\n".join(lines) + "\n")
        argv = [sys.executable, "-m", "edge", "serve", "--config", str(config)]
        self.server = ServerProcess("edge", argv, workdir / "edge.log", data_dir)

    async def start(self) -> None:
        await asyncio.to_thread(self.server.wait_listening, 60.0, True)

    @property
    def pid(self) -> int:
        return self.server.pid

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.web_port}"

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}/ocpp/"

    def sample(self) -> tuple[ProcSample, float]:
        """The whole process's counters, and the event loop thread's CPU seconds."""
        with open(f"/proc/{self.pid}/task/{self.pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        loop = (int(fields[11]) + int(fields[12])) / CLK_TCK
        return proc_sample(self.pid), loop

    async def api(self, method: str, path: str, body: Json | None = None) -> Any:
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        timeout = aiohttp.ClientTimeout(total=30)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, self.base + path, json=body, headers=headers) as resp,
        ):
            if resp.status >= 300:
                raise RuntimeError(f"{method} {path}: HTTP {resp.status}")
            return await resp.json() if resp.content_type == "application/json" else None

    async def stop(self) -> Json:
        seconds, code = await asyncio.to_thread(self.server.stop, 30.0)
        return {
            "stop_s": round(seconds, 2),
            "exit_code": code,
            "warnings_logged": self.server.warning_lines,
            "errors_logged": self.server.error_lines,
            "last_logged": [line[:200] for line in list(self.server.lines)[-3:]],
        }


def charger_id(index: int) -> str:
    return f"CP{index:05d}"


class Site:
    """The simulated site: the meter ticks, chargers report, statuses repeat."""

    def __init__(self, sim: SimSite, opts: Options) -> None:
        self.sim = sim
        self.opts = opts
        self.rng = random.Random(opts.seed)
        self.status: dict[str, str] = {}
        self.tasks: list[asyncio.Task[Any]] = []

    async def connect(self, url: str, edge: Edge) -> None:
        n = self.opts.chargers
        for i in range(1, n + 1):
            await self.sim.add_charger(
                url + charger_id(i),
                charger_id(i),
                wiring=WIRINGS[i % len(WIRINGS)],
                ev_phases=1,
                ev_max_a=EV_MAX_A,
                report_every=self.opts.meter_values,
            )
        for i in range(1, n + 1):
            await edge.api("PUT", f"/api/id-tags/TAG{i:05d}", {"status": "Accepted"})
        self.tasks.append(asyncio.create_task(self.sim.run(1e9, step=0.5, meter_values_every=None)))
        # Sessions start spread over one MeterValues interval: each charger reports at
        # its own phase, as real ones do.
        gap = self.opts.meter_values / n
        for i, charger in enumerate(self.sim.chargers, 1):
            await charger.start_session(f"TAG{i:05d}")
            self.status[charger.charger_id] = "Charging"
            await asyncio.sleep(gap)
        for charger in self.sim.chargers:
            self.tasks.append(asyncio.create_task(self._repeat_status(charger)))

    async def _repeat_status(self, charger: SimCharger) -> None:
        every = self.opts.status_every
        await asyncio.sleep(self.rng.random() * every)
        while True:
            await charger.cp.status(charger.connector_id, self.status[charger.charger_id])
            await asyncio.sleep(every)

    def check(self) -> None:
        """Raise what a simulator task died of (a charger call that failed)."""
        for task in self.tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise RuntimeError("the simulated site failed") from task.exception()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def wait_steady(edge: Edge, chargers: int, timeout: float) -> Json:
    """Wait until the site is in normal state, every charger holds a lease and none is
    still learning its EV's phases; what limits the chargers then."""
    t0 = time.monotonic()
    why: Counter[str] = Counter()
    steady = False
    while time.monotonic() - t0 < timeout:
        site = await edge.api("GET", "/api/site")
        entries = site.get("chargers", [])
        why = Counter(code for c in entries for code in c.get("limitedBy") or ["none"])
        held = sum(c.get("leaseA") is not None for c in entries)
        if site.get("state") == "normal" and held == chargers and not why["probing"]:
            steady = True
            break
        await asyncio.sleep(1.0)
    return {"seconds": round(time.monotonic() - t0, 1), "steady": steady, "limited_by": why}


# --- the browser ------------------------------------------------------------------------


@dataclass(slots=True)
class LivePage:
    """One logged-in page and what its live socket received."""

    context: Any
    page: Any
    messages: Counter[str] = field(default_factory=Counter)
    kind_bytes: Counter[str] = field(default_factory=Counter)
    received: int = 0  # bytes
    first_frame: int | None = None  # bytes of the first message (the snapshot)

    def on_frame(self, payload: str | bytes) -> None:
        size = len(payload.encode() if isinstance(payload, str) else payload)
        text = payload if isinstance(payload, str) else payload.decode(errors="replace")
        kind = text[9 : text.find('"', 9)] if text.startswith('{"type":"') else "?"
        if self.first_frame is None:
            self.first_frame = size
        self.messages[kind] += 1
        self.kind_bytes[kind] += size
        self.received += size

    def reset(self) -> None:
        self.messages.clear()
        self.kind_bytes.clear()
        self.received = 0


class CountingRelay:
    """A TCP relay on 127.0.0.1 in front of the service: counts the bytes the service
    sends through it (what the pages opened through `base` get over the wire)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.down = 0  # bytes, service -> pages
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def base(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> CountingRelay:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._pump(reader, up_writer, count=False))
                    tasks.create_task(self._pump(up_reader, writer, count=True))
            finally:
                up_writer.close()
        except (OSError, ExceptionGroup):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: bool
    ) -> None:
        while data := await reader.read(65536):
            if count:
                self.down += len(data)
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()


async def open_page(browser: Any, base: str, state: Json | None = None) -> LivePage:
    """A fresh context (an empty cache), logged in: with the cookie of `state` (a
    context's storage state), else through the API; the page not loaded yet."""
    context = await browser.new_context(
        viewport=PHONE, timezone_id="UTC", locale="en-GB", base_url=base, storage_state=state
    )
    await context.add_init_script(MARK_LIVE)
    if state is None:
        await login(context, base)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    live = LivePage(context, page)
    # Playwright marks its handlers: a plain function, not a (slotted) bound method.
    page.on("websocket", lambda ws: ws.on("framereceived", lambda p: live.on_frame(p)))
    return live


async def login(context: Any, base: str) -> None:
    """POST /api/session with the password: the session cookie lands in `context`."""
    response = await context.request.post(
        "/api/session", data={"password": PASSWORD}, headers={"Origin": base}
    )
    if response.status != 204:
        raise RuntimeError(f"login: HTTP {response.status}")


async def load_overview(live: LivePage) -> Json:
    """Navigate to / and wait for live data; the page's own timings (ms from navigation
    start) and the files it fetched."""
    await live.page.goto("/")
    await live.page.wait_for_function("() => window.__bench.frame !== undefined")
    result: Json = await live.page.evaluate(PAINT)
    return result


async def cpu_of(edge: Edge, idle_pct: float, action: Callable[[], Awaitable[int]]) -> Json:
    """The service's CPU for what `action` does (it returns how many times it did it),
    less the idle rate over the same time; waits 1 s after for the closing work."""
    s0, _ = edge.sample()
    count = await action()
    await asyncio.sleep(1.0)
    s1, _ = edge.sample()
    seconds = s1.at - s0.at
    spent = s1.cpu_s - s0.cpu_s
    extra = spent - idle_pct / 100 * seconds
    return {
        "count": count,
        "seconds": round(seconds, 2),
        "cpu_ms": round(spent * 1000),
        "idle_share_ms": round(idle_pct / 100 * seconds * 1000),
        "cpu_ms_each": round(extra * 1000 / max(count, 1), 1),
    }


async def page_views(browser: Any, edge: Edge, loads: int, idle_pct: float) -> Json:
    """`loads` cold loads with a session cookie (first meaningful paint, bytes, service
    CPU), then as many logins alone."""
    paints: list[Json] = []
    snapshots: list[int] = []
    context = await browser.new_context(base_url=edge.base)
    await login(context, edge.base)
    state = await context.storage_state()
    await context.close()

    async def views() -> int:
        for _ in range(loads):
            live = await open_page(browser, edge.base, state)
            try:
                paints.append(await load_overview(live))
            finally:
                await live.context.close()
            if live.first_frame is not None:
                snapshots.append(live.first_frame)
        return loads

    async def logins() -> int:
        for _ in range(loads):
            context = await browser.new_context(base_url=edge.base)
            try:
                await login(context, edge.base)
            finally:
                await context.close()
        return loads

    view = await cpu_of(edge, idle_pct, views)
    logged = await cpu_of(edge, idle_pct, logins)
    files = paints[0]["files"]
    return {
        "view": view,
        "login": logged,
        "view_with_login_cpu_ms": round(view["cpu_ms_each"] + logged["cpu_ms_each"], 1),
        "fcp_ms": _ms([p["fcp"] for p in paints if p["fcp"] is not None]),
        "live_dom_ms": _ms([p["dom"] for p in paints]),
        "first_meaningful_paint_ms": _ms([p["frame"] for p in paints]),
        "fmp_target_met": max(p["frame"] for p in paints) < TARGETS["fmp_ms"],
        "files": sorted({f["name"] for f in files}),
        "bytes_over_the_wire": sum(f["transfer"] for f in files),
        "snapshot_bytes": max(snapshots, default=None),
    }


async def window(
    edge: Edge,
    site: Site,
    seconds: float,
    pages: Sequence[LivePage],
    relay: CountingRelay | None = None,
) -> Json:
    """The service's CPU over `seconds` with `pages` open (through `relay`, if given);
    what each page received."""
    site.check()
    state = await edge.api("GET", "/api/site")
    why = Counter(code for c in state["chargers"] for code in c.get("limitedBy") or ["none"])
    await asyncio.sleep(1.0)
    for live in pages:
        live.reset()
    wire0 = relay.down if relay is not None else 0
    s0, loop0 = edge.sample()
    await asyncio.sleep(seconds)
    s1, loop1 = edge.sample()
    wire1 = relay.down if relay is not None else 0
    site.check()
    span = s1.at - s0.at
    result: Json = {
        "pages": len(pages),
        "seconds": round(span, 1),
        "cpu_pct": round((s1.cpu_s - s0.cpu_s) / span * 100, 2),
        "loop_pct": round((loop1 - loop0) / span * 100, 2),
        "rss_mb": round(s1.rss_kb / 1024, 1),
        "limited_by_at_start": dict(why),
    }
    if pages:
        result["per_page_received"] = {
            "messages_per_s": {k: round(v / span, 2) for k, v in pages[0].messages.items()},
            "bytes_per_s": round(pages[0].received / span),
            "bytes_per_s_by_type": {k: round(v / span) for k, v in pages[0].kind_bytes.items()},
        }
        if relay is not None:
            result["per_page_received"]["wire_bytes_per_s"] = round(
                (wire1 - wire0) / len(pages) / span
            )
    return result


async def changes(site: Site, live: LivePage, count: int, rng: random.Random) -> Json:
    """`count` status changes, each to another charger, until the page shows them."""
    await live.page.evaluate("location.hash = '#/chargers'")
    await live.page.wait_for_selector('[data-testid="chargers"]')
    dom: list[float] = []
    frame: list[float] = []
    answered: list[float] = []
    missed = 0
    chargers = site.sim.chargers
    for n in range(count):
        charger = chargers[n % len(chargers)]
        cid = charger.charger_id
        new = "SuspendedEV" if site.status[cid] == "Charging" else "Charging"
        testid = f"status-{cid}-{charger.connector_id}"
        await live.page.wait_for_selector(f'[data-testid="{testid}"]')
        await live.page.evaluate(WATCH_CHANGE, [testid, new, 10_000])
        site.status[cid] = new
        t0 = time.time()
        await charger.cp.status(charger.connector_id, new)
        answered.append((time.time() - t0) * 1000)
        seen = await live.page.evaluate("window.__change")
        if seen is None:
            missed += 1
        else:
            dom.append(seen["dom"] - t0 * 1000)
            frame.append(seen["frame"] - t0 * 1000)
        await asyncio.sleep(0.5 + rng.random())  # off the rhythm of the site messages
    for charger in chargers[:count]:  # back to Charging
        if site.status[charger.charger_id] != "Charging":
            site.status[charger.charger_id] = "Charging"
            await charger.cp.status(charger.connector_id, "Charging")
    await live.page.evaluate("location.hash = '#/overview'")
    return {
        "view": "chargers",
        "answered_ms": _ms(answered),
        "dom_ms": _ms(dom),
        "shown_ms": _ms(frame),
        "missed": missed,
        "target_met": not missed and bool(frame) and max(frame) < TARGETS["change_ms"],
    }


def page_costs(windows: list[Json]) -> Json:
    """Each window with pages open against the mean of the windows without."""
    idle = [w["cpu_pct"] for w in windows if w["pages"] == 0]
    idle_loop = [w["loop_pct"] for w in windows if w["pages"] == 0]
    base, base_loop = statistics.mean(idle), statistics.mean(idle_loop)
    costs = [
        {
            "pages": w["pages"],
            "service_cpu_pct": round(w["cpu_pct"] - base, 2),
            "per_page_pct": round((w["cpu_pct"] - base) / w["pages"], 2),
            "per_page_loop_pct": round((w["loop_pct"] - base_loop) / w["pages"], 2),
        }
        for w in windows
        if w["pages"]
    ]
    return {
        "idle_pct": round(base, 2),
        "idle_spread_pct": round(max(idle) - min(idle), 2),
        "open": costs,
        "target_met": all(c["per_page_pct"] < TARGETS["page_pct"] for c in costs),
    }


# --- the run ------------------------------------------------------------------------------


async def run(opts: Options) -> Json:
    from playwright.async_api import async_playwright

    from tests.web.conftest import ARGS, CHROMIUM

    rng = random.Random(opts.seed)
    results: Json = {}
    workdir = Path(tempfile.mkdtemp(prefix="edge-bench-page-"))
    edge: Edge | None = None
    site: Site | None = None
    pages: list[LivePage] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            sim = await stack.enter_async_context(
                SimSite(
                    fuse_a=fuse_a(opts.chargers),
                    base_load_a=(BASE_A,) * 3,
                    noise_a=0.2,
                    seed=opts.seed,
                )
            )
            await sim.tick()
            edge = Edge(workdir, sim.meter_port, opts.chargers)
            await edge.start()
            _log(f"edge pid {edge.pid}; {opts.chargers} chargers connecting")
            site = Site(sim, opts)
            await site.connect(edge.ocpp_url, edge)
            results["warmup"] = await wait_steady(edge, opts.chargers, opts.warmup)
            _log(f"steady: {results['warmup']}")
            playwright = await stack.enter_async_context(async_playwright())
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=ARGS, timeout=TIMEOUT_MS
            )
            stack.push_async_callback(browser.close)
            results["chromium"] = browser.version
            await asyncio.sleep(SETTLE)
            windows = [await window(edge, site, opts.window, [])]
            _log(f"no page: {windows[-1]['cpu_pct']} % of a core")
            views = await page_views(browser, edge, opts.loads, windows[0]["cpu_pct"])
            results["views"] = views
            _log(
                f"page view {views['view']['cpu_ms_each']} ms CPU (login "
                f"{views['login']['cpu_ms_each']}); first meaningful paint "
                f"{views['first_meaningful_paint_ms']}"
            )
            loaded = set(views["files"])
            relay = await stack.enter_async_context(CountingRelay(edge.server.web_port))
            for count in opts.pages:
                while len(pages) < count:
                    pages.append(live := await open_page(browser, relay.base))
                    await load_overview(live)
                await asyncio.sleep(SETTLE)
                windows.append(await window(edge, site, opts.window, pages, relay))
                _log(f"{count} page(s): {windows[-1]['cpu_pct']} % of a core")
                if count == opts.pages[0]:
                    results["change"] = await changes(site, pages[0], opts.changes, rng)
                    _log(f"change shown: {results['change']['shown_ms']}")
            for live in pages:
                await live.context.close()
            pages = []
            await asyncio.sleep(SETTLE)
            windows.append(await window(edge, site, opts.window, []))
            _log(f"no page again: {windows[-1]['cpu_pct']} % of a core")
            results["windows"] = windows
            results["cost"] = page_costs(windows)
            results["bytes"] = static_bytes(loaded)
            await site.close()
            site = None
            results["edge"] = await edge.stop()
            edge = None
    finally:
        if site is not None:
            await site.close()
        if edge is not None:
            await edge.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def _parse(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m bench.web_page", description=(__doc__ or "").splitlines()[0]
    )
    p.add_argument("--quick", action="store_true", help="15 s windows, 5 loads and changes")
    p.add_argument("--chargers", type=int, default=50)
    p.add_argument("--window", type=float, help="s per CPU window (60; quick 15)")
    p.add_argument("--loads", type=int, help="cold page loads and logins (10; quick 5)")
    p.add_argument("--changes", type=int, help="status changes to an open page (10; quick 5)")
    p.add_argument("--pages", default="1,3", help="pages open in the windows with pages")
    p.add_argument("--meter-values", type=float, default=10.0, help="s between MeterValues")
    p.add_argument("--status-every", type=float, default=60.0, help="s between statuses")
    p.add_argument("--warmup", type=float, default=60.0, help="s at most to a steady site")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    a = p.parse_args(argv)
    pages = tuple(sorted({int(x) for x in a.pages.split(",") if x}))
    if not pages or pages[0] < 1 or a.chargers < 1:
        p.error("--pages: counts of at least 1; --chargers: at least 1")
    return Options(
        chargers=a.chargers,
        window=a.window or (15.0 if a.quick else 60.0),
        loads=max(1, a.loads or (5 if a.quick else 10)),
        changes=max(1, a.changes or (5 if a.quick else 10)),
        pages=pages,
        meter_values=a.meter_values,
        status_every=a.status_every,
        warmup=a.warmup,
        seed=a.seed,
        out=a.out,
    )


def main(argv: list[str] | None = None) -> int:
    opts = _parse(argv)
    try:
        import playwright.async_api  # noqa: F401

        from tests.web.conftest import CHROMIUM
    except ImportError as exc:
        raise SystemExit(f"bench.web_page needs playwright: {exc}") from exc
    if not CHROMIUM or not Path(CHROMIUM).exists():
        raise SystemExit("no Chromium: apt-get install chromium (or set EDGE_TEST_CHROMIUM)")
    raise_nofile_limit()
    quiet_log_handlers()
    info: Json = {
        **run_info("bench.web_page", argv),
        "site": (
            f"{opts.chargers} 1-phase chargers spread over the phases, each charging, fuse "
            f"{fuse_a(opts.chargers):g} A per phase, MeterValues every {opts.meter_values:g} s, "
            f"StatusNotification repeated every {opts.status_every:g} s, meter polled every 1 s"
        ),
    }
    t0 = time.monotonic()
    results = run_loop(run(opts))
    info["chromium"] = results.pop("chromium", None)
    info["total_seconds"] = round(time.monotonic() - t0)
    markdown = render(info, results)
    opts.out.mkdir(parents=True, exist_ok=True)
    (opts.out / "web-page.md").write_text(markdown)
    payload = {"info": info, "results": results}
    (opts.out / "web-page.json").write_text(json.dumps(payload, indent=1))
    (opts.out / "web-page-readme.md").write_text(readme_snippet(info, results))
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
