"""Site load balancing when things go wrong, end to end (the rig of `test_site_balancing`).

A meter that fails, a controller that dies, chargers that refuse purposes or stack
levels, an operator cap, no meter at all; and the regressions these scenarios found in
the controller while they were written (each docstring says what used to happen).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.sim.site import SimCharger, SimSite
from profiles.lease import LEASE_PROFILE_ID, SAFE_PROFILE_ID
from tests.conftest import TIME_SCALE, api_client
from tests.helpers import Json
from tests.integration.service import Service, config_toml, serve
from tests.integration.test_site_balancing import (
    CONTROL_PERIOD,
    FALLBACK,
    LEASE,
    MARGIN,
    MIN_UPDATE,
    POLL,
    SLACK,
    STALE,
    TICK,
    all_at,
    charger_entry,
    holds,
    leases,
    limit_at,
    overloads,
    points_since,
    rig,
    shares,
    show,
)

# --- 5. meter failure ---------------------------------------------------------------------------


async def test_meter_failure_puts_every_charger_at_its_safe_value_until_readings_return(
    tmp_path: Path,
) -> None:
    """The Modbus meter stops answering: within stale_after plus one control period the
    site is in fallback and every charger's lease is its safe value (6 A, at the charger
    too); readings back: the site leaves fallback and the EVs get 13.5 A again."""
    async with asyncio.timeout(25 * TIME_SCALE), rig(tmp_path) as r:
        sims = {cid: await r.ev(cid) for cid in ("A", "B")}
        await r.until(lambda s: shares(s, sims, 13.5), 8, "both EVs at 13.5 A")
        # A reading of the settled draw first: what the controller does with a reading
        # older than its EVs' draw is test_ev_draw_newer_than_the_last_meter_reading_....
        await r.steady(sims, 0.5)
        await r.until(
            lambda s: s["meter"]["reading"]["currentA"] == list(r.site.timeline[-1].grid_a),
            2, "a reading of the settled site",
        )  # fmt: skip
        await r.site.meter.stop()
        stopped = time.monotonic()
        state = await r.until(lambda s: s["state"] == "fallback", STALE + 2, "fallback")
        entered = time.monotonic() - stopped
        assert STALE - POLL - 0.1 <= entered <= STALE + CONTROL_PERIOD + SLACK, entered
        assert state["fallback"]["active"] is True and state["meter"]["stale"] is True
        assert state["fallback"]["reason"]
        assert state["meter"]["ageSeconds"] > STALE
        for cid in sims:
            entry = charger_entry(state, cid)
            assert entry["safeA"] == FALLBACK and entry["targetA"] == FALLBACK, entry
            assert entry["allocationA"] is None
        state = await r.until(lambda s: all_at(s, sims, FALLBACK), 1.0, "leases at safe value")
        assert time.monotonic() - stopped <= STALE + CONTROL_PERIOD + 0.5 + SLACK
        assert state["state"] == "fallback"

        await r.site.meter.start()
        restarted = time.monotonic()
        state = await r.until(lambda s: s["state"] == "normal", 3, "site leaves fallback")
        assert time.monotonic() - restarted <= 3 * TIME_SCALE
        assert state["fallback"]["active"] is False and state["meter"]["stale"] is False
        await r.until(lambda s: shares(s, sims, 13.5), 5, "EVs back at 13.5 A")
        assert not overloads(r.site.timeline, 32.0), show(overloads(r.site.timeline, 32.0), sims)


# --- 6. the controller dies ----------------------------------------------------------------


@asynccontextmanager
async def service(
    tmp_path: Path, meter_port: int, fuse: float, lease: float
) -> AsyncIterator[Service]:
    """The service in a subprocess, so it can die without any cleanup, on a metered site."""
    config = tmp_path / "site.toml"
    config.write_text(
        config_toml(tmp_path / "data", call_timeout=2.0)
        + f'[meter]\ndriver = "sdm630"\nhost = "127.0.0.1"\nport = {meter_port}\n'
        f"poll_interval = {POLL}\nstale_after = {STALE}\n"
        f"[site]\nmax_current = [{fuse}, {fuse}, {fuse}]\nmargin = {MARGIN}\n"
        f"fallback_current = {FALLBACK}\nlease_time = {lease}\n"
        f"min_update_interval = {MIN_UPDATE}\n"
    )
    async with serve(config, tmp_path / "service.log") as svc:
        yield svc


@pytest.mark.slow
async def test_killed_controller_leaves_chargers_at_safe_values_within_one_lease(
    tmp_path: Path,
) -> None:
    """The service is SIGKILLed while two EVs charge at 30 A leases (fuse 63 A) and a third
    charger idles at a 0 A lease. Nothing more reaches the chargers, yet the profiles they
    hold bring the two down to their 6 A safe value, each when its lease ends (within
    lease_time of the kill), and the idle one's lease, below its safe value, ends no
    earlier than theirs; at no moment is any charger unconstrained."""
    lease_time = 2.0
    async with (
        asyncio.timeout(30 * TIME_SCALE),
        SimSite(fuse_a=63.0, base_load_a=(2.0, 2.0, 2.0)) as site,
    ):
        await site.tick()
        async with (
            service(tmp_path, site.meter_port, 63.0, lease_time) as svc,
            api_client(svc.web_port) as api,
        ):
            sims: dict[str, SimCharger] = {}
            runner = asyncio.ensure_future(site.run(1e6, step=TICK, meter_values_every=TICK))
            try:
                for cid in ("A", "B"):
                    sim = await site.add_charger(svc.url(cid), cid)
                    sims[cid] = sim
                    code, _ = await api.request(
                        "PUT", f"/api/id-tags/TAG-{cid}", {"status": "Accepted"}
                    )
                    assert code in (200, 201)
                    deadline = time.monotonic() + 5 * TIME_SCALE
                    while not holds(sim, SAFE_PROFILE_ID):
                        assert time.monotonic() < deadline, "no safe profile"
                        await asyncio.sleep(0.05)
                    await sim.start_session(f"TAG-{cid}")
                deadline = time.monotonic() + 8 * TIME_SCALE
                while True:  # at 30 A, and the controller has seen them draw it
                    state = await api.get("/api/site")
                    now = datetime.now(UTC)
                    if all(
                        max(sim.current_a(now)) == 30.0
                        and charger_entry(state, cid)["leaseA"] == 30.0
                        and charger_entry(state, cid)["drawnA"] == [30.0] * 3
                        for cid, sim in sims.items()
                    ):
                        break
                    assert time.monotonic() < deadline, state
                    await asyncio.sleep(0.05)
                idle = await site.add_charger(svc.url("C"), "C")
                deadline = time.monotonic() + 5 * TIME_SCALE
                while not holds(idle, LEASE_PROFILE_ID):
                    assert time.monotonic() < deadline, "no lease on the idle charger"
                    await asyncio.sleep(0.05)
            finally:
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner
            calls_before = {cid: len(sim.cp.received_calls) for cid, sim in sims.items()}
            assert svc.proc is not None
            svc.proc.send_signal(signal.SIGKILL)
            killed = datetime.now(UTC)
            assert await asyncio.wait_for(svc.proc.wait(), 10) == -signal.SIGKILL

        ends = set()
        for cid, sim in sims.items():
            assert len(sim.cp.received_calls) == calls_before[cid], "calls after the kill"
            lease = [p for p in sim.installed if p.profile.charging_profile_id == LEASE_PROFILE_ID]
            safe = [p for p in sim.installed if p.profile.charging_profile_id == SAFE_PROFILE_ID]
            assert len(lease) == 1 and len(safe) == 1, sim.installed.to_json()
            assert safe[0].profile.valid_to is None
            assert lease[0].profile.stack_level == safe[0].profile.stack_level + 1
            valid_to = lease[0].profile.valid_to
            assert valid_to is not None
            assert 0 < (valid_to - killed).total_seconds() <= lease_time + 0.05, valid_to
            ends.add(valid_to)
            # The profiles as held, over the next three leases: the lease, then the safe
            # value, never nothing. (The composite counts whole seconds from the moment it
            # is computed for, so the sim lets a lease go up to 1 s before its validTo.)
            for k in range(int(3 * lease_time / 0.05)):
                at = killed + timedelta(seconds=k * 0.05)
                limit = limit_at(sim, at)
                assert limit is not None, f"{cid} unconstrained at {at}"
                if at < valid_to - timedelta(seconds=1):
                    assert limit == 30.0, (cid, at, limit)
                elif at < valid_to:
                    assert limit in (30.0, FALLBACK), (cid, at, limit)
                else:
                    assert limit == FALLBACK, (cid, at, limit)
        first, last = min(ends), max(ends)
        (idle_lease,) = (
            p for p in idle.installed if p.profile.charging_profile_id == LEASE_PROFILE_ID
        )
        assert idle_lease.profile.schedule.periods[0].limit == 0.0
        assert idle_lease.profile.valid_to is not None and idle_lease.profile.valid_to >= last

        # And the chargers as they run on: 60 A of EVs until a lease ends, then 12 A (36 A
        # while one has ended and the other not).
        start = datetime.now(UTC)
        await site.run(
            max(0.0, (last - start).total_seconds()) + 0.3, step=TICK, meter_values_every=None
        )
        points = points_since(site, start)
        before = [p for p in points if p.t < first - timedelta(seconds=1)]
        after = [p for p in points if p.t >= last]
        levels = ((62.0,) * 3, (38.0,) * 3, (14.0,) * 3)
        assert all(p.grid_a == (62.0, 62.0, 62.0) for p in before), show(before, sims)
        assert all(p.grid_a in levels for p in points), show(points, sims)
        assert after and all(p.grid_a == (14.0, 14.0, 14.0) for p in after), show(after, sims)


# --- 7. quirky chargers ---------------------------------------------------------------------


async def test_quirky_chargers_get_a_strategy_they_accept_and_stay_limited(
    tmp_path: Path,
) -> None:
    """A charger refusing ChargePointMaxProfile ends up on TxDefaultProfile 7/8, one
    refusing stack levels above 1 on ChargePointMaxProfile 0/1; the API lists the refusals
    as quirks, and both are held at their 14.5 A share under a 32 A fuse."""
    async with asyncio.timeout(20 * TIME_SCALE), rig(tmp_path, base=(2.0, 2.0, 2.0)) as r:
        sims = {
            "NOCPMAX": await r.ev("NOCPMAX", reject_purposes={"ChargePointMaxProfile"}),
            "LEVEL1": await r.ev("LEVEL1", max_stack_level=1),
        }
        state = await r.until(lambda s: shares(s, sims, 14.5), 8, "both limited at 14.5 A")
        nocpmax, level1 = charger_entry(state, "NOCPMAX"), charger_entry(state, "LEVEL1")
        assert nocpmax["strategy"] == "TxDefaultProfile at stack levels 7/8", nocpmax
        assert level1["strategy"] == "ChargePointMaxProfile at stack levels 0/1", level1
        assert nocpmax["controllable"] and level1["controllable"]
        assert len(nocpmax["quirks"]) == 2, nocpmax["quirks"]
        assert all("ChargePointMaxProfile" in q and "refused" in q for q in nocpmax["quirks"])
        assert "TxDefaultProfile" in nocpmax["quirks"][-1]
        assert len(level1["quirks"]) == 1 and "refused" in level1["quirks"][0], level1
        held = {
            cid: sorted(
                (p.connector_id, p.profile.purpose.value, p.profile.stack_level,
                 p.profile.charging_profile_id)
                for p in sim.installed
            )
            for cid, sim in sims.items()
        }  # fmt: skip
        assert held == {
            "NOCPMAX": [
                (0, "TxDefaultProfile", 7, SAFE_PROFILE_ID),
                (0, "TxDefaultProfile", 8, LEASE_PROFILE_ID),
            ],
            "LEVEL1": [
                (0, "ChargePointMaxProfile", 0, SAFE_PROFILE_ID),
                (0, "ChargePointMaxProfile", 1, LEASE_PROFILE_ID),
            ],
        }
        detail = await r.api.get("/api/chargers/NOCPMAX/site")
        assert detail["strategy"] == nocpmax["strategy"] and detail["quirks"] == nocpmax["quirks"]
        await asyncio.sleep(0.5)
        assert not overloads(r.site.timeline, 32.0), show(overloads(r.site.timeline, 32.0), sims)


# --- 8. operator cap ---------------------------------------------------------------------------


async def test_operator_cap_on_connector_zero_limits_the_allocation_and_delete_restores_it(
    tmp_path: Path,
) -> None:
    """Two EVs at 14.5 A (32 A fuse, base 2 A). A 10 A cap on A through POST /limits
    connector 0 holds A at 10 A and gives B the rest (19 A); DELETE gives A its share back."""
    async with asyncio.timeout(25 * TIME_SCALE), rig(tmp_path, base=(2.0, 2.0, 2.0)) as r:
        sims = {cid: await r.ev(cid) for cid in ("A", "B")}
        await r.until(lambda s: shares(s, sims, 14.5), 8, "both EVs at 14.5 A")

        code, body = await r.api.request(
            "POST", "/api/chargers/A/limits", {"connectorId": 0, "limit": 10}
        )
        assert code == 200, body
        assert body["appliedBy"] == "site" and body["cap"]["limitA"] == 10.0, body
        capped_at = datetime.now(UTC)

        def capped(state: Json) -> bool:
            a, b = charger_entry(state, "A"), charger_entry(state, "B")
            return (
                a["capA"] == 10.0
                and all_at(state, {"A": sims["A"]}, 10.0)
                and shares(state, {"B": sims["B"]}, 19.0)
                and b["capA"] is None
            )

        state = await r.until(capped, 5, "A capped at 10 A, B at 19 A")
        assert charger_entry(state, "A")["safeA"] == FALLBACK
        a_leases = leases(sims["A"], capped_at)
        assert a_leases and all(value <= 10.0 for _, value, _ in a_leases), a_leases
        detail = await r.api.get("/api/chargers/A/site")
        assert detail["capA"] == 10.0

        # connectorId=0: the cap on the whole charger (without it see
        # test_deleting_operator_limits_keeps_the_site_profiles), once B's raise is on the
        # meter too (a DELETE right after it is test_meter_lagging_the_ev_reports_...).
        await r.steady(sims, 0.5)
        code, body = await r.api.request("DELETE", "/api/chargers/A/limits?connectorId=0")
        assert code == 200, body
        assert body["cleared"][0]["appliedBy"] == "site", body
        assert body["cleared"][0]["cap"]["limitA"] == 10.0, body
        state = await r.until(lambda s: shares(s, sims, 14.5), 5, "both back at 14.5 A")
        assert charger_entry(state, "A")["capA"] is None
        assert not overloads(r.site.timeline, 32.0), show(overloads(r.site.timeline, 32.0), sims)


# --- 9. no meter: quiet -----------------------------------------------------------------------


async def test_without_a_meter_no_profile_is_ever_sent(tmp_path: Path) -> None:
    """No [meter]: a charger boots, charges and reports for a while; the CSMS sends it
    nothing at all (no SetChargingProfile), and /api/site says load balancing is off."""
    async with asyncio.timeout(15 * TIME_SCALE), rig(tmp_path, metered=False) as r:
        sim = await r.ev("QUIET")
        await asyncio.sleep(1.0)
        state = await r.state()
        assert state["enabled"] is False and state["state"] == "disabled", state
        assert "chargers" not in state
        code, body = await r.api.request("GET", "/api/chargers/QUIET/site")
        assert code == 404, body
        assert sim.set_calls == [] and sim.cp.received_calls == []
        assert max(sim.current_a(datetime.now(UTC))) == 32.0
        assert r.site.timeline[-1].grid_a == (34.0, 35.0, 36.0)


# --- regressions: bugs these tests found (all fixed by b18cf39) ------------------------------


async def test_raise_is_not_taken_back_before_the_charger_reports_its_new_draw(
    tmp_path: Path,
) -> None:
    """Chargers that report Current.Import every 10 s (real ones: 10-60 s), meter polled
    every 0.2 s, constant base load 2/3/4 A, three EVs that all fit at 9 A. Once an EV has
    been given current it should not be paused again while nothing changes. (The raised
    draw, on the meter before the charger reported it, used to count as house load: an EV
    was sent 0 A 0.2 s after its raise and kept there.)"""
    async with asyncio.timeout(20 * TIME_SCALE), rig(tmp_path, mv_every=10.0) as r:
        sims = {cid: await r.ev(cid) for cid in ("A", "B", "C")}
        await asyncio.sleep(3.0)
        sent = {cid: leases(sim) for cid, sim in sims.items()}
        paused = {}
        for cid, values in sent.items():
            first = next((i for i, (_, v, _) in enumerate(values) if v >= 6.0), None)
            assert first is not None, f"{cid} never got current: {values}"
            since = values[first][0]
            paused[cid] = [
                (f"+{(at - since).total_seconds():.2f}s", v)
                for at, v, _ in values[first:]
                if v < 6.0
            ]
        assert paused == {cid: [] for cid in sims}, paused


async def test_allocation_does_not_flip_while_a_raise_waits_for_min_update_interval(
    tmp_path: Path,
) -> None:
    """One EV alone under base load 2/3/4 A gets the 27 A that L3 leaves. While its raise
    waits for min_update_interval the EV still draws its old, lower limit; that is no
    reason to reclaim its allocation (it cannot draw what it was not sent). The
    allocation must only go up while nothing else changes. (It used to go
    27 -> 6 -> 27 -> 8 -> 27 A, one value per cycle: reclaim judged the EV against an
    allocation that min_update_interval had held back.)"""
    async with asyncio.timeout(15 * TIME_SCALE), rig(tmp_path) as r:
        sim = await r.ev("A", start=False)
        started = datetime.now(UTC)
        await sim.start_session("TAG-A")
        seen: list[float] = []
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            value = (await r.api.get("/api/chargers/A/site"))["allocationA"]
            if value and (not seen or seen[-1] != value):
                seen.append(value)
            await asyncio.sleep(0.03)
        sent = [value for _, value, _ in leases(sim, started)]
        assert seen and seen[-1] == 27.0, seen
        assert seen == sorted(seen), f"allocationA went {seen}; leases sent {sent}"


async def test_a_raise_is_not_reclaimed_before_the_charger_reports(tmp_path: Path) -> None:
    """One EV alone (32 A fuse, base 2 A: 29 A for it), capped at 10 A; its charger
    reports Current.Import rarely (here: once, at 10 A; real ones every 10-60 s). When the
    cap goes the EV is raised to 29 A. Its last report, taken at the old limit, says
    nothing about what it would draw at 29 A: the raise must stand (while nothing else
    changes) until a report shows the EV drawing less. (Reclaim used to judge that old
    report against the new limit: 29 -> 12 -> 29 -> 12 A, every 0.8 s.)"""
    async with (
        asyncio.timeout(15 * TIME_SCALE),
        rig(tmp_path, base=(2.0, 2.0, 2.0), mv_every=None) as r,
    ):
        sim = await r.ev("A")
        code, body = await r.api.request(
            "POST", "/api/chargers/A/limits", {"connectorId": 0, "limit": 10}
        )
        assert code == 200, body
        await r.until(lambda s: all_at(s, {"A": sim}, 10.0), 5, "A at 10 A")
        await sim.send_meter_values(datetime.now(UTC))  # 10 A, as limited
        await r.until(lambda s: charger_entry(s, "A")["drawnA"] == [10.0] * 3, 2, "reported")
        await asyncio.sleep(2 * POLL)
        code, body = await r.api.request("DELETE", "/api/chargers/A/limits?connectorId=0")
        assert code == 200, body
        deleted_at = datetime.now(UTC)
        await asyncio.sleep(2.0)
        given = [(f"+{(at - deleted_at).total_seconds():.2f}s", v) for at, v, _ in leases(sim)]
        after = [v for _, v, _ in leases(sim, deleted_at)]
        # A refresh at 10 A decided just before the DELETE may still arrive first.
        assert 29.0 in after, given
        raised = after.index(29.0)
        assert all(v == 29.0 for v in after[raised:]), f"the raise to 29 A taken back: {given}"


async def test_deleting_operator_limits_keeps_the_site_profiles(tmp_path: Path) -> None:
    """DELETE /api/chargers/{id}/limits without connectorId removes the operator's limits;
    it must leave the site controller's safe profile and lease alone (or have the
    controller put them back): without its safe profile a charger is unconstrained as
    soon as its lease ends, e.g. when the controller dies. (910000/910001 used to count
    as operator limits: both were cleared, and the safe profile never sent again while
    the API still showed safeInstalledA 6.0.)"""
    async with asyncio.timeout(15 * TIME_SCALE), rig(tmp_path, base=(2.0, 2.0, 2.0)) as r:
        sim = await r.ev("A")
        await r.until(lambda s: shares(s, {"A": sim}, 29.0), 6, "A at 29 A")
        code, body = await r.api.request("DELETE", "/api/chargers/A/limits")
        assert code == 200, body
        cleared = [c.get("chargingProfileId") for c in body["cleared"]]
        deleted_at = datetime.now(UTC)
        # The controller's next call (the lease refresh at the latest), and a bit more.
        await r.until(lambda _: bool(leases(sim, deleted_at)), LEASE, "a lease refresh")
        await asyncio.sleep(0.3)
        held = sorted(p.profile.charging_profile_id for p in sim.installed)
        assert held == [SAFE_PROFILE_ID, LEASE_PROFILE_ID], (
            f"DELETE cleared {cleared}; the charger holds {held}; the API says "
            f"safeInstalledA={(await r.api.get('/api/chargers/A/site'))['safeInstalledA']}"
        )


async def test_ev_draw_newer_than_the_last_meter_reading_does_not_free_capacity(
    tmp_path: Path,
) -> None:
    """The meter stops answering as the controller raises an EV to 27 A (base 2/3/4 A,
    32 A fuse: L3 at 31 A; the charger applies it 0.3 s later). Until the last reading
    is stale (here 1.5 s) the controller goes on with it, taken before the raise, while
    the EV reports its new draw: the raise must not be taken for room freed by the
    non-EV load, nor the site overloaded before the fallback comes. (The EV used to be
    raised to 31 A, then 29 A: L3 at 35 A then 33 A until the fallback.)"""
    stale_after = 1.5
    async with asyncio.timeout(15 * TIME_SCALE), rig(tmp_path, stale_after=stale_after) as r:
        sim = await r.ev("A", start=False, reaction_s=0.3)
        answer = sim.cp.answers["SetChargingProfile"]
        assert callable(answer)
        stops: list[asyncio.Future[None]] = []

        def stop_meter_on_raise(req: Json) -> Json:
            result: Json = answer(req)
            profile = req["csChargingProfiles"]
            limit = profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]
            if not stops and profile["chargingProfileId"] == LEASE_PROFILE_ID and limit >= 20:
                stops.append(asyncio.ensure_future(r.site.meter.stop()))
            return result

        sim.cp.answers["SetChargingProfile"] = stop_meter_on_raise
        await sim.start_session("TAG-A")
        await r.until(lambda s: bool(stops), 5, "a raise to 27 A")
        stopped_at = datetime.now(UTC)
        await stops[0]
        await r.until(lambda s: s["state"] == "fallback", stale_after + 2, "fallback")
        sent = [(f"+{(at - stopped_at).total_seconds():.2f}s", v) for at, v, _ in leases(sim)]
        over = overloads(points_since(r.site, stopped_at), 32.0)
        assert not over, f"{show(over, {'A': sim})}; leases sent: {sent}"


async def test_meter_lagging_the_ev_reports_does_not_overload_the_site(tmp_path: Path) -> None:
    """The meter shows the site 1 s late (an SDM630 updates its registers about once a
    second, and is polled every second in production) while the charger reports its
    current at once. One EV, 32 A fuse, base 2 A: 29 A for the EV. Capped at 10 A; when
    the cap is removed the EV gets 29 A, and must not get more while the meter catches up
    (the same mix of old reading and new report as in the meter-outage test above, here
    in normal operation). (It used to get 31 A: 33 A on every phase for 1.2 s.)"""
    async with asyncio.timeout(20 * TIME_SCALE), rig(tmp_path, base=(2.0, 2.0, 2.0)) as r:
        sim = await r.ev("A")
        code, body = await r.api.request(
            "POST", "/api/chargers/A/limits", {"connectorId": 0, "limit": 10}
        )
        assert code == 200, body
        await r.until(lambda s: all_at(s, {"A": sim}, 10.0), 5, "A at 10 A")
        await r.steady({"A": sim}, 1.2)
        r.site.meter_delay_s = 1.0  # the meter still shows 10 A: nothing changed for 1 s
        code, body = await r.api.request("DELETE", "/api/chargers/A/limits?connectorId=0")
        assert code == 200, body
        deleted_at = datetime.now(UTC)
        await asyncio.sleep(2.0)
        given = [(f"+{(at - deleted_at).total_seconds():.2f}s", v) for at, v, _ in leases(sim)]
        over = overloads(points_since(r.site, deleted_at), 32.0)
        assert not over, f"{show(over, {'A': sim})}; leases: {given}"
        assert max(v for _, v, _ in leases(sim, deleted_at)) <= 29.0, given
