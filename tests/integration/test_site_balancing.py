"""Site load balancing end to end: a real Modbus grid meter, real WebSocket chargers, a real App.

Every scenario runs the control loop as deployed (`edge.site.SiteController` inside `App`)
against `SimSite`: chargers that keep their charging profiles as real ones do and draw
what their composite limit allows, behind an SDM630 served over Modbus TCP that shows
base load + every charger's draw. Timings are short (poll 0.2 s, stale after 1 s,
lease 4 s) so the whole file runs in well under a minute per event loop.

Unless a test says otherwise the chargers report Current.Import on every tick of the
simulation, right after the meter shows the same draw: the controller then always knows
what its EVs draw. What happens when they report less often is the subject of
`test_raise_is_not_taken_back_before_the_charger_reports_its_new_draw`.

Failures (meter, controller, quirky chargers), operator caps and the regressions these
scenarios found are in `test_site_failures`, on the same rig.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.app import App
from edge.config import ChargerSettings, Config, MeterConfig, SiteConfig, UpstreamConfig
from edge.sim.site import Phases, SimCharger, SimSite, SitePoint, step_load
from profiles.lease import LEASE_PROFILE_ID, SAFE_PROFILE_ID
from tests.conftest import TIME_SCALE, Api, api_client, make_config, ocpp_url
from tests.helpers import Json

TICK = 0.1  # s between two simulation ticks (meter update, Current.Import report)
POLL = 0.2  # meter poll_interval
STALE = 1.0  # meter stale_after
LEASE = 4.0  # site lease_time: refreshed every LEASE / 2
MIN_UPDATE = 0.5  # site min_update_interval
MARGIN = 1.0
FALLBACK = 6.0
CONTROL_PERIOD = POLL + 0.02  # a reading every POLL, then WAKE_COALESCE before the cycle
SLACK = 0.35 * TIME_SCALE  # scheduling jitter on a shared 2-core machine
EPS = 0.05  # limits are multiples of 0.1 A
HYSTERESIS = 1.0  # SiteConfig.hysteresis (default)
STEADY_WINDOW = 1.5 * LEASE / 2  # s watched in steady state: 1 or 2 lease refreshes


# --- the rig: SimSite + App + API, with the site ticking in the background -------------------


@dataclass
class Rig:
    site: SimSite
    app: App
    api: Api
    metered: bool
    mv_every: float | None
    runner: asyncio.Task[Any] | None = None
    sims: dict[str, SimCharger] = field(default_factory=dict)

    # -- the simulation ----------------------------------------------------------------------

    def start(self, mv_every: float | None = None) -> None:
        """Tick the site every TICK in the background (chargers report every `mv_every`)."""
        assert self.runner is None or self.runner.done()
        every = self.mv_every if mv_every is None else mv_every
        self.runner = asyncio.ensure_future(self.site.run(1e6, step=TICK, meter_values_every=every))

    async def stop(self) -> None:
        if self.runner is not None:
            self.runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.runner
            self.runner = None

    def check_runner(self) -> None:
        if self.runner is not None and self.runner.done() and not self.runner.cancelled():
            self.runner.result()  # raises what killed the simulation
            raise AssertionError("the simulation stopped")

    async def ev(self, charger_id: str, *, start: bool = True, **kwargs: Any) -> SimCharger:
        """Connect a charger, wait for its safe profile (metered site), start a session
        with the tag TAG-<charger_id> (`start`)."""
        sim = await self.site.add_charger(ocpp_url(self.app, charger_id), charger_id, **kwargs)
        self.sims[charger_id] = sim
        tag = f"TAG-{charger_id}"
        code, body = await self.api.request("PUT", f"/api/id-tags/{tag}", {"status": "Accepted"})
        assert code in (200, 201), (code, body)
        if self.metered:
            # A charger fresh out of the box is not limited: real ones are connected long
            # before an EV arrives, so let the controller install its profiles first.
            await self.until(lambda _: holds(sim, SAFE_PROFILE_ID), 5, f"{charger_id} safe")
        if start:
            await sim.start_session(tag)
        return sim

    # -- the API ---------------------------------------------------------------------------

    async def state(self) -> Json:
        data: Json = await self.api.get("/api/site")
        return data

    async def until(
        self, check: Callable[[Json], bool], timeout: float, what: str, *, every: float = 0.05
    ) -> Json:
        """Poll GET /api/site until `check(state)` holds; fail after `timeout` s (scaled)."""
        deadline = time.monotonic() + timeout * TIME_SCALE
        while True:
            self.check_runner()
            state = await self.state()
            if check(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout} s: {what}\n{brief(state, self)}")
            await asyncio.sleep(every)

    async def steady(self, sims: Mapping[str, SimCharger], hold: float) -> Json:
        """Wait until no lease has changed for `hold` s; the state at the end of it."""
        since = time.monotonic()
        last: list[float | None] | None = None
        while True:
            state = await self.until(lambda _: True, 1, "site state")
            current = [charger_entry(state, cid)["leaseA"] for cid in sims]
            if current != last:
                last, since = current, time.monotonic()
            elif time.monotonic() - since >= hold:
                return state
            assert time.monotonic() - since < hold + 5 * TIME_SCALE, brief(state, self)
            await asyncio.sleep(0.05)


def charger_entry(state: Json, charger_id: str) -> Json:
    for entry in state["chargers"]:
        if entry["chargerId"] == charger_id:
            result: Json = entry
            return result
    raise AssertionError(f"{charger_id} not in {[c['chargerId'] for c in state['chargers']]}")


def brief(state: Json, rig: Rig) -> str:
    """The parts of the site state worth printing when a test fails."""
    now = datetime.now(UTC)
    lines = [
        f"state={state.get('state')} meter={state.get('meter', {}).get('reading')} "
        f"limits={state.get('limits')} waiting={state.get('waiting')} notes={state.get('notes')}"
    ]
    for entry in state.get("chargers", []):
        sim = rig.sims.get(entry["chargerId"])
        lines.append(
            f"  {entry['chargerId']}: alloc={entry['allocationA']} target={entry['targetA']} "
            f"lease={entry['leaseA']} safe={entry['safeA']} drawn={entry['drawnA']} "
            f"evPhases={entry['evPhases']} strategy={entry['strategy']} quirks={entry['quirks']}"
            + (f" | at charger: limit={sim.limit_a(now)} draw={sim.current_a(now)}" if sim else "")
        )
    return "\n".join(lines)


def holds(sim: SimCharger, profile_id: int) -> bool:
    """Whether the charger holds the profile and acts on it already (see `reaction_s`)."""
    held = sim.effective(datetime.now(UTC))
    return any(p.profile.charging_profile_id == profile_id for p in held)


def limit_at(sim: SimCharger, at: datetime) -> float | None:
    return sim.limit_a(at)[0]


def near(a: float | None, b: float) -> bool:
    return a is not None and abs(a - b) < EPS


def leases(sim: SimCharger, since: datetime | None = None) -> list[tuple[datetime, float, str]]:
    """(arrival, limit, status) of every lease the charger received since `since`."""
    return [
        (at, req["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"],
         status)
        for at, req, status in sim.set_calls
        if req["csChargingProfiles"]["chargingProfileId"] == LEASE_PROFILE_ID
        and (since is None or at >= since)
    ]  # fmt: skip


def points_since(site: SimSite, since: datetime) -> list[SitePoint]:
    return [p for p in site.timeline if p.t >= since]


def overloads(points: Sequence[SitePoint], limit: float) -> list[SitePoint]:
    return [p for p in points if max(p.grid_a) > limit + 1e-6]


def show(points: Sequence[SitePoint], sims: Mapping[str, SimCharger] | None = None) -> str:
    """Points as 'seconds [L1, L2, L3]', with each charger's draw at that moment."""

    def one(p: SitePoint) -> str:
        text = f"{p.t:%S.%f}"[:-4] + f" {[round(a, 1) for a in p.grid_a]}"
        if sims:
            text += " (" + " ".join(f"{c}={max(s.current_a(p.t))}" for c, s in sims.items()) + ")"
        return text

    return ", ".join(one(p) for p in points[:20])


