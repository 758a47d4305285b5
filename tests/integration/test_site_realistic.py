"""Site load balancing on a realistic site: unbalanced and moving base load, a noisy
meter, PV export, 1-phase EVs on rotated wiring, EVs that ramp, taper and give up after
too many pauses, a charger that reports no current.

The rig is the one of `test_site_balancing` (a real App, a real Modbus meter, real
WebSocket chargers), built here with the margin, poll interval, lease time and noise
each scenario needs. Assertions are on outcomes only: which EV was offered current and
when relative to its own StartTransaction, pauses per session, SetChargingProfile calls
per charger per minute, how much of the available current the EVs used, and how long
the grid was above the fuse; never on how fast the test machine ran.

Definitions used below:

- *offered*: the limit the charger acts on is 6 A or more (an EV does not charge below);
  a *pause* is the offer falling below 6 A during a session, a *resume* the offer rising
  to 6 A or more (the first one of a session included): `SimCharger.pauses`/`resumes`.
- *utilisation* of a tick: the sum over phases of what the EVs drew, each phase counted
  at most up to what was available on it, over the sum over phases of what was
  available, where available = fuse - margin - true base load (no meter noise; PV export
  makes it larger). The scenarios choose EVs that can use every available ampere, so 1
  is reachable; `utilisation` averages it over a window.

Scenarios that today's controller fails are marked xfail(raises=AssertionError) with the
outcome measured today; they specify the fix (an error of the rig itself is not taken for
the expected failure). Not strict: which EV suffers depends on the admission order, which
the controller rotates by wall-clock time, so a lucky run may pass; take the marker off
once the fix is in.

They run on the stdlib event loop only: each takes 15-60 s of simulated (wall) time, and
what they check is the controller's decisions, not the event loop.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from drivers import KNOWN_MODELS, ModbusMeter
from edge.config import ChargerSettings, SiteConfig
from edge.sim.site import (
    MIN_CHARGE_A,
    Phases,
    SimCharger,
    SimSite,
    SitePoint,
    ramp_load,
)
from profiles.lease import LEASE_PROFILE_ID
from tests.conftest import TIME_SCALE
from tests.helpers import Clock
from tests.integration.test_site_balancing import Rig, brief, rig

TICK = 0.1  # s between two simulation ticks (the site runs them in the background)
POLL = 0.2  # meter poll_interval (production: 1 s)
STALE = 1.0
LEASE = 4.0  # lease_time (production: 60 s), where calls are not counted
MIN_UPDATE = 0.5  # min_update_interval (production: 5 s), where calls are not counted
REPORT_EVERY = 10.0  # s between two MeterValues of a charger, from its StartTransaction
# (real ones: 10-60 s; the controller's own delays, e.g. 5 s for an EV to follow a lower
# limit, are not scaled down in these tests, so neither is this)
FALLBACK = 6.0
NOISE_A = 0.5
ABOVE_FUSE_MAX_S = TICK  # "never above the fuse": at most one tick (the timeline's resolution)

# Dwell times of a charging EV: read from SiteConfig once it has them, otherwise the
# defaults the controller is meant to get (min pause 60 s, min run 120 s).
_SITE_KEYS = {f.name: f.default for f in fields(SiteConfig)}
MIN_PAUSE_S = float(cast(float, _SITE_KEYS.get("min_pause_time", 60.0)))
MIN_RUN_S = float(cast(float, _SITE_KEYS.get("min_run_time", 120.0)))

ONE_LOOP = pytest.mark.asyncio(loop_factories=["asyncio"])


# --- the rig -----------------------------------------------------------------------------------


@asynccontextmanager
async def site_rig(
    tmp_path: Path,
    *,
    fuse: float,
    margin: float,
    base: Phases | Callable[[datetime], Phases],
    chargers: Mapping[str, ChargerSettings] | None = None,
    poll: float = POLL,
    stale: float = STALE,
    lease: float = LEASE,
    min_update: float = MIN_UPDATE,
    noise_a: float = 0.0,
    seed: int = 1,
) -> AsyncIterator[Rig]:
    """`test_site_balancing`'s Rig with this module's site: fuse, margin, noise, timings;
    the chargers report on their own schedule."""
    async with rig(
        tmp_path, fuse=fuse, margin=margin, base=base, chargers=chargers, poll=poll,
        stale_after=stale, lease=lease, min_update=min_update, noise_a=noise_a, seed=seed,
        mv_every=None,
    ) as running:  # fmt: skip
        yield running


async def connect_all(rig: Rig, specs: Mapping[str, Mapping[str, Any]]) -> dict[str, SimCharger]:
    """Connect every charger (each gets its safe profile), no session yet; each reports
    every REPORT_EVERY s of its session unless its spec says otherwise."""
    return {
        cid: await rig.ev(cid, start=False, **{"report_every": REPORT_EVERY, **kwargs})
        for cid, kwargs in specs.items()
    }


async def plug_in(sims: Mapping[str, SimCharger], gap: float = 0.5) -> None:
    """StartTransaction on every charger, in order, `gap` s apart."""
    for cid, sim in sims.items():
        await sim.start_session(f"TAG-{cid}")
        await asyncio.sleep(gap)


async def run_until(rig: Rig, end: datetime) -> None:
    """Let the site run until `end` (the simulation must still be running then)."""
    await asyncio.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()))
    rig.check_runner()


# --- measures ----------------------------------------------------------------------------------


def available(point: SitePoint, margin: float) -> Phases:
    """What the EVs may draw on each phase at `point`: fuse - margin - true base load."""
    a = [max(0.0, point.fuse_a - margin - point.base_a[p]) for p in range(3)]
    return a[0], a[1], a[2]


def utilisation(points: Sequence[SitePoint], margin: float) -> float:
    """The mean over `points` of sum_p min(EV draw_p, available_p) / sum_p available_p
    (see the module docstring)."""
    ratios = []
    for point in points:
        room = available(point, margin)
        ev = [point.grid_a[p] - point.base_a[p] for p in range(3)]
        total = sum(room)
        if total > 0:
            ratios.append(sum(min(max(0.0, ev[p]), room[p]) for p in range(3)) / total)
    assert ratios, "no points to judge"
    return sum(ratios) / len(ratios)


def first_offer_s(sim: SimCharger) -> float | None:
    """Seconds from StartTransaction to the first offer of 6 A or more (None: never)."""
    if not sim.resumes or sim.transaction_start is None:
        return None
    return (sim.resumes[0] - sim.transaction_start).total_seconds()


def drawn(point: SitePoint, charger_id: str) -> float:
    """The most one charger drew on any phase at `point`."""
    return max(point.draw_of(charger_id))


def charging_share(points: Sequence[SitePoint], charger_id: str) -> float:
    """The share of `points` at which the charger drew its minimum or more."""
    return sum(drawn(p, charger_id) >= MIN_CHARGE_A for p in points) / max(1, len(points))


def above_fuse(site: SimSite, since: datetime) -> str | None:
    """How long and how far the grid was above the fuse from `since` on, if longer than
    ABOVE_FUSE_MAX_S (None: it was not)."""
    seconds = site.time_above(since=since)
    if seconds <= ABOVE_FUSE_MAX_S:
        return None
    worst = max(p.overload_a for p in site.timeline if p.t >= since)
    return f"{seconds:.1f} s above the fuse (up to {worst:.1f} A over)"


def session_calls_per_minute(sim: SimCharger, end: datetime) -> float:
    assert sim.transaction_start is not None
    return sim.calls_per_minute(sim.transaction_start, end)


def lease_values(sim: SimCharger, since: datetime) -> list[float]:
    return [
        req["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]
        for at, req, _ in sim.set_calls
        if at >= since and req["csChargingProfiles"]["chargingProfileId"] == LEASE_PROFILE_ID
    ]


def dwell_violations(sim: SimCharger) -> list[str]:
    """Resumes sooner than MIN_PAUSE_S after the pause before them, and pauses sooner than
    MIN_RUN_S after such a resume. The first run of a session is not judged: a rising
    load may force its end (how many pauses a session has is judged on its own)."""
    bad = []
    for paused in sim.pauses:
        later = [r for r in sim.resumes if r > paused]
        if not later:
            continue
        resumed = later[0]
        if (resumed - paused).total_seconds() < MIN_PAUSE_S:
            bad.append(f"resumed {(resumed - paused).total_seconds():.1f} s after a pause")
        again = [q for q in sim.pauses if q > resumed]
        if again and (again[0] - resumed).total_seconds() < MIN_RUN_S:
            bad.append(f"paused again {(again[0] - resumed).total_seconds():.1f} s after resuming")
    return bad


def story(sims: Mapping[str, SimCharger], t0: datetime, end: datetime) -> str:
    """Per charger: first offer, pauses, resumes, calls per minute, the leases sent."""

    def rel(moments: Sequence[datetime]) -> str:
        return "[" + ", ".join(f"{(m - t0).total_seconds():.1f}" for m in moments) + "]"

    lines = []
    for cid, sim in sims.items():
        first = first_offer_s(sim)
        values = lease_values(sim, t0)
        lines.append(
            f"  {cid}: first offer "
            + (f"+{first:.1f}s" if first is not None else "never")
            + f", pauses at {rel(sim.pauses)}, resumes at {rel(sim.resumes)}"
            + (f", gave up at {rel([sim.gave_up_at])}" if sim.gave_up_at else "")
            + f", {session_calls_per_minute(sim, end):.1f} calls/min"
            + f", {len(values)} leases {values[:12]}{'...' if len(values) > 12 else ''}"
        )
    return "\n".join(lines)


async def diagnosis(rig: Rig, sims: Mapping[str, SimCharger], t0: datetime, end: datetime) -> str:
    """`story` and the site as the API shows it; printed too (`pytest -rP` shows it for
    passing tests)."""
    text = f"{story(sims, t0, end)}\n{brief(await rig.state(), rig)}"
    print(text)
    return text


# --- the simulation's own behaviours (no CSMS) ----------------------------------------------


def lone_charger(clock: Clock, **kwargs: Any) -> SimCharger:
    """A SimCharger without a connection, in a session, for the EV model alone."""
    sim = SimCharger(cast(Any, SimpleNamespace(answers={})), "LONE", clock=clock, **kwargs)
    sim.transaction_id = 1
    sim.transaction_start = clock()
    return sim


def offer(sim: SimCharger, limit: float) -> None:
    """Send the charger a lease of `limit` A as the CSMS would (ChargePointMaxProfile)."""
    start = (sim.clock() - timedelta(minutes=1)).replace(microsecond=0)
    answer = sim.cp.answers["SetChargingProfile"]
    assert callable(answer)
    status = answer(
        {
            "connectorId": 0,
            "csChargingProfiles": {
                "chargingProfileId": LEASE_PROFILE_ID,
                "stackLevel": 1,
                "chargingProfilePurpose": "ChargePointMaxProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "chargingRateUnit": "A",
                    "startSchedule": start.isoformat().replace("+00:00", "Z"),
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
                },
            },
        }
    )
    assert status == {"status": "Accepted"}


def test_sim_ev_ramps_tapers_counts_pauses_and_gives_up() -> None:
    """The EV model: ramps to a higher offer over ramp_s, follows a lower one at once,
    tapers, counts pauses and resumes, and stops for good after give_up_after pauses."""
    clock = Clock(datetime(2025, 6, 1, 12, tzinfo=UTC))
    sim = lone_charger(clock, ramp_s=4.0, taper_a=10.0, taper_after_s=30.0, give_up_after=2)

    def step(seconds: float) -> float:
        clock.advance(seconds)
        return max(sim.advance(clock()))

    t0 = clock()
    offer(sim, 20.0)
    assert step(0.0) == 0.0 and sim.resumes == [t0]
    assert [step(1.0) for _ in range(5)] == [5.0, 10.0, 15.0, 20.0, 20.0]
    offer(sim, 8.0)
    assert step(0.1) == 8.0  # a lower offer: at once
    offer(sim, 16.0)
    assert step(0.0) == 8.0 and step(2.0) == 12.0  # a higher one: ramping from 8 A
    offer(sim, 5.0)
    assert step(0.1) == 0.0 and len(sim.pauses) == 1 and not sim.gave_up
    offer(sim, 32.0)
    assert step(0.0) == 0.0 and step(4.0) == 32.0 and len(sim.resumes) == 2
    clock.advance(30.0)
    assert step(0.0) == 10.0  # tapered, 30 s into the session
    offer(sim, 0.0)
    assert step(0.1) == 0.0 and len(sim.pauses) == 2 and sim.gave_up
    offer(sim, 16.0)
    assert step(10.0) == 0.0 and len(sim.resumes) == 2


def test_sim_charger_without_current_reports_sends_only_energy() -> None:
    """reports_current=False leaves Current.Import out of MeterValues; calls_per_minute
    counts SetChargingProfile over a window."""
    clock = Clock(datetime(2025, 6, 1, 12, tzinfo=UTC))
    sim = lone_charger(clock, reports_current=False)
    offer(sim, 16.0)
    sim.advance(clock())
    clock.advance(30.0)
    offer(sim, 10.0)
    payload = sim.meter_values_payload(clock())
    measurands = [s["measurand"] for s in payload["meterValue"][0]["sampledValue"]]
    assert measurands == ["Energy.Active.Import.Register"]
    assert sim.energy_wh > 0
    start = clock() - timedelta(seconds=30)
    assert sim.calls_per_minute(start, clock()) == 4.0


async def test_sim_site_shows_pv_export_noise_and_a_ramp_on_the_meter() -> None:
    """A negative base current is read back negative (export) through the SDM630's phase
    power; noise is seeded and stays off the timeline; ramp_load moves linearly."""
    t0 = datetime(2025, 6, 1, 12, tzinfo=UTC)
    load = ramp_load(
        t0 + timedelta(seconds=10), t0 + timedelta(seconds=20), (18, -5, 8), (24, -5, 8)
    )
    assert load(t0) == (18, -5, 8) and load(t0 + timedelta(seconds=15)) == (21, -5, 8)
    assert load(t0 + timedelta(minutes=5)) == (24, -5, 8)
    async with asyncio.timeout(5), SimSite(fuse_a=32.0, base_load_a=load, noise_a=0.5) as site:
        point = await site.tick(t0 + timedelta(seconds=15))
        assert point.grid_a == (21.0, -5.0, 8.0) and point.base_a == (21.0, -5.0, 8.0)
        meter = ModbusMeter(KNOWN_MODELS["sdm630"], host="127.0.0.1", port=site.meter_port)
        try:
            reading = await meter.read()
        finally:
            await meter.close()
        assert reading.current_a[1] < 0, reading
        for shown, true in zip(reading.current_a, point.grid_a, strict=True):
            assert shown != true and abs(shown - true) <= 0.5 + 1e-3, reading
        one, two = SimSite(fuse_a=32.0, seed=7), SimSite(fuse_a=32.0, seed=7)
        assert [one.rng.random() for _ in range(3)] == [two.rng.random() for _ in range(3)]
        await site.tick(t0 + timedelta(seconds=16))
        assert site.export_energy_wh == 0.0 and site.import_energy_wh > 0


# --- a./b. an unbalanced site ---------------------------------------------------------------

FUSE = 32.0
MARGIN = 2.0
BASE_START: Phases = (18.0, 8.0, 8.0)  # L1 heavily loaded: room for two EVs at 6 A
BASE_END: Phases = (24.0, 8.0, 8.0)  # room for one
RAMP_FROM = 15.0  # s after the first StartTransaction the L1 load starts growing
ON_L1 = ("R1", "T")  # the EVs that share L1


def unbalanced_site(
    s2: str, **ev: Any
) -> tuple[dict[str, dict[str, Any]], dict[str, ChargerSettings]]:
    """The five chargers (and their configured wiring) of the unbalanced site: 1-phase EVs
    on 3-phase chargers wired so they draw on grid L2 (R2), L3 (R3) and L1 (R1); a
    1-phase EV on L2 (S2: a 3-phase charger wired L2L3L1, `s2="rotated"`, or a 1-phase
    charger on L2, `s2="single"`); a 3-phase EV (T). `ev`: EV behaviour for all."""
    s2_wiring = {"rotated": "L2L3L1", "single": "L2"}[s2]
    wirings = {"R2": "L2L3L1", "R3": "L3L1L2", "R1": "L1L2L3", "S2": s2_wiring, "T": "L1L2L3"}
    specs = {
        cid: {"wiring": wiring, "ev_phases": 3 if cid == "T" else 1, **ev}
        for cid, wiring in wirings.items()
    }
    return specs, {cid: ChargerSettings(phases=w) for cid, w in wirings.items()}


RUN_A = 35.0


@ONE_LOOP
async def test_unbalanced_site_gives_every_ev_with_room_its_minimum_and_uses_the_headroom(
    tmp_path: Path,
) -> None:
    """Fuse 3x32 A, margin 2 A, base L1 18 A (growing to 24 A from 15 s on) and L2/L3 8 A,
    five EVs plugged in within 2.5 s: each gets 6 A or more within 15 s of its
    StartTransaction (L1 has room for both of its EVs until 15 s), none is starved
    (charges less than a quarter of the run: an instant of current at plug-in does not
    count; here each EV can charge for 15 s or more), the EVs use at least 95 % of the
    available current on average after 20 s (see `utilisation`), and the grid is above
    the fuse for no more than a tick of the simulation."""
    specs, settings = unbalanced_site("rotated")
    async with (
        asyncio.timeout((RUN_A + 30) * TIME_SCALE),
        site_rig(tmp_path, fuse=FUSE, margin=MARGIN, base=BASE_START, chargers=settings) as r,
    ):
        sims = await connect_all(r, specs)
        t0 = datetime.now(UTC)
        end = t0 + timedelta(seconds=RUN_A)
        r.site.base_load_a = ramp_load(t0 + timedelta(seconds=RAMP_FROM), end, BASE_START, BASE_END)
        await plug_in(sims)
        await run_until(r, end)
        why = await diagnosis(r, sims, t0, end)
        points = [p for p in r.site.timeline if t0 <= p.t <= end]
        late = [p for p in points if p.t >= t0 + timedelta(seconds=20)]
        use = utilisation(late, MARGIN)
        problems = []
        for cid, sim in sims.items():
            first = first_offer_s(sim)
            if first is None or first > 15.0:
                problems.append(f"{cid}: first offer of 6 A or more after {first} s")
            assert sim.transaction_start is not None
            share = charging_share([p for p in points if p.t >= sim.transaction_start], cid)
            if share < 0.25:
                problems.append(f"{cid}: starved, charged {share:.0%} of the run")
        if use < 0.95:
            problems.append(f"utilisation after 20 s {use:.1%}")
        if above := above_fuse(r.site, t0):
            problems.append(above)
        assert not problems, "\n".join(problems) + f"\n(utilisation {use:.1%})\n{why}"


RUN_B = 60.0


@ONE_LOOP
async def test_unbalanced_site_with_a_noisy_meter_does_not_flap(tmp_path: Path) -> None:
    """The unbalanced site (S2 a 1-phase charger on L2, L1 growing from 18 to 24 A from
    15 s to 45 s) behind a meter with +-0.5 A of noise, EVs that give up after 3 pauses:
    over 60 s no session is paused more than once, no EV resumes sooner than MIN_PAUSE_S
    after a pause or is paused sooner than MIN_RUN_S after resuming, none gives up, and at
    the end every EV whose phases have room (all but one of the two on L1) charges."""
    specs, settings = unbalanced_site("single", give_up_after=3)
    async with (
        asyncio.timeout((RUN_B + 30) * TIME_SCALE),
        site_rig(
            tmp_path,
            fuse=FUSE,
            margin=MARGIN,
            base=BASE_START,
            chargers=settings,
            noise_a=NOISE_A,
        ) as r,
    ):
        sims = await connect_all(r, specs)
        t0 = datetime.now(UTC)
        end = t0 + timedelta(seconds=RUN_B)
        r.site.base_load_a = ramp_load(
            t0 + timedelta(seconds=RAMP_FROM), t0 + timedelta(seconds=45), BASE_START, BASE_END
        )
        await plug_in(sims)
        await run_until(r, end)
        why = await diagnosis(r, sims, t0, end)
        last = r.site.timeline[-1]
        problems = []
        for cid, sim in sims.items():
            if len(sim.pauses) > 1:
                problems.append(f"{cid}: paused {len(sim.pauses)} times")
            problems += [f"{cid}: {v}" for v in dwell_violations(sim)]
            if sim.gave_up:
                problems.append(f"{cid}: gave up")
            if cid not in ON_L1 and drawn(last, cid) < MIN_CHARGE_A:
                problems.append(f"{cid}: not charging at the end")
        if not any(drawn(last, cid) >= MIN_CHARGE_A for cid in ON_L1):
            problems.append("neither EV on L1 charging at the end")
        if above := above_fuse(r.site, t0):
            problems.append(above)
        assert not problems, "\n".join(problems) + f"\n{why}"


# --- c. few calls -------------------------------------------------------------------------

RUN_C = 60.0
POLL_C = 0.5
PRODUCTION = SiteConfig()


@ONE_LOOP
async def test_a_site_with_room_costs_few_calls_per_charger(tmp_path: Path) -> None:
    """Six chargers on 3x63 A with room for all (five 12 A 1-phase chargers, one 3-phase
    EV that tapers to 10 A while offered 32 A), a noisy meter, EVs that ramp over 3 s,
    production lease time and min_update_interval: each charger gets at most 4
    SetChargingProfile a minute over its session, and 6 A or more within two meter
    periods of its StartTransaction."""
    one_phase = {"P1a": "L1", "P2a": "L2", "P3": "L3", "P1b": "L1", "P2b": "L2"}
    specs: dict[str, dict[str, Any]] = {
        "T": {"wiring": "L1L2L3", "ev_phases": 3, "ramp_s": 3.0, "taper_a": 10.0,
              "taper_after_s": 20.0},
        **{
            cid: {"wiring": w, "ev_phases": 1, "rating_a": 12.0, "ev_max_a": 12.0,
                  "ramp_s": 3.0}
            for cid, w in one_phase.items()
        },
    }  # fmt: skip
    settings = {cid: ChargerSettings(phases=w, max_current=12.0) for cid, w in one_phase.items()}
    async with (
        asyncio.timeout((RUN_C + 40) * TIME_SCALE),
        site_rig(
            tmp_path,
            fuse=63.0,
            margin=MARGIN,
            base=(3.0, 3.0, 3.0),
            chargers=settings,
            poll=POLL_C,
            stale=5 * POLL_C,
            lease=PRODUCTION.lease_time,
            min_update=PRODUCTION.min_update_interval,
            noise_a=NOISE_A,
        ) as r,
    ):
        sims = await connect_all(r, specs)
        # An EV arrives long after its charger got its first (0 A) lease in real life: let
        # min_update_interval pass, so it does not hold up the first raise.
        await asyncio.sleep(PRODUCTION.min_update_interval)
        t0 = datetime.now(UTC)
        end = t0 + timedelta(seconds=RUN_C)
        await plug_in(sims)
        await run_until(r, end)
        why = await diagnosis(r, sims, t0, end)
        problems = []
        for cid, sim in sims.items():
            rate = session_calls_per_minute(sim, end)
            if rate > 4.0:
                problems.append(f"{cid}: {rate:.1f} SetChargingProfile/min")
            first = first_offer_s(sim)
            if first is None or first > 2 * POLL_C:
                problems.append(f"{cid}: first offer of 6 A or more after {first} s")
        if above := above_fuse(r.site, t0):
            problems.append(above)
        assert not problems, "\n".join(problems) + f"\n{why}"


# --- d. PV export ---------------------------------------------------------------------------

PV_BASE: Phases = (-12.0, 4.0, 4.0)  # a 1-phase inverter exporting 12 A on L1
PV_SPECS: dict[str, dict[str, Any]] = {
    "P1": {"wiring": "L1", "ev_phases": 1},
    "T": {"wiring": "L1L2L3", "ev_phases": 3},
}
PV_SETTINGS = {"P1": ChargerSettings(phases="L1")}


@ONE_LOOP
async def test_pv_export_on_one_phase_never_takes_the_site_above_the_fuse(
    tmp_path: Path,
) -> None:
    """L1 exports 12 A (PV) while a 1-phase EV on L1 and a 3-phase EV charge, then the
    export fades to nothing over 4 s (a cloud): the grid is never above the fuse (import
    or export) and both EVs still charge at the end."""
    async with (
        asyncio.timeout(40 * TIME_SCALE),
        site_rig(tmp_path, fuse=FUSE, margin=MARGIN, base=PV_BASE, chargers=PV_SETTINGS) as r,
    ):
        sims = await connect_all(r, PV_SPECS)
        t0 = datetime.now(UTC)
        cloud = t0 + timedelta(seconds=6)
        r.site.base_load_a = ramp_load(cloud, cloud + timedelta(seconds=4), PV_BASE, (0, 4, 4))
        await plug_in(sims)
        end = t0 + timedelta(seconds=13)
        await run_until(r, end)
        why = await diagnosis(r, sims, t0, end)
        over = [p for p in r.site.timeline if p.t >= t0 and p.overload_a > 0]
        shown = [(f"+{(p.t - t0).total_seconds():.1f}s", p.grid_a) for p in over[:10]]
        assert r.site.time_above(since=t0) <= ABOVE_FUSE_MAX_S, f"above: {shown}\n{why}"
        last = r.site.timeline[-1]
        assert all(drawn(last, cid) >= MIN_CHARGE_A for cid in sims), why


@ONE_LOOP
async def test_pv_export_on_one_phase_is_used_by_the_evs(tmp_path: Path) -> None:
    """L1 exports 12 A (PV): the EVs may use it. A 1-phase EV on L1 and a 3-phase EV share
    L1's 30 + 12 A max-min fairly, 21 A each (the 3-phase EV could take 26 A on L2/L3, but
    only by taking it from the other EV on L1), from 4 s after plug-in on: L1 used to at
    least 95 %, and neither EV below 95 % of its fair share."""
    async with (
        asyncio.timeout(30 * TIME_SCALE),
        site_rig(tmp_path, fuse=FUSE, margin=MARGIN, base=PV_BASE, chargers=PV_SETTINGS) as r,
    ):
        sims = await connect_all(r, PV_SPECS)
        t0 = datetime.now(UTC)
        await plug_in(sims)
        end = t0 + timedelta(seconds=10)
        await run_until(r, end)
        why = await diagnosis(r, sims, t0, end)
        window = [p for p in r.site.timeline if t0 + timedelta(seconds=4) <= p.t <= end]
        assert r.site.time_above(since=t0) <= ABOVE_FUSE_MAX_S, why
        room_l1 = FUSE - MARGIN - PV_BASE[0]
        l1_use = sum(min(p.grid_a[0] - p.base_a[0], room_l1) for p in window) / len(window)
        shares = {cid: sum(drawn(p, cid) for p in window) / len(window) for cid in sims}
        assert l1_use >= 0.95 * room_l1, f"L1 used {l1_use:.1f} A of {room_l1:.1f}\n{why}"
        assert all(share >= 0.95 * room_l1 / 2 for share in shares.values()), f"{shares}\n{why}"


@ONE_LOOP
async def test_pv_export_fading_at_production_timings_is_followed_in_few_lowerings(
    tmp_path: Path,
) -> None:
    """The PV site at production timings (meter poll 1 s, lease 60 s, min_update_interval
    5 s; the EVs follow a new limit at once): the export fades over 4 s. The readings prove
    the load rising a step at a time; once they proved it twice, the EVs are lowered to
    where it is heading, not once per step (which took four lowerings): at most three
    calls per EV in the 12 s after the cloud (a change is a refresh too, so no other), the
    site above the fuse for no more than 3 s at a stretch, and back under fuse - margin
    within 8 s of the cloud."""
    poll = 1.0
    async with (
        asyncio.timeout(60 * TIME_SCALE),
        site_rig(
            tmp_path, fuse=FUSE, margin=MARGIN, base=PV_BASE, chargers=PV_SETTINGS, poll=poll,
            stale=10 * poll, lease=PRODUCTION.lease_time,
            min_update=PRODUCTION.min_update_interval,
        ) as r,
    ):  # fmt: skip
        sims = await connect_all(r, PV_SPECS)
        await asyncio.sleep(PRODUCTION.min_update_interval)
        t0 = datetime.now(UTC)
        cloud = t0 + timedelta(seconds=12)
        r.site.base_load_a = ramp_load(cloud, cloud + timedelta(seconds=4), PV_BASE, (0, 4, 4))
        await plug_in(sims)
        end = cloud + timedelta(seconds=12)
        await run_until(r, end)
        why = await diagnosis(r, sims, t0, end)
        problems = []
        for cid, sim in sims.items():
            calls = [at for at, _, _ in sim.set_calls if cloud <= at <= end]
            values = lease_values(sim, t0)
            ahead = len(values) - len(lease_values(sim, cloud))
            # Lowerings of a whole step or more; a last tenths-of-an-ampere correction of
            # where the load was heading (readings a little late on a busy machine) may
            # follow them, within the fourth call.
            steps = [
                (a, b)
                for a, b in itertools.pairwise(values[max(0, ahead - 1) :])
                if a - b >= PRODUCTION.hysteresis
            ]
            if len(steps) > 3 or len(calls) > 4:
                problems.append(f"{cid}: {len(calls)} calls after the cloud: {values[ahead:]}")
        longest = run = 0.0
        for a, b in itertools.pairwise(p for p in r.site.timeline if p.t >= t0):
            run = run + (b.t - a.t).total_seconds() if a.overload_a > 0 else 0.0
            longest = max(longest, run)
        if longest > 3.0:
            problems.append(f"above the fuse for {longest:.1f} s at a stretch")
        settled = [p for p in r.site.timeline if p.t >= cloud + timedelta(seconds=8)]
        if any(max(p.grid_a) > FUSE - MARGIN + 0.1 for p in settled):
            problems.append(f"above fuse - margin 8 s after the cloud: {settled[0].grid_a}")
        assert not problems, "\n".join(problems) + f"\n{why}"


# --- e. a charger that reports no current ------------------------------------------------

RUN_E = 25.0


@ONE_LOOP
async def test_charger_without_current_reports_still_charges_its_ev(tmp_path: Path) -> None:
    """Two 3-phase EVs under 3x32 A with 14 A of base load (16 A usable: 8 A each), one on a
    charger whose MeterValues carry only energy: each EV (that one included) gets 6 A or
    more within 15 s, charges at least 90 % of the time from 5 s after its
    StartTransaction and is paused at most once, and the grid is never above the fuse."""
    specs: dict[str, dict[str, Any]] = {"A": {}, "SILENT": {"reports_current": False}}
    async with (
        asyncio.timeout((RUN_E + 30) * TIME_SCALE),
        site_rig(tmp_path, fuse=FUSE, margin=MARGIN, base=(14.0, 14.0, 14.0)) as r,
    ):
        sims = await connect_all(r, specs)
        t0 = datetime.now(UTC)
        await plug_in(sims)
        end = t0 + timedelta(seconds=RUN_E)
        await run_until(r, end)
        why = await diagnosis(r, sims, t0, end)
        problems = []
        for cid, sim in sims.items():
            assert sim.transaction_start is not None
            since = sim.transaction_start + timedelta(seconds=5)
            share = charging_share([p for p in r.site.timeline if since <= p.t <= end], cid)
            first = first_offer_s(sim)
            if first is None or first > 15.0:
                problems.append(f"{cid}: first offer of 6 A or more after {first} s")
            if share < 0.9:
                problems.append(f"{cid} charged {share:.0%} of the time")
            if len(sim.pauses) > 1:
                problems.append(f"{cid} paused {len(sim.pauses)} times")
        if above := above_fuse(r.site, t0):
            problems.append(above)
        assert not problems, "\n".join(problems) + f"\n{why}"


# --- f. phase use learned in seconds ----------------------------------------------------------


@ONE_LOOP
async def test_phase_use_is_learned_in_seconds_from_a_triggered_report_or_the_grid_meter(
    tmp_path: Path,
) -> None:
    """Two 1-phase EVs on 3-phase chargers wired to draw on L2 and L3; L1 has room for one
    probe (24 A of base load: 6 A usable). Each is probed in turn (budgeted on every phase
    it may use, so the second waits for the first), and learned within seconds, long
    before its first periodic report (every REPORT_EVERY s): REPORTS from the report it is
    asked for (TriggerMessage MeterValues), SILENT (no Current.Import at all) from the grid
    meter's change. Then both charge on their own phase, and the API shows the house load
    the controller estimates (within 1 A of the truth)."""
    specs: dict[str, dict[str, Any]] = {
        "REPORTS": {"wiring": "L2L3L1", "ev_phases": 1},
        "SILENT": {"wiring": "L3L1L2", "ev_phases": 1, "reports_current": False},
    }
    settings = {
        "REPORTS": ChargerSettings(phases="L2L3L1"),
        "SILENT": ChargerSettings(phases="L3L1L2"),
    }
    base: Phases = (24.0, 8.0, 8.0)
    async with (
        asyncio.timeout(60 * TIME_SCALE),
        site_rig(tmp_path, fuse=FUSE, margin=MARGIN, base=base, chargers=settings) as r,
    ):
        sims = await connect_all(r, specs)
        t0 = datetime.now(UTC)
        await plug_in(sims)
        seen_probing: set[str] = set()
        deadline = t0 + timedelta(seconds=REPORT_EVERY - 1.0)
        while datetime.now(UTC) < deadline:
            state = await r.state()
            chargers = {c["chargerId"]: c for c in state["chargers"]}
            seen_probing |= {cid for cid, c in chargers.items() if c["probing"]}
            if all(c["evPhases"] == 1 for c in chargers.values()):
                break
            await asyncio.sleep(0.05)
        why = await diagnosis(r, sims, t0, datetime.now(UTC))
        assert all(c["evPhases"] == 1 for c in chargers.values()), why
        assert seen_probing == {"REPORTS", "SILENT"}, why
        assert sims["REPORTS"].triggered, "REPORTS was asked for a report"
        await asyncio.sleep(2.0)
        last = r.site.timeline[-1]
        assert drawn(last, "REPORTS") >= MIN_CHARGE_A and drawn(last, "SILENT") >= MIN_CHARGE_A
        assert last.grid_a[0] <= FUSE - MARGIN + 1e-6, why  # nothing budgeted on L1 any more
        estimate = (await r.state())["limits"]["nonEvLoadA"]
        assert all(abs(e - b) <= 1.0 for e, b in zip(estimate, base, strict=True)), estimate
