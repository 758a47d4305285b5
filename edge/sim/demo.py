"""`edge-csms demo`: the real service on a simulated site, until Ctrl-C or SIGTERM.

The service (`edge.app.App`) runs on its embedded default configuration plus what a site
with a grid meter needs: a `[meter]` on a simulated SDM630 (`SimSite`'s real Modbus TCP
server on 127.0.0.1), a `[site]` fuse with timings for watching, and a `[chargers.<id>]`
entry per simulated charger. The configuration goes through `parse_config`, the checks a
configuration file gets. Then the simulated chargers connect over OCPP like real ones,
the id tags are accepted through the operator API like an operator would, and EVs come
and go (`edge.sim.demo_plan`) while the base load moves.

Data lives in a temporary directory (removed on the way out) unless `data_dir` is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from edge.app import App
from edge.config import Config, parse_config
from edge.security.token import new_token
from edge.sim.charger import CallRefused
from edge.sim.demo_plan import (
    BaseLoad,
    ChargerPlan,
    Visit,
    VisitTiming,
    demo_chargers,
    fuse_for,
    plan_visits,
)
from edge.sim.site import SimCharger, SimSite
from edge.store.atomic import write_atomic
from edge.times import utc_now

__all__ = ["DemoOptions", "demo_config", "id_tag", "run_demo"]

log = logging.getLogger(__name__)
Json = dict[str, Any]

TICK_S = 0.5  # the simulation: meter registers and EV draw, twice per meter poll
REPORT_EVERY_S = 10.0  # each charger's MeterValues during a session, as configured ones do
METER_NOISE_A = 0.3  # what the meter shows differs from the truth by up to this
HISTORY_POINTS = 1200  # the simulators' records kept (10 min of ticks): a demo runs for hours
STOP_SESSIONS_S = 5.0  # at most this long for ending the sessions on the way out

# The [site] timings: the defaults are made for a real site (turns of 5 minutes, leases of
# a minute); a demo is watched for minutes, so turns, dwell times and leases are shorter.
MARGIN_A = 2.0
FALLBACK_A = 6.0
SITE_TIMINGS: dict[str, float] = {
    "margin": MARGIN_A,
    "fallback_current": FALLBACK_A,
    "lease_time": 30.0,
    "min_update_interval": 5.0,
    "rotation_period": 120.0,
    "min_run_time": 60.0,
    "min_pause_time": 30.0,
}
METER_TIMINGS: dict[str, float] = {"poll_interval": 1.0, "stale_after": 5.0}


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoOptions:
    """What `edge-csms demo` was asked for; None keeps the embedded default."""

    chargers: int = 5
    seed: int = 1
    host: str | None = None
    web_port: int | None = None
    ocpp_port: int | None = None
    data_dir: Path | None = None
    ready_file: Path | None = None


def id_tag(charger: ChargerPlan) -> str:
    """The id tag the EVs at `charger` present (one per charger: never ConcurrentTx)."""
    return f"TAG-{charger.charger_id}"


def demo_config(
    options: DemoOptions, chargers: list[ChargerPlan], *, data_dir: Path, meter_port: int
) -> Config:
    """The embedded default plus the demo site's sections, checked as a file would be.

    Raises:
        ConfigError: a port or host the options gave is not valid.
    """
    listen: dict[str, Any] = {} if options.host is None else {"host": options.host}
    data: dict[str, Any] = {
        "ocpp": {**listen} | ({} if options.ocpp_port is None else {"port": options.ocpp_port}),
        # A token for this run only, kept in memory (the banner and the ready file show it).
        "web": {**listen, "api_token": new_token()}
        | ({} if options.web_port is None else {"port": options.web_port}),
        "storage": {"data_dir": str(data_dir)},
        "meter": {
            "driver": "sdm630",
            "transport": "tcp",
            "host": "127.0.0.1",
            "port": meter_port,
            **METER_TIMINGS,
        },
        "site": {"max_current": [_fuse(chargers)] * 3, **SITE_TIMINGS},
        "chargers": {
            c.charger_id: {"phases": c.wiring, "max_current": c.rating_a} for c in chargers
        },
    }
    return parse_config(data)


def _fuse(chargers: list[ChargerPlan]) -> float:
    return fuse_for(chargers, fallback_a=FALLBACK_A, margin_a=MARGIN_A)


def _reachable(host: str) -> str:
    """An address this machine reaches a listener on `host` at (a wildcard is every one)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _visits(options: DemoOptions, charger: ChargerPlan, index: int) -> Iterator[Visit]:
    # One generator per charger, seeded by its id: a fourth charger added leaves the
    # first three's visits as they were.
    rng = random.Random(f"{options.seed}:{charger.charger_id}")
    timing = VisitTiming()
    if index == 0:
        # Something to watch at once: the first charger has an EV within seconds.
        timing = VisitTiming(plugged_at_start=1.0, start_within_s=3.0)
    return plan_visits(rng, utc_now(), timing)


