"""The demo site's plan: chargers, EVs coming and going, base load; all with time passed in."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.config import ConfigError
from edge.sim.demo import DemoOptions, demo_config, id_tag
from edge.sim.demo_plan import (
    EV_MODELS,
    BaseLoad,
    VisitTiming,
    daily_shape,
    demo_chargers,
    fuse_for,
    plan_visits,
    solar_shape,
)
from edge.site.commissioning import fallback_report
from profiles.allocation import parse_wiring

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- chargers ------------------------------------------------------------------------------


def test_five_chargers_mix_one_and_three_phases_and_rotated_wiring() -> None:
    """The default five: 3-phase and 1-phase chargers, 1-phase ones off L1, a rotated 3-phase."""
    chargers = demo_chargers(5)
    assert [c.charger_id for c in chargers] == [f"DEMO0{k}" for k in range(1, 6)]
    wirings = [parse_wiring(c.wiring) for c in chargers]
    single = [w for w in wirings if len(w) == 1]
    three = [w for w in wirings if len(w) == 3]
    assert single and three
    assert any(w != (0,) for w in single)  # a 1-phase charger on L2 or L3
    assert any(w != (0, 1, 2) for w in three)  # a 3-phase charger whose L1 is not the grid's


@pytest.mark.parametrize("count", [1, 5, 6, 7, 40, 100])
def test_the_safe_values_always_fit_the_demo_fuse(count: int, tmp_path: Path) -> None:
    """However many chargers, their fallback values fit the fuse: the demo warns about nothing."""
    chargers = demo_chargers(count)
    assert len({c.charger_id for c in chargers}) == count
    config = demo_config(DemoOptions(chargers=count), chargers, data_dir=tmp_path, meter_port=1)
    fits, report = fallback_report(config)
    assert fits, report


def test_the_fuse_leaves_the_balancing_work_to_do() -> None:
    """Five chargers at full speed would need more than the fuse on some phase."""
    chargers = demo_chargers(5)
    fuse = fuse_for(chargers, fallback_a=6.0, margin_a=2.0)
    need = [0.0, 0.0, 0.0]
    for c in chargers:
        for phase in parse_wiring(c.wiring):
            need[phase] += c.rating_a
    assert max(need) > fuse


# --- the configuration ---------------------------------------------------------------------


def test_the_demo_runs_on_the_embedded_default_plus_a_meter_a_site_and_its_chargers(
    tmp_path: Path,
) -> None:
    """Ports and listen addresses stay the embedded default's unless given."""
    chargers = demo_chargers(3)
    config = demo_config(DemoOptions(), chargers, data_dir=tmp_path, meter_port=5020)
    assert (config.ocpp.host, config.ocpp.port) == ("0.0.0.0", 9000)
    assert (config.web.host, config.web.port) == ("0.0.0.0", 8080)
    assert config.ocpp.unknown_chargers == "pending"  # only the demo's chargers get in
    assert config.storage.data_dir == tmp_path
    assert config.meter is not None
    assert (config.meter.driver, config.meter.host, config.meter.port) == (
        "sdm630",
        "127.0.0.1",
        5020,
    )
    assert {cid: s.phases for cid, s in config.chargers.items()} == {
        c.charger_id: c.wiring for c in chargers
    }
    assert config.site.rotation_period < 300  # turns short enough to watch


def test_ports_and_host_given_replace_the_defaults(tmp_path: Path) -> None:
    """`--host`, `--web-port 0` and `--ocpp-port 0` reach the configuration."""
    options = DemoOptions(host="127.0.0.1", web_port=0, ocpp_port=0)
    config = demo_config(options, demo_chargers(1), data_dir=tmp_path, meter_port=5020)
    assert (config.ocpp.host, config.ocpp.port) == ("127.0.0.1", 0)
    assert (config.web.host, config.web.port) == ("127.0.0.1", 0)


def test_a_port_out_of_range_is_a_configuration_error(tmp_path: Path) -> None:
    """The demo's configuration gets the checks a file gets."""
    with pytest.raises(ConfigError, match=r"web\.port"):
        demo_config(DemoOptions(web_port=70000), demo_chargers(1), data_dir=tmp_path, meter_port=1)


def test_every_charger_has_its_own_tag() -> None:
    """Tags are per charger, so no StartTransaction is answered ConcurrentTx."""
    chargers = demo_chargers(12)
    assert len({id_tag(c) for c in chargers}) == 12


# --- visits --------------------------------------------------------------------------------