@asynccontextmanager
async def running_app(config: Config) -> AsyncIterator[App]:
    """`App` as a context that does not hand the test's failure to the App's task group
    (which would wrap an AssertionError in an ExceptionGroup)."""
    app = App(config)
    await app.__aenter__()
    try:
        yield app
    finally:
        await app.__aexit__(None, None, None)


@asynccontextmanager
async def rig(
    tmp_path: Path,
    *,
    fuse: float = 32.0,
    base: Phases | Callable[[datetime], Phases] = (2.0, 3.0, 4.0),
    wirings: Mapping[str, str] | None = None,
    chargers: Mapping[str, ChargerSettings] | None = None,
    metered: bool = True,
    mv_every: float | None = TICK,
    stale_after: float = STALE,
    meter_delay: float = 0.0,
    noise_a: float = 0.0,
    seed: int = 1,
    poll: float = POLL,
    margin: float = MARGIN,
    lease: float = LEASE,
    min_update: float = MIN_UPDATE,
    upstream: UpstreamConfig | None = None,
    **site: Any,
) -> AsyncIterator[Rig]:
    """A SimSite (meter first: its port goes into the config), the App, an API client.

    `wirings` (charger id → phases) or `chargers` (full settings) configure chargers;
    `mv_every` None lets each SimCharger report on its own schedule; `upstream` links the
    site to a cloud; the rest of `site` goes to SiteConfig.
    """
    async with AsyncExitStack() as stack:
        sim_site = await stack.enter_async_context(
            SimSite(
                fuse_a=fuse, base_load_a=base, meter_delay_s=meter_delay, noise_a=noise_a,
                seed=seed,
            )
        )  # fmt: skip
        await sim_site.tick()
        config = make_config(tmp_path / "data")
        if metered:
            config = replace(
                config,
                meter=MeterConfig(
                    driver="sdm630",
                    host="127.0.0.1",
                    port=sim_site.meter_port,
                    poll_interval=poll,
                    stale_after=stale_after,
                ),
                site=SiteConfig(
                    max_current=(fuse, fuse, fuse),
                    margin=margin,
                    fallback_current=FALLBACK,
                    lease_time=lease,
                    min_update_interval=min_update,
                    **site,
                ),
            )
        settings = dict(chargers or {})
        settings.update({cid: ChargerSettings(phases=w) for cid, w in (wirings or {}).items()})
        if settings:
            config = replace(config, chargers=settings)
        if upstream is not None:
            config = replace(config, upstream=upstream)
        app = await stack.enter_async_context(running_app(config))
        api = await stack.enter_async_context(api_client(app.web_port))
        running = Rig(sim_site, app, api, metered, mv_every)
        stack.push_async_callback(running.stop)
        running.start()
        yield running


