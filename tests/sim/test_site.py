"""The simulated site against the real CSMS and a real Modbus meter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from drivers import KNOWN_MODELS, ModbusMeter
from edge.app import App
from edge.sim.charger import RawCharger
from edge.sim.site import SimCharger, SimSite, step_load
from tests.conftest import Api, ocpp_url
from tests.helpers import Clock, Json, iso

TAG = "SITETAG1"
BASE = (2.0, 3.0, 4.0)


def profile(profile_id: int, purpose: str, limit: float, *, stack_level: int = 0) -> Json:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    return {
        "chargingProfileId": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "startSchedule": iso(start),
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
        },
    }


async def set_profile(api: Api, cp_id: str, sent: Json, connector_id: int = 1) -> str:
    code, body = await api.operation(
        cp_id, "SetChargingProfile", {"connectorId": connector_id, "csChargingProfiles": sent}
    )
    assert code == 200, (code, body)
    status: str = body["response"]["status"]
    return status


async def recorded(api: Api, cp_id: str) -> list[Json]:
    profiles: list[Json] = (await api.get(f"/api/chargers/{cp_id}"))["chargingProfiles"]
    return profiles


class FakeCharger:
    """Where a SimCharger puts its answers; nothing is sent (for tests without a CSMS)."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}


@pytest.fixture
async def site(app: App, api: Api) -> AsyncIterator[SimSite]:
    code, _ = await api.request("PUT", f"/api/id-tags/{TAG}", {"status": "Accepted"})
    assert code == 201
    async with SimSite(fuse_a=32.0, base_load_a=BASE) as running:
        yield running


async def test_tx_default_limits_three_phase_draw_and_meter_shows_it(
    app: App, api: Api, site: SimSite
) -> None:
    """A 10 A TxDefaultProfile makes a 3-phase EV draw 10 A per phase, seen on the Modbus meter."""
    async with asyncio.timeout(5):
        cp = await site.add_charger(ocpp_url(app, "SIM-1"), "SIM-1", rating_a=32, ev_max_a=32)
        await cp.start_session(TAG)
        assert cp.current_a(datetime.now(UTC)) == (32.0, 32.0, 32.0)
        assert await set_profile(api, "SIM-1", profile(1, "TxDefaultProfile", 10.0)) == "Accepted"
        assert cp.current_a(datetime.now(UTC)) == (10.0, 10.0, 10.0)
        await site.tick()
        meter = ModbusMeter(KNOWN_MODELS["sdm630"], host="127.0.0.1", port=site.meter_port)
        try:
            reading = await meter.read()
        finally:
            await meter.close()
        assert reading.current_a == pytest.approx((12.0, 13.0, 14.0), abs=0.01)
        assert reading.total_power_w == pytest.approx(39.0 * 230.0, rel=1e-3)
        code, body = await api.operation(
            "SIM-1", "GetCompositeSchedule", {"connectorId": 1, "duration": 60}
        )
        assert code == 200, body
        schedule = body["response"]["chargingSchedule"]
        assert schedule["chargingSchedulePeriod"][0]["limit"] == 10.0


async def test_single_phase_ev_on_rotated_wiring_draws_on_l2(
    app: App, api: Api, site: SimSite
) -> None:
    """A 1-phase EV on an L2L3L1 charger draws on physical L2 and reports it as its own L1."""
    async with asyncio.timeout(5):
        cp = await site.add_charger(
            ocpp_url(app, "SIM-2"), "SIM-2", wiring="L2L3L1", ev_phases=1, ev_max_a=16
        )
        await cp.start_session(TAG)
        point = await site.tick()
        assert cp.current_a(point.t) == (0.0, 16.0, 0.0)
        assert point.grid_a == (2.0, 19.0, 4.0)
        sent = await cp.send_meter_values(datetime.now(UTC))
        currents = {
            s["phase"]: float(s["value"])
            for s in sent["meterValue"][0]["sampledValue"]
            if s["measurand"] == "Current.Import"
        }
        assert currents == {"L1": 16.0, "L2": 0.0, "L3": 0.0}
        before = cp.energy_wh
        await site.run(0.15, step=0.05, meter_values_every=0.05)
        assert cp.energy_wh > before
        assert cp.cp.received_calls == []