async def _sleep_until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - utc_now()).total_seconds()))


async def _serve_visits(sim: SimCharger, tag: str, visits: Iterator[Visit]) -> None:
    """Plug the EVs in and out of one charger; report MeterValues while one is there."""
    for visit in visits:
        await _sleep_until(visit.arrive)
        ev = visit.ev
        sim.ev_phases, sim.ev_max_a, sim.ramp_s = ev.phases, ev.max_a, ev.ramp_s
        sim.taper_a, sim.taper_after_s = ev.taper_a, ev.taper_after_s
        sim.give_up_after = ev.give_up_after
        await sim.start_session(tag)
        log.info(
            "demo: an EV (%d-phase, %g A) plugged into %s", ev.phases, ev.max_a, sim.charger_id
        )
        while (now := utc_now()) < visit.leave:
            if sim.report_due(now):
                await sim.send_meter_values(now)
            await asyncio.sleep(min(1.0, (visit.leave - now).total_seconds()))
        await sim.stop_session("EVDisconnected")
        log.info("demo: the EV at %s left", sim.charger_id)


def _forget_history(site: SimSite) -> None:
    """Drop what the simulators record for tests beyond the last `HISTORY_POINTS`."""
    if len(site.timeline) > 2 * HISTORY_POINTS:
        del site.timeline[:-HISTORY_POINTS]
    for sim in site.chargers:
        for record in (sim.set_calls, sim.triggered):
            if len(record) > 2 * HISTORY_POINTS:
                del record[:-HISTORY_POINTS]


async def _tick(site: SimSite) -> None:
    """The meter and the EVs' draw follow the simulation, every `TICK_S`."""
    while True:
        await site.tick()
        _forget_history(site)
        await asyncio.sleep(TICK_S)


async def _accept_tags(app: App, tags: list[str]) -> None:
    """Put every tag on the id-tag list through the operator API, as an operator would."""
    host, port = app.web_addresses[0]
    base = f"http://{_reachable(host)}:{port}/api/id-tags/"
    headers = {"Authorization": f"Bearer {app.api_token}"}
    async with aiohttp.ClientSession() as session:
        for tag in tags:
            async with session.put(base + tag, json={"status": "Accepted"}, headers=headers) as r:
                if r.status not in (200, 201):
                    raise RuntimeError(f"PUT /api/id-tags/{tag}: HTTP {r.status}")