def all_at(state: Json, sims: Mapping[str, SimCharger], value: float) -> bool:
    """Every charger's lease is `value` and the charger applies and draws it."""
    return shares(state, sims, value, hysteresis=0.0)


def shares(
    state: Json, sims: Mapping[str, SimCharger], share: float, *, hysteresis: float = HYSTERESIS
) -> bool:
    """Every charger has a lease of `share` A, give or take what the hysteresis lets the
    allocation keep (a lower previous limit less than `hysteresis` away is kept), applies
    it and draws it; together they use at least 95 % of what the shares add up to."""
    now = datetime.now(UTC)
    total = 0.0
    lowest = share - hysteresis + (0.1 if hysteresis else 0.0) - EPS
    for cid, sim in sims.items():
        lease = charger_entry(state, cid)["leaseA"]
        if lease is None or not lowest <= lease <= share + EPS:
            return False
        if not near(limit_at(sim, now), lease):
            return False
        if max(sim.current_a(now)) != pytest.approx(lease if lease >= 6 else 0.0):
            return False
        total += lease
    return total >= 0.95 * share * len(sims) - EPS


# --- 1. steady load ----------------------------------------------------------------------------


async def test_steady_load_fills_the_headroom_under_the_fuse_with_one_refresh_per_half_lease(
    tmp_path: Path,
) -> None:
    """Three 3-phase EVs under a 32 A fuse with base load 2/3/4 A: they share what L3 leaves
    (32 - 1 - 4 = 27 A: 9 A each); the site stays under the fuse; in steady state each
    charger gets only the lease refresh once every LEASE/2, at an unchanged value, each a
    whole lease long, and the lease never lapses to the safe value at the charger."""
    async with asyncio.timeout(25 * TIME_SCALE), rig(tmp_path) as r:
        sims = {cid: await r.ev(cid) for cid in ("A", "B", "C")}
        headroom = 32.0 - MARGIN - 4.0
        await r.until(lambda s: shares(s, sims, 9.0), 8, "all three EVs at 9 A")
        state = await r.steady(sims, 0.5)
        lease = {cid: charger_entry(state, cid)["leaseA"] for cid in sims}
        assert shares(state, sims, 9.0), brief(state, r)
        assert state["state"] == "normal" and state["waiting"] == []
        assert state["limits"]["capacityA"] == pytest.approx([29.0, 28.0, 27.0], abs=0.01)

        window_start = datetime.now(UTC)
        await asyncio.sleep(STEADY_WINDOW)
        window = points_since(r.site, window_start)
        window_end = window[-1].t

        assert len(window) >= STEADY_WINDOW / TICK / 2, "the simulation did not tick"
        assert not overloads(r.site.timeline, 32.0), show(overloads(r.site.timeline, 32.0), sims)
        for p in window:
            ev_on_l3 = p.grid_a[2] - 4.0
            assert ev_on_l3 >= 0.95 * headroom, f"EVs use {ev_on_l3} of {headroom} A at {p}"
            for cid, sim in sims.items():
                assert near(limit_at(sim, p.t), lease[cid]), f"{cid} not at its lease at {p.t}"
        half = LEASE / 2
        for cid, sim in sims.items():
            calls = [c for c in sim.set_calls if window_start <= c[0] <= window_end]
            ids = [c[1]["csChargingProfiles"]["chargingProfileId"] for c in calls]
            assert ids == [LEASE_PROFILE_ID] * len(ids), f"{cid}: {ids}"
            # One refresh per half lease the window spans (1.5 half leases: 1 or 2).
            refreshes = (math.floor(STEADY_WINDOW / half), math.ceil(STEADY_WINDOW / half))
            assert refreshes[0] <= len(calls) <= refreshes[1], f"{cid}: {len(calls)} calls"
            for at, req, status in calls:
                profile = req["csChargingProfiles"]
                assert status == "Accepted"
                limit = profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]
                assert limit == lease[cid], (cid, limit, lease)
                # Above the safe value (a falling lease): a whole lease from when it was
                # sent (the call arrives a little later).
                valid_to = datetime.fromisoformat(profile["validTo"].replace("Z", "+00:00"))
                ends_in = (valid_to - at).total_seconds()
                assert LEASE - SLACK < ends_in <= LEASE + 1e-3, (cid, at, valid_to)