async def test_limit_below_six_amps_stops_draw_and_clear_restores_it(
    app: App, api: Api, site: SimSite
) -> None:
    """A 5 A TxProfile stops the draw; clearing every profile restores the rating-limited draw."""
    async with asyncio.timeout(5):
        cp = await site.add_charger(ocpp_url(app, "SIM-3"), "SIM-3", rating_a=16, ev_max_a=32)
        await cp.start_session(TAG)
        assert await set_profile(api, "SIM-3", profile(2, "TxProfile", 5.0)) == "Accepted"
        assert cp.current_a(datetime.now(UTC)) == (0.0, 0.0, 0.0)
        code, body = await api.operation("SIM-3", "ClearChargingProfile", {})
        assert (code, body["response"]) == (200, {"status": "Accepted"})
        assert cp.current_a(datetime.now(UTC)) == (16.0, 16.0, 16.0)
        code, body = await api.operation("SIM-3", "ClearChargingProfile", {})
        assert (code, body["response"]) == (200, {"status": "Unknown"})
        await cp.stop_session()
        assert cp.current_a(datetime.now(UTC)) == (0.0, 0.0, 0.0)


async def test_quirky_charger_rejects_and_csms_does_not_record(
    app: App, api: Api, site: SimSite
) -> None:
    """A charger rejecting TxProfiles and stack levels above 3 answers Rejected; none recorded."""
    async with asyncio.timeout(5):
        cp = await site.add_charger(
            ocpp_url(app, "SIM-4"), "SIM-4", reject_purposes={"TxProfile"}, max_stack_level=3
        )
        await cp.start_session(TAG)
        assert await set_profile(api, "SIM-4", profile(3, "TxProfile", 10.0)) == "Rejected"
        high = profile(4, "TxDefaultProfile", 10.0, stack_level=4)
        assert await set_profile(api, "SIM-4", high) == "Rejected"
        assert await recorded(api, "SIM-4") == []
        assert len(cp.installed) == 0
        assert cp.current_a(datetime.now(UTC)) == (32.0, 32.0, 32.0)


async def test_reaction_delay_applies_new_limit_late(app: App, api: Api, site: SimSite) -> None:
    """With reaction_s the charger keeps its old draw until that long after the profile arrived."""
    async with asyncio.timeout(5):
        cp = await site.add_charger(ocpp_url(app, "SIM-5"), "SIM-5", reaction_s=0.5)
        await cp.start_session(TAG)
        assert await set_profile(api, "SIM-5", profile(5, "TxDefaultProfile", 10.0)) == "Accepted"
        now = datetime.now(UTC)
        assert cp.current_a(now) == (32.0, 32.0, 32.0)
        assert cp.current_a(now + timedelta(seconds=0.6)) == (10.0, 10.0, 10.0)


async def test_base_load_step_in_timeline() -> None:
    """A base-load step shows in the timeline; time_above and max_overload_a measure it."""
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    load = step_load(t0 + timedelta(seconds=2), (10.0, 10.0, 10.0), (37.0, 10.0, 10.0))
    async with asyncio.timeout(5), SimSite(fuse_a=32.0, base_load_a=load) as site:
        for s in range(5):
            await site.tick(t0 + timedelta(seconds=s))
        assert [p.grid_a[0] for p in site.timeline] == [10.0, 10.0, 37.0, 37.0, 37.0]
        assert site.time_above() == 2.0
        assert site.time_above(40.0) == 0.0
        assert site.time_above(5.0) == 4.0
        assert site.max_overload_a() == 5.0
        site.base_load_a = (1.0, 1.0, 1.0)
        points = await site.run(0.2, step=0.05)
        assert len(points) >= 2
        assert all(p.grid_a == (1.0, 1.0, 1.0) and p.fuse_a == 32.0 for p in points)


def test_a_long_run_keeps_only_the_profile_sets_that_still_matter() -> None:
    """A charger sent a lease every 10 s for an hour keeps a bounded history and still acts
    on the set `reaction_s` old, as it did with the whole history."""
    clock = Clock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    sim = SimCharger(cast(RawCharger, FakeCharger()), "SIM-LONG", reaction_s=5.0, clock=clock)
    for k in range(360):
        limit = 6.0 + k % 20
        sent = profile(900 + k % 2, "ChargePointMaxProfile", limit)
        sent["chargingSchedule"]["startSchedule"] = iso(clock.now - timedelta(minutes=1))
        assert sim._on_set({"connectorId": 0, "csChargingProfiles": sent}) == {"status": "Accepted"}
        clock.advance(10.0)
    assert len(sim._changes) <= 10
    last, before_last = 6.0 + 359 % 20, 6.0 + 358 % 20
    assert sim.limit_a(clock.now - timedelta(seconds=6))[0] == before_last
    assert sim.limit_a(clock.now)[0] == last
