"""The controller's credit for raises the meter shows before the chargers report them."""

from __future__ import annotations

from edge.site.control import ChargerControl, Ramp, ramp_credit

L123 = (0, 1, 2)


def control(wiring: tuple[int, ...] = L123, ev_phases: int | None = 3) -> ChargerControl:
    c = ChargerControl(charger_id="A", wiring=wiring, min_a=6.0, max_a=32.0)
    c.ev_phases = ev_phases
    return c


def test_a_rise_after_a_raise_is_the_ev_up_to_what_its_report_does_not_show() -> None:
    ramp = Ramp(at=0.0, limit_a=16.0, non_ev_before=(4.0, 4.0, 4.0))
    # The EV reported 6 A (before it ramped); the meter rose by 10 A: all explained.
    reported = [(control(), ramp, (6.0, 6.0, 6.0), 16.0)]
    credit = ramp_credit((14.0, 14.0, 14.0), reported)
    assert credit == (10.0, 10.0, 10.0)
    # A rise beyond the raise is the house's.
    credit = ramp_credit((30.0, 14.0, 14.0), reported)
    assert credit == (10.0, 10.0, 10.0)


def test_nothing_is_credited_once_the_report_shows_the_new_limit() -> None:
    """Then a rise of the non-EV load is a real load step and must lower the EVs."""
    ramp = Ramp(at=0.0, limit_a=8.7, non_ev_before=(4.0, 4.0, 4.0))
    drawn = (8.7, 8.7, 8.7)
    credit = ramp_credit((16.0, 4.0, 4.0), [(control(), ramp, drawn, 8.7)])
    assert credit == (0, 0, 0)


def test_credit_only_on_the_phases_the_ev_uses() -> None:
    ramp = Ramp(at=0.0, limit_a=16.0, non_ev_before=(4.0, 4.0, 4.0))
    one_phase_on_l2 = control(wiring=(1, 2, 0), ev_phases=1)
    credit = ramp_credit((14.0, 14.0, 14.0), [(one_phase_on_l2, ramp, None, 16.0)])
    assert credit == (0.0, 10.0, 0.0)


def test_an_ev_lowered_since_explains_no_more_than_its_new_limit() -> None:
    """Raised to 14.5 A, then lowered to 8.5 A once the EV may have followed: a later
    rise of the non-EV estimate beyond what 8.5 A explains is the house's."""
    ramp = Ramp(at=0.0, limit_a=14.5, non_ev_before=(2.0, 2.0, 2.0))
    credit = ramp_credit((31.0, 19.0, 19.0), [(control(), ramp, None, 8.5)])
    assert credit == (8.5, 8.5, 8.5)


def test_a_clock_ahead_shows_at_once_one_behind_only_over_time() -> None:
    ahead = control()
    for k in range(5):
        ahead.lags.append((float(k), -40.0 - k))  # reports stamped 40 s in our future
    assert ahead.clock_behind_s() == -44.0
    burst = control()
    for k in range(5):
        burst.lags.append((100.0 + k * 0.1, 600.0))  # a queue sent after being offline
    assert burst.clock_behind_s() is None
    behind = control()
    for k in range(5):
        behind.lags.append((100.0 + k * 10, 30.0 + k))  # steadily 30 s behind, over 40 s
    assert behind.clock_behind_s() == 30.0
    assert control().clock_behind_s() is None  # too few reports to judge