# --- 2. a base-load step ---------------------------------------------------------------------


async def test_base_load_step_lowers_evs_within_a_control_period_and_they_get_it_back(
    tmp_path: Path,
) -> None:
    """Two EVs at 14.5 A under a 32 A fuse (base 2 A); 12 A more base load on L1 puts L1
    at 43 A. The overload lasts at most one control period plus the chargers' reaction
    time (0.3 s); then the site stays under the fuse with the EVs at (32-1-14)/2 = 8.5 A;
    when the load goes away they get 14.5 A back. (For a while the credit a raise got
    on the meter outlived a later lowering: the step was taken for the EVs' ramp and they
    went 8.5 -> 14.5 -> 8.5 A every second, L1 at 43 A half the time.)"""
    reaction = 0.3
    low, high = (2.0, 2.0, 2.0), (14.0, 2.0, 2.0)
    async with asyncio.timeout(30 * TIME_SCALE), rig(tmp_path, base=low) as r:
        sims = {cid: await r.ev(cid) for cid in ("A", "B")}
        await r.until(lambda s: shares(s, sims, 14.5), 8, "both EVs at 14.5 A")
        await r.steady(sims, reaction + 0.2)
        for sim in sims.values():
            sim.reaction_s = reaction  # from now on: no lease changed for longer than that

        # Just after a lease refresh (on the grid of LEASE/2 s), so a controller that only
        # acted at refreshes would miss the bound below by far.
        half = LEASE / 2
        step_at = datetime.fromtimestamp((math.floor(time.time() / half) + 1) * half + 0.3, UTC)
        r.site.base_load_a = step_load(step_at, low, high)
        await asyncio.sleep((step_at - datetime.now(UTC)).total_seconds() + 2.2)
        after = points_since(r.site, step_at)
        over = overloads(after, 32.0)
        assert over, "the step must overload the site before the controller reacts"
        bound = CONTROL_PERIOD + reaction + TICK + SLACK
        assert (over[-1].t - step_at).total_seconds() <= bound, (
            f"above the fuse until +{(over[-1].t - step_at).total_seconds():.2f} s after the "
            f"step (bound {bound:.2f} s): {show(over, sims)}"
        )
        assert all(max(p.grid_a) <= 43.0 + 1e-6 for p in after), "EVs never draw more"
        state = await r.until(lambda s: shares(s, sims, 8.5), 2, "both EVs lowered to 8.5 A")
        assert state["limits"]["capacityA"][0] == pytest.approx(17.0, abs=0.01)
        l1 = state["meter"]["reading"]["currentA"][0]
        assert 14.0 + 0.95 * 17.0 <= l1 <= 32.0 - MARGIN + 1e-6, l1

        back_at = datetime.now(UTC) + timedelta(seconds=0.1)
        r.site.base_load_a = step_load(back_at, high, low)
        await r.until(lambda s: shares(s, sims, 14.5), 6, "both EVs back at 14.5 A")
        late = overloads(points_since(r.site, step_at + timedelta(seconds=bound)), 32.0)
        assert not late, show(late, sims)
        assert not overloads(points_since(r.site, step_at - timedelta(seconds=5)), 43.0)