def test_visits_are_ordered_apart_and_within_the_timing() -> None:
    """One EV at a time: each stays a stay_s, the next comes an away_s after it left."""
    timing = VisitTiming()
    visits = list(itertools.islice(plan_visits(random.Random(7), T0, timing), 50))
    assert visits[0].arrive >= T0
    for visit in visits:
        stay = (visit.leave - visit.arrive).total_seconds()
        assert timing.stay_s[0] <= stay <= timing.stay_s[1]
        if visit.ev.taper_a is not None:
            assert 0 < visit.ev.taper_after_s < stay
            assert visit.ev.taper_a < visit.ev.max_a
    for before, after in itertools.pairwise(visits):
        away = (after.arrive - before.leave).total_seconds()
        assert timing.away_s[0] <= away <= timing.away_s[1]


def test_the_same_seed_plans_the_same_visits() -> None:
    """Visits depend on the generator's seed alone; another seed plans others."""
    first = list(itertools.islice(plan_visits(random.Random("1:DEMO01"), T0, VisitTiming()), 5))
    again = list(itertools.islice(plan_visits(random.Random("1:DEMO01"), T0, VisitTiming()), 5))
    other = list(itertools.islice(plan_visits(random.Random("2:DEMO01"), T0, VisitTiming()), 5))
    assert first == again
    assert first != other


def test_an_ev_plugged_at_start_arrives_within_seconds() -> None:
    """With plugged_at_start 1 the first EV arrives within start_within_s, whatever the seed."""
    timing = VisitTiming(plugged_at_start=1.0, start_within_s=3.0)
    for seed in range(50):
        first = next(plan_visits(random.Random(seed), T0, timing))
        assert T0 <= first.arrive <= at(3.0)


def test_evs_are_one_and_three_phase_and_some_taper() -> None:
    """Over a few visits the EVs mix 1- and 3-phase models, and some taper."""
    visits = list(itertools.islice(plan_visits(random.Random(3), T0, VisitTiming()), 40))
    assert {v.ev.phases for v in visits} == {1, 3}
    assert any(v.ev.taper_a is not None for v in visits)
    assert all(replace(v.ev, taper_a=None, taper_after_s=0.0) in EV_MODELS for v in visits)


# --- base load -----------------------------------------------------------------------------


def test_the_daily_shape_is_low_at_night_and_peaks_in_the_evening() -> None:
    """Night below morning below evening; a share between 0 and 1 all day."""
    shares = [daily_shape(h / 4) for h in range(96)]
    assert all(0.0 <= s <= 1.0 for s in shares)
    assert daily_shape(3.0) < daily_shape(7.5) < daily_shape(19.0)
    assert max(range(96), key=lambda h: shares[h]) / 4 == pytest.approx(19.0, abs=0.5)


def test_the_sun_shines_by_day_only() -> None:
    """PV yields nothing at night and most around 13:00."""
    assert solar_shape(2.0) == solar_shape(21.0) == 0.0
    assert solar_shape(13.0) == pytest.approx(1.0)


def test_the_base_load_is_a_function_of_time_alone() -> None:
    """Asked in any order, and by another instance with the same seed, it answers the same."""
    moments = [at(s) for s in range(0, 900, 7)]
    load = BaseLoad(start=T0, seed=4)
    forward = [load(m) for m in moments]
    backward = [BaseLoad(start=T0, seed=4)(m) for m in reversed(moments)]
    assert forward == backward[::-1]
    assert forward != [BaseLoad(start=T0, seed=5)(m) for m in moments]


def test_pv_exports_on_l1_at_midday() -> None:
    """At simulated noon, without wobble and appliances, L1 exports (negative) and L2, L3 import."""
    load = BaseLoad(start=T0, wobble_a=0.0, appliance_chance=0.0)
    noon = at((13.0 - load.start_hour) / 24.0 * load.day_s)
    assert load.hour(noon) == pytest.approx(13.0)
    l1, l2, l3 = load(noon)
    assert l1 < 0 < min(l2, l3)


def test_an_appliance_is_a_step_on_one_phase() -> None:
    """While an appliance is on, its phase carries its current on top; it ends in its slot."""
    load = BaseLoad(start=T0, seed=2, wobble_a=0.0, day_s=1e9)  # a day too long to move
    slot, appliance = next((k, a) for k in range(100) if (a := load.appliance(k)) is not None)
    start = at(slot * load.appliance_every_s)
    assert (
        start <= appliance.on < appliance.off <= start + timedelta(seconds=load.appliance_every_s)
    )
    eps = timedelta(milliseconds=1)
    before, during = load(appliance.on - eps), load(appliance.on + eps)
    step = [b - a for a, b in zip(before, during, strict=True)]
    assert step[appliance.phase] == pytest.approx(appliance.amps, abs=1e-3)
    assert sum(abs(s) for s in step) == pytest.approx(appliance.amps, abs=1e-3)
    assert load(appliance.off + eps) == pytest.approx(before, abs=1e-3)


def test_appliances_come_now_and_then() -> None:
    """About appliance_chance of the slots have one: occasional, not constant."""
    load = BaseLoad(start=T0, seed=9)
    share = sum(load.appliance(k) is not None for k in range(400)) / 400
    assert 0.45 < share < 0.75