async def _stop_sessions(site: SimSite) -> None:
    """End the sessions under way, so a kept data directory has no transaction left open."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(STOP_SESSIONS_S):
            for sim in site.chargers:
                with contextlib.suppress(ConnectionError, TimeoutError, CallRefused):
                    await sim.stop_session("Local")


def _describe(app: App, options: DemoOptions, chargers: list[ChargerPlan], data_dir: Path) -> Json:
    web_host, web_port = app.web_addresses[0]
    ocpp_host, ocpp_port = app.ocpp_addresses[0]
    url = f"http://{_reachable(web_host)}:{web_port}/"
    return {
        "url": url,
        "lanUrl": app.files.public_url + "/",
        "apiToken": app.api_token,
        "webPort": web_port,
        "ocppPort": ocpp_port,
        "ocppUrl": f"ws://{_reachable(ocpp_host)}:{ocpp_port}/ocpp/",
        "meterPort": app.config.meter.port if app.config.meter else None,
        "dataDir": str(data_dir),
        "temporary": options.data_dir is None,
        "fuseA": _fuse(chargers),
        "chargers": [
            {"id": c.charger_id, "phases": c.wiring, "maxA": c.rating_a} for c in chargers
        ],
    }


def _banner(facts: Json) -> str:
    chargers = ", ".join(f"{c['id']} ({c['phases']}, {c['maxA']:g} A)" for c in facts["chargers"])
    lines = [
        f"edge-csms demo: {len(facts['chargers'])} simulated chargers behind a simulated SDM630"
        f" grid meter, fuse {facts['fuseA']:g} A per phase",
        f"  web page and API  {facts['url']}",
    ]
    if facts["lanUrl"] != facts["url"]:
        lines.append(f"  from elsewhere    {facts['lanUrl']}")
    lines += [
        f"  API token         {facts['apiToken']}",
        f"  try               curl -H 'Authorization: Bearer {facts['apiToken']}' "
        f"{facts['url']}api/site",
        f"  OCPP              {facts['ocppUrl']}<id>",
        f"  chargers          {chargers}",
        "  data              "
        + facts["dataDir"]
        + (" (removed on exit)" if facts["temporary"] else ""),
        "Ctrl-C stops it.",
    ]
    return "\n".join(lines)


async def run_demo(options: DemoOptions, *, out: TextIO = sys.stdout) -> int:
    """Run the demo until SIGINT or SIGTERM; 0 once stopped cleanly.

    Prints how to reach it to `out` and, with `options.ready_file`, writes the same as JSON
    there (mode 0600: it holds the API token) once every charger is connected.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    chargers = demo_chargers(options.chargers)
    temporary = options.data_dir is None
    data_dir = (
        Path(tempfile.mkdtemp(prefix="edge-csms-demo-"))
        if options.data_dir is None
        else options.data_dir
    )
    try:
        async with SimSite(
            fuse_a=_fuse(chargers),
            base_load_a=BaseLoad(start=utc_now(), seed=options.seed),
            noise_a=METER_NOISE_A,
            seed=options.seed,
        ) as site:
            await site.tick()
            config = demo_config(options, chargers, data_dir=data_dir, meter_port=site.meter_port)
            async with App(config) as app:
                await _accept_tags(app, [id_tag(c) for c in chargers])
                ocpp_host, ocpp_port = app.ocpp_addresses[0]
                url = f"ws://{_reachable(ocpp_host)}:{ocpp_port}/ocpp/"
                async with asyncio.TaskGroup() as tg:
                    tasks = [tg.create_task(_tick(site))]
                    for index, plan in enumerate(chargers):
                        sim = await site.add_charger(
                            url + plan.charger_id,
                            plan.charger_id,
                            wiring=plan.wiring,
                            rating_a=plan.rating_a,
                            report_every=REPORT_EVERY_S,
                        )
                        visits = _visits(options, plan, index)
                        tasks.append(tg.create_task(_serve_visits(sim, id_tag(plan), visits)))
                    facts = _describe(app, options, chargers, data_dir)
                    print(_banner(facts), file=out, flush=True)
                    if options.ready_file is not None:
                        write_atomic(options.ready_file, json.dumps(facts).encode(), mode=0o600)
                    await stop.wait()
                    log.info("demo: stopping")
                    for task in tasks:
                        task.cancel()
                await _stop_sessions(site)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0