async def test_lowering_does_not_pause_evs_that_apply_limits_late(tmp_path: Path) -> None:
    """The same step with chargers that apply a new limit 0.6 s after accepting it: 8.5 A
    each fits after the step, so no EV should ever be sent less than that. (The reported
    draw used to be capped at the new lease as soon as it was accepted: the EVs' not yet
    lowered draw counted as house load, and both EVs were sent 0 A.)"""
    reaction = 0.6
    low, high = (2.0, 2.0, 2.0), (14.0, 2.0, 2.0)
    async with asyncio.timeout(20 * TIME_SCALE), rig(tmp_path, base=low) as r:
        sims = {cid: await r.ev(cid) for cid in ("A", "B")}
        await r.until(lambda s: shares(s, sims, 14.5), 8, "both EVs at 14.5 A")
        await r.steady(sims, reaction + 0.2)
        for sim in sims.values():
            sim.reaction_s = reaction
        step_at = datetime.now(UTC) + timedelta(seconds=0.2)
        r.site.base_load_a = step_load(step_at, low, high)
        await asyncio.sleep(1.5)
        sent = {
            cid: [(f"+{(at - step_at).total_seconds():.2f}s", value) for at, value, _ in got]
            for cid, got in ((cid, leases(sim, step_at)) for cid, sim in sims.items())
        }
        assert all(value >= 8.5 - HYSTERESIS for got in sent.values() for _, value in got), sent


