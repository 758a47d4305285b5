"""Phase probes: when to ask a charger for a report, and what the grid meter shows."""

from __future__ import annotations

from edge.site.control import ChargerControl, MeterProbe
from edge.site.probe import (
    PROBE_DELAY,
    PROBE_TRIGGERS,
    PROBE_WINDOW,
    learn_all_from_meter,
    learn_from_meter,
    start_meter_probe,
    trigger_due,
)

L231 = (1, 2, 0)  # a 3-phase charger wired to draw on L2 first
BASE = (24.0, 8.0, 8.0)


def probing(**kwargs: object) -> ChargerControl:
    control = ChargerControl(charger_id="P", wiring=L231, min_a=6.0, max_a=32.0)
    control.transactions = frozenset({1})
    control.steerable = True
    control.changed_at = 100.0
    control.meter_probe = MeterProbe(100.0, BASE, 6.0)
    for key, value in kwargs.items():
        setattr(control, key, value)
    return control


def test_a_probe_is_asked_for_a_report_once_its_ev_had_time_to_start() -> None:
    control = probing()
    assert not trigger_due(control, 6.0, 100.0 + PROBE_DELAY - 0.1)
    assert trigger_due(control, 6.0, 100.0 + PROBE_DELAY)
    assert not trigger_due(control, 0.0, 200.0), "at 0 A there is nothing to see"
    assert not trigger_due(probing(ev_phases=1), 6.0, 200.0), "known already"
    assert not trigger_due(probing(triggers_work=False), 6.0, 200.0)
    assert not trigger_due(probing(probe_triggers=PROBE_TRIGGERS), 6.0, 200.0)
    assert not trigger_due(probing(probe_next_at=201.0), 6.0, 200.0)


def test_the_meter_shows_a_one_phase_ev_on_its_first_wired_phase_only() -> None:
    read_at = 100.0 + PROBE_DELAY + 2.0
    one = learn_from_meter(probing(), (24.2, 14.0, 8.3), read_at, frozenset())
    assert one == 1
    three = learn_from_meter(probing(), (30.0, 14.0, 14.0), read_at, frozenset())
    assert three == 3
    assert learn_from_meter(probing(), (24.0, 8.5, 8.0), read_at, frozenset()) is None  # idle
    assert learn_from_meter(probing(), (24.0, 14.0, 8.0), 101.0, frozenset()) is None  # early


def test_phases_another_charger_changed_meanwhile_are_not_judged() -> None:
    read_at = 100.0 + PROBE_DELAY + 2.0
    # Another EV raised on L3: L1 alone says the probe is 1-phase.
    assert learn_from_meter(probing(), (24.0, 14.0, 18.0), read_at, frozenset({2})) == 1
    # Its own first phase busy, or no other phase left to judge: wait.
    assert learn_from_meter(probing(), (24.0, 14.0, 8.0), read_at, frozenset({1})) is None
    assert learn_from_meter(probing(), (24.0, 14.0, 8.0), read_at, frozenset({0, 2})) is None


def test_a_probe_that_never_shows_ends_and_stays_budgeted_on_every_phase() -> None:
    control = probing()
    assert learn_from_meter(control, BASE, 100.0 + PROBE_WINDOW + 1, frozenset()) is None
    assert control.meter_probe is None and control.ev_phases is None


def test_a_silent_probe_is_judged_without_the_phases_others_changed_meanwhile() -> None:
    """Another EV (1-phase on L3) was raised after the probe started: L3 says nothing
    about the probe, L1 alone shows it is 1-phase."""
    probe = probing()
    other = ChargerControl(charger_id="O", wiring=(2,), min_a=6.0, max_a=32.0)
    other.ev_phases = 1
    other.changed_at = 101.0
    learned = learn_all_from_meter(
        [probe, other], (24.0, 14.0, 18.0), 100.0 + PROBE_DELAY + 2.0, now=106.0
    )
    assert learned == [(probe, 1)] and probe.ev_phases == 1 and probe.meter_probe is None


def test_a_probe_starts_only_when_a_lease_lets_an_unknown_ev_draw() -> None:
    control = probing(meter_probe=None)
    start_meter_probe(control, 0.0, 6.0, BASE, 200.0)
    assert control.meter_probe == MeterProbe(200.0, BASE, 6.0)
    for before, after, phases in ((6.0, 10.0, None), (0.0, 3.0, None), (0.0, 6.0, 3)):
        other = probing(meter_probe=None, ev_phases=phases)
        start_meter_probe(other, before, after, BASE, 200.0)
        assert other.meter_probe is None