# --- 3. more EVs than capacity ---------------------------------------------------------------


async def test_more_evs_than_capacity_wait_at_zero_and_take_turns(tmp_path: Path) -> None:
    """A 16 A fuse fits two EVs at their 6 A minimum, not four: two charge, two wait at
    0 A (listed in `waiting`); with a 0.6 s rotation period (and dwell times scaled down
    with it) every EV charges in turn, never more than two at once, never above the fuse."""
    rotation = 0.6
    async with (
        asyncio.timeout(30 * TIME_SCALE),
        rig(
            tmp_path,
            fuse=16.0,
            base=(0.0, 0.0, 0.0),
            rotation_period=rotation,
            min_run_time=rotation / 2,
            min_pause_time=rotation / 4,
        ) as r,
    ):
        sims = {cid: await r.ev(cid) for cid in ("A", "B", "C", "D")}

        def two_charge_two_wait(state: Json) -> bool:
            now = datetime.now(UTC)
            waiting = set(state["waiting"])
            if len(waiting) != 2 or len(state["chargers"]) != 4:
                return False
            for cid, sim in sims.items():
                entry = charger_entry(state, cid)
                if entry["waiting"] != (cid in waiting):
                    return False
                charging = max(sim.current_a(now)) > 0
                if cid in waiting and (entry["leaseA"] != 0.0 or charging):
                    return False
                if cid not in waiting and not near(entry["leaseA"], 7.5):
                    return False
            return True

        state = await r.until(two_charge_two_wait, 8, "two EVs at 7.5 A, two waiting at 0 A")
        assert any("wait for their minimum" in note for note in state["notes"])
        assert state["limits"]["fallbackFits"] is False
        assert len(state["limits"]["fallbackZeroed"]) == 2

        start = datetime.now(UTC)
        await asyncio.sleep(5 * rotation)
        window = points_since(r.site, start)
        turns: list[frozenset[str]] = []
        for p in window:
            charging = frozenset(c for c, s in sims.items() if max(s.current_a(p.t)) > 0)
            assert len(charging) <= 2, f"{sorted(charging)} charge at once at {p.t}"
            if not turns or turns[-1] != charging:
                turns.append(charging)
        assert set().union(*turns) == set(sims), f"turns taken: {turns}"
        assert not overloads(r.site.timeline, 16.0), show(overloads(r.site.timeline, 16.0), sims)


# --- 4. 1-phase EVs on rotated wiring -------------------------------------------------------


async def test_single_phase_evs_are_learned_and_their_free_phases_go_to_others(
    tmp_path: Path,
) -> None:
    """1-phase EVs on chargers wired L2L3L1 (draws on L2), L3L1L2 (L3) and a 1-phase
    charger on L2, next to a 3-phase EV, under 32 A (31 A usable, no base load). Once the
    controller has learned the 1-phase EVs it budgets them on one phase only: L2 is
    shared by R2, S2 and T, and R3 gets what T leaves of L3 (about 20 A), where budgeting
    every EV on every wired phase gives each at most 31/4 = 7.75 A. L2 and L3 are used to
    at least 95 %, never beyond the fuse. (How evenly L2 is shared depends on the path
    the allocations took, through the hysteresis, and is not checked here.)"""
    wirings = {"R2": "L2L3L1", "R3": "L3L1L2", "S2": "L2", "T": "L1L2L3"}
    usable = 32.0 - MARGIN
    async with (
        asyncio.timeout(25 * TIME_SCALE),
        rig(tmp_path, base=(0.0, 0.0, 0.0), wirings=wirings) as r,
    ):
        sims = {
            "R2": await r.ev("R2", wiring="L2L3L1", ev_phases=1),
            "R3": await r.ev("R3", wiring="L3L1L2", ev_phases=1),
            "S2": await r.ev("S2", wiring="L2", ev_phases=1),
            "T": await r.ev("T", wiring="L1L2L3", ev_phases=3),
        }

        def learned(state: Json) -> bool:
            entries = {cid: charger_entry(state, cid) for cid in sims}
            if {cid: e["evPhases"] for cid, e in entries.items()} != {
                "R2": 1, "R3": 1, "S2": 1, "T": 3
            }:  # fmt: skip
                return False
            now = datetime.now(UTC)
            applied = all(
                e["leaseA"] is not None and near(limit_at(sims[cid], now), e["leaseA"])
                for cid, e in entries.items()
            )
            grid = r.site.timeline[-1].grid_a
            return applied and grid[1] >= 0.95 * usable and grid[2] >= 0.95 * usable

        state = await r.until(learned, 8, "phase use learned, free phases handed out")
        now = datetime.now(UTC)
        lease = {cid: charger_entry(state, cid)["leaseA"] for cid in sims}
        assert all(value >= 6.0 for value in lease.values()), lease
        assert 0.95 * usable <= lease["R2"] + lease["S2"] + lease["T"] <= usable + 1e-6, lease
        assert 0.95 * usable <= lease["R3"] + lease["T"] <= usable + 1e-6, lease
        assert lease["R3"] > usable / 4 + 5.0, "R3 gets what T leaves of L3"
        assert sims["R2"].current_a(now) == (0.0, lease["R2"], 0.0)
        assert sims["R3"].current_a(now) == (0.0, 0.0, lease["R3"])
        assert sims["S2"].current_a(now) == (0.0, lease["S2"], 0.0)
        assert sims["T"].current_a(now) == (lease["T"],) * 3
        assert charger_entry(state, "S2")["phases"] == "L2"
        assert charger_entry(state, "R3")["phases"] == "L3L1L2"
        await asyncio.sleep(0.5)
        assert not overloads(r.site.timeline, 32.0), show(overloads(r.site.timeline, 32.0), sims)


# --- 9. dwell times ---------------------------------------------------------------------------


async def test_a_paused_ev_stays_paused_for_min_pause_time_and_pauses_are_counted(
    tmp_path: Path,
) -> None:
    """Two EVs under a 16 A fuse; 6 A more base load leaves room for one minimum: one EV
    pauses (counted in `pauses`). The load goes again at once, yet the paused EV waits out
    `min_pause_time` before it charges again; the other never pauses."""
    min_pause = 2.0
    low, high = (0.0, 0.0, 0.0), (6.0, 6.0, 6.0)
    async with (
        asyncio.timeout(30 * TIME_SCALE),
        rig(tmp_path, fuse=16.0, base=low, min_run_time=0.5, min_pause_time=min_pause) as r,
    ):
        sims = {cid: await r.ev(cid) for cid in ("A", "B")}
        await r.until(lambda s: all(charger_entry(s, c)["leaseA"] for c in sims), 8, "both")
        await asyncio.sleep(0.6)  # past min_run_time: either may be paused now
        r.site.base_load_a = lambda now: high

        def one_paused(state: Json) -> bool:
            return sorted(charger_entry(state, c)["pauses"] for c in sims) == [0, 1]

        state = await r.until(one_paused, 5, "one EV paused")
        paused_at = datetime.now(UTC)
        [paused] = [c for c in sims if charger_entry(state, c)["pauses"] == 1]
        r.site.base_load_a = lambda now: low
        await r.until(lambda s: (charger_entry(s, paused)["leaseA"] or 0) >= 6, 8, "it resumes")
        resumed_at = datetime.now(UTC)
        assert (resumed_at - paused_at).total_seconds() >= min_pause - TICK - POLL
        early = [
            p for p in points_since(r.site, paused_at + timedelta(seconds=0.5))
            if (p.t - paused_at).total_seconds() < min_pause - TICK - POLL
            and max(sims[paused].current_a(p.t)) > 0
        ]  # fmt: skip
        assert not early, f"{paused} charged again before its pause was over"
        final = await r.api.get("/api/site")
        assert one_paused(final), "one pause, counted once; the other EV never paused"
        assert not overloads(points_since(r.site, paused_at + timedelta(seconds=1)), 16.0)
