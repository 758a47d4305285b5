"""Site load allocation: per-phase fair limits, admission, hysteresis, reclaim, fallback."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profiles.allocation import (
    Allocation,
    SafeCharger,
    Session,
    SiteState,
    allocate,
    floor_step,
    learn_phases,
    non_ev_load,
    parse_wiring,
    safe_allocation,
    used_phases,
)

L123 = (0, 1, 2)
L231 = (1, 2, 0)
L312 = (2, 0, 1)
ONLY_L1 = (0,)
ONLY_L2 = (1,)
ONLY_L3 = (2,)
TOL = 1e-6


def ev(cid: str, wiring: tuple[int, ...] = L123, **kw: Any) -> Session:
    """A session on connector 1 of charger ``cid``."""
    kw.setdefault("max_a", 32.0)
    return Session(cid, 1, wiring, **kw)


def site(
    limit: float = 32.0, margin: float = 0.0, meter: tuple[float, ...] = (0, 0, 0)
) -> SiteState:
    return SiteState((limit, limit, limit), margin, (meter[0], meter[1], meter[2]))


def limits(result: Allocation) -> dict[str, float]:
    return {cid: a for (cid, _), a in result.limits_a.items()}


# --- scenario tables ---------------------------------------------------------------

ALONE = [
    # limit, margin, max_a, expected: min(max, limit - margin)
    (32.0, 2.0, 16.0, 16.0),  # the EV's maximum binds
    (32.0, 2.0, 32.0, 30.0),  # the fuse minus margin binds
    (20.0, 2.5, 32.0, 17.5),
    (7.0, 2.0, 32.0, 0.0),  # 5 A left: below the 6 A minimum → waits
]


@pytest.mark.parametrize(("limit", "margin", "max_a", "expected"), ALONE)
def test_one_ev_alone(limit: float, margin: float, max_a: float, expected: float) -> None:
    """One EV alone gets min(max, capacity), or 0 if that is below its minimum."""
    result = allocate(site(limit, margin), [ev("A", max_a=max_a)], now=0)
    assert limits(result) == {"A": expected}


def test_two_equal_evs_split_evenly() -> None:
    """Two equal EVs share the capacity evenly."""
    result = allocate(site(32, 2), [ev("A"), ev("B")], now=0)
    assert limits(result) == {"A": 15.0, "B": 15.0}


WEIGHTS = [
    # weights, max_a, expected limits (capacity 30 A)
    ((2.0, 1.0), (32.0, 32.0), (20.0, 10.0)),
    ((1.0, 3.0), (32.0, 32.0), (7.5, 22.5)),
    ((3.0, 1.0), (12.0, 32.0), (12.0, 18.0)),  # A capped at its max, B takes the rest
    ((5.0, 1.0), (32.0, 32.0), (24.0, 6.0)),  # B's minimum holds against the weight
]


@pytest.mark.parametrize(("weights", "max_a", "expected"), WEIGHTS)
def test_weights(
    weights: tuple[float, float], max_a: tuple[float, float], expected: tuple[float, float]
) -> None:
    """Capacity is shared in proportion to the weights, within minimum and maximum."""
    sessions = [
        ev("A", weight=weights[0], max_a=max_a[0]),
        ev("B", weight=weights[1], max_a=max_a[1]),
    ]
    result = allocate(site(32, 2), sessions, now=0)
    assert limits(result) == {"A": expected[0], "B": expected[1]}


BASE_LOAD = [
    # non-EV load per phase, expected A (3-phase), B (1-phase on L1), C (1-phase on L3)
    ((0, 0, 0), (16.0, 16.0, 16.0)),  # limit 40: everyone at max 16
    ((20, 0, 0), (10.0, 10.0, 16.0)),  # L1 step: A and B share 20 A, C untouched
    ((0, 30, 0), (10.0, 16.0, 16.0)),  # L2 step: only A uses L2
    ((0, 0, 34), (6.0, 16.0, 0.0)),  # L3 has 6 A: A is admitted first and C waits
]


@pytest.mark.parametrize(("meter", "expected"), BASE_LOAD)
def test_base_load_step_reduces_only_sessions_on_that_phase(
    meter: tuple[float, float, float], expected: tuple[float, float, float]
) -> None:
    """A non-EV load step on one phase lowers only the sessions that use that phase."""
    sessions = [
        ev("A", max_a=16, started_at=0),
        ev("B", ONLY_L1, max_a=16, started_at=1),
        ev("C", ONLY_L3, max_a=16, started_at=2),
    ]
    result = allocate(site(40, meter=meter), sessions, now=0)
    assert limits(result) == dict(zip("ABC", expected, strict=True))


def test_a_rising_load_is_left_free_by_the_filling_but_pauses_nobody() -> None:
    """L1 heading 8 A higher: the EVs on L1 share 8 A less at once; an EV whose minimum
    fits today's room stays admitted though it would not fit the rising load (D: 6 A
    where 2 A are left)."""
    sessions = [ev("A", ONLY_L1, started_at=0), ev("B", ONLY_L1, started_at=1)]
    flat = allocate(site(32, meter=(0, 0, 0)), sessions, now=0)
    rising = allocate(replace(site(32, meter=(0, 0, 0)), rising_a=(8.0, 0.0, 0.0)), sessions, now=0)
    assert limits(flat) == {"A": 16.0, "B": 16.0}
    assert limits(rising) == {"A": 12.0, "B": 12.0}
    tight = [ev("D", ONLY_L1, started_at=0, previous_a=6.0, running_since=0.0)]
    nearly_full = replace(site(32, meter=(24, 0, 0)), rising_a=(6.0, 0.0, 0.0))
    assert limits(allocate(nearly_full, tight, now=10)) == {"D": 6.0}


def test_parse_wiring() -> None:
    """Config wiring strings map charger phases to physical phases."""
    assert parse_wiring("L1L2L3") == L123
    assert parse_wiring("l2l3l1") == L231
    assert parse_wiring("L3") == ONLY_L3
    for bad in ("", "L1L2", "L1L1L2", "L4", "X1"):
        with pytest.raises(ValueError):
            parse_wiring(bad)


def test_rotated_wiring_maps_charger_l1_to_physical_l2() -> None:
    """A 1-phase EV on an L2L3L1 charger draws (and is budgeted) on physical L2."""
    crowded_l2 = site(32, meter=(0, 22, 0))  # 10 A left on L2
    assert used_phases(ev("A", L231, ev_phases=1)) == ONLY_L2
    assert limits(allocate(crowded_l2, [ev("A", L231, ev_phases=1)], now=0)) == {"A": 10.0}
    assert limits(allocate(crowded_l2, [ev("A", L123, ev_phases=1)], now=0)) == {"A": 32.0}


def test_one_phase_evs_on_rotated_chargers_share_phases() -> None:
    """1-phase EVs on differently rotated chargers share only the physical phase they meet on."""
    sessions = [
        ev("A", L123, ev_phases=1),  # L1
        ev("B", L231, ev_phases=1),  # L2
        ev("C", L312, ev_phases=1),  # L3
        ev("D", L123, ev_phases=1),  # L1 again
    ]
    result = allocate(site(20), sessions, now=0)
    assert limits(result) == {"A": 10.0, "B": 20.0, "C": 20.0, "D": 10.0}
    assert result.headroom_a == pytest.approx((0.0, 0.0, 0.0))


def test_unknown_phases_budgeted_as_three() -> None:
    """An EV of unknown phase use is budgeted on every wired phase until learned."""
    single = ev("A", ONLY_L1, started_at=0)
    unknown = ev("B", L123, started_at=1)
    assert limits(allocate(site(20), [single, unknown], now=0)) == {"A": 10.0, "B": 10.0}
    learned = ev("B", L231, started_at=1, ev_phases=1)  # on physical L2 only
    assert limits(allocate(site(20), [single, learned], now=0)) == {"A": 20.0, "B": 20.0}


def test_new_session_is_probed_at_its_minimum() -> None:
    """A new session of unknown phase use is admitted at (at least) its minimum, not at 0."""
    running = ev("A", L123, ev_phases=3, started_at=0, previous_a=26.0)
    new = ev("B", L231, started_at=100)
    result = allocate(site(32, 2), [running, new], now=100)
    assert limits(result)["B"] >= 6.0
    assert result.waiting == ()


def _run_site(
    sessions: list[Session], capacity: float, until: float, step: float = 10.0, **dwell: float
) -> dict[str, list[tuple[float, float]]]:
    """Allocate every `step` s from 0 to `until` and keep each session's state as the
    controller does (previous limit, running since, paused since); each EV's (time, limit)."""
    state = {s.charger_id: s for s in sessions}
    seen: dict[str, list[tuple[float, float]]] = {cid: [] for cid in state}
    now = 0.0
    while now <= until:
        result = allocate(site(capacity, 2), list(state.values()), now=now, **dwell)
        for (cid, _), limit in result.limits_a.items():
            s = state[cid]
            running, paused = s.running_since, s.paused_since
            if limit > 0 and running is None:
                running = now
            elif limit <= 0 and running is not None:
                running, paused = None, now
            state[cid] = replace(s, previous_a=limit, running_since=running, paused_since=paused)
            seen[cid].append((now, limit))
        now += step
    return seen


def test_admission_gives_every_waiting_ev_its_turn_in_arrival_order() -> None:
    """Room for two minima, three EVs: the first two arrivals charge first; after a turn
    (rotation_period) the one that waited takes over from the oldest, and so on: nobody
    waits longer than a turn plus a pause, and nobody is paused before its turn ends."""
    sessions = [ev(c, started_at=i) for i, c in enumerate("ABC")]
    seen = _run_site(sessions, 15, until=2000, min_run_s=120, min_pause_s=60, rotation_period=300)
    first = {cid: min(t for t, a in limits_ if a > 0) for cid, limits_ in seen.items()}
    assert first == {"A": 0.0, "B": 0.0, "C": 300.0}
    for cid, timeline in seen.items():
        runs = _runs(timeline)
        assert len(runs) >= 3, (cid, runs)  # everyone charges again and again
        for start, end in runs[:-1]:
            assert end - start >= 300, (cid, runs)  # a turn is never cut short
        gaps = [b[0] - a[1] for a, b in itertools.pairwise(runs)]
        assert all(60 <= gap <= 400 for gap in gaps), (cid, gaps)


def _runs(timeline: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(start, end) of each stretch with a limit above 0."""
    runs: list[tuple[float, float]] = []
    start: float | None = None
    for t, limit in timeline:
        if limit > 0 and start is None:
            start = t
        elif limit <= 0 and start is not None:
            runs.append((start, t))
            start = None
    if start is not None:
        runs.append((start, timeline[-1][0]))
    return runs


def test_one_phase_ev_admitted_beside_a_waiting_three_phase_ev() -> None:
    """A 1-phase EV whose minimum still fits is admitted even when an earlier 3-phase EV waits."""
    sessions = [
        ev("A", started_at=0),
        ev("B", started_at=1),  # does not fit on L1
        ev("C", ONLY_L2, started_at=2),  # L2 still has room
    ]
    result = allocate(site(20, meter=(10, 0, 0)), sessions, now=0)
    assert limits(result) == {"A": 10.0, "B": 0.0, "C": 10.0}
    assert result.waiting == (("B", 1),)


HYSTERESIS = [
    # meter L1, previous, expected: capacity = 30 - meter on L1 (max 32, hysteresis 1 A)
    (0.0, 29.5, 29.5),  # 0.5 A more is possible: kept at 29.5 (lower: always safe)
    (1.0, 29.5, 29.0),  # only 29 A left: the stale higher value is not kept
    (0.5, 29.2, 29.2),  # 29.5 A would be possible; 29.2 fits and is kept
    (0.0, 20.0, 30.0),  # a large change goes through
    (10.0, 29.5, 20.0),
]


@pytest.mark.parametrize(("meter_l1", "previous", "expected"), HYSTERESIS)
def test_hysteresis(meter_l1: float, previous: float, expected: float) -> None:
    """Small changes are held, unless holding would exceed the capacity."""
    session = ev("A", previous_a=previous)
    result = allocate(site(30, meter=(meter_l1, 0, 0)), [session], now=0, hysteresis_a=1.0)
    assert limits(result) == {"A": expected}


def test_hysteresis_holds_two_sessions_near_their_fair_share() -> None:
    """Two sessions 0.5 A either side of the fair share both keep their limit (sum fits)."""
    sessions = [ev("A", previous_a=15.5), ev("B", previous_a=14.5)]
    result = allocate(site(30), sessions, now=0, hysteresis_a=1.0)
    assert limits(result) == {"A": 15.5, "B": 14.5}
    assert set(result.held) == {("A", 1), ("B", 1)}


RECLAIM = [
    # A draws (held), previous limits 16/16, B hungry; capacity 32, expected A, B
    (5.0, 7.0, 25.0),  # A capped at draw + 2 A, B gets the rest
    (0.0, 6.0, 26.0),  # never below A's minimum
    (15.0, 16.0, 16.0),  # A draws about what it got: no reclaim
]


@pytest.mark.parametrize(("drawn", "expected_a", "expected_b"), RECLAIM)
def test_reclaim_gives_unused_current_to_a_hungry_session(
    drawn: float, expected_a: float, expected_b: float
) -> None:
    """Current an EV does not draw goes to a session that wants more."""
    a = ev("A", ev_phases=3, previous_a=16.0, drawn_a=(drawn, drawn, drawn))
    b = ev("B", ev_phases=3, previous_a=16.0, drawn_a=(16.0, 16.0, 16.0))
    meter = (drawn + 16.0,) * 3  # the EVs are the whole load
    result = allocate(site(32, meter=meter), [a, b], now=0, hysteresis_a=0)
    assert limits(result) == {"A": expected_a, "B": expected_b}


def test_overload_without_evs_gives_zero_on_that_phase() -> None:
    """When the non-EV load alone exceeds a phase, every session on it gets 0."""
    sessions = [ev("A"), ev("B", ONLY_L3)]
    result = allocate(site(32, 2, meter=(40, 0, 0)), sessions, now=0)
    assert limits(result) == {"A": 0.0, "B": 30.0}
    assert result.capacity_a[0] == pytest.approx(-10.0)
    assert any("L1" in note for note in result.notes)


def test_min_above_max_is_never_served() -> None:
    """A session whose maximum is below its minimum gets 0 and is not counted as waiting."""
    result = allocate(site(), [ev("A", min_a=6, max_a=5)], now=0)
    assert limits(result) == {"A": 0.0}
    assert result.waiting == ()


def test_duplicate_sessions_rejected() -> None:
    """Two sessions on the same connector are an error."""
    with pytest.raises(ValueError):
        allocate(site(), [ev("A"), ev("A")], now=0)


LEARN = [
    # drawn per physical phase, wiring, allocated, expected
    ((10.0, 10.2, 9.8), L123, 10.0, 3),
    ((10.0, 0.1, 0.2), L123, 10.0, 1),
    ((0.0, 10.0, 0.1), L231, 10.0, 1),  # charger L1 is physical L2
    ((0.0, 10.0, 9.0), L231, 10.0, 3),
    ((9.0, 9.0, 0.0), L123, 10.0, 3),  # 2-phase EV budgeted as 3
    ((0.3, 0.0, 0.0), L123, 10.0, None),  # not drawing: no signal
    ((10.0, 0.0, 0.0), L123, 0.0, None),  # nothing allocated
    ((0.0, 0.0, 0.0), ONLY_L3, 6.0, 1),  # a 1-phase charger is always 1
]


@pytest.mark.parametrize(("drawn", "wiring", "allocated", "expected"), LEARN)
def test_learn_phases(
    drawn: tuple[float, float, float],
    wiring: tuple[int, ...],
    allocated: float,
    expected: int | None,
) -> None:
    """Per-phase current tells a 1-phase from a 3-phase EV, or nothing if it does not draw."""
    assert learn_phases(drawn, wiring, allocated) == expected


CURRENT = st.floats(min_value=0, max_value=80, allow_nan=False)
PHASE_CURRENTS = st.tuples(CURRENT, CURRENT, CURRENT)
WIRINGS = st.sampled_from([L123, L231, L312, ONLY_L1, ONLY_L2, ONLY_L3])


@settings(max_examples=200, deadline=None)
@given(meter=PHASE_CURRENTS, draws=st.lists(PHASE_CURRENTS, max_size=5))
def test_non_ev_load_never_negative(
    meter: tuple[float, float, float], draws: list[tuple[float, float, float]]
) -> None:
    """Meter minus EV draw is clamped at 0 and never exceeds the meter."""
    sessions = [ev(str(i), drawn_a=d) for i, d in enumerate(draws)]
    load = non_ev_load(meter, sessions)
    assert all(0 <= load[p] <= max(0.0, meter[p]) for p in range(3))


# --- fallback -----------------------------------------------------------------------


def test_safe_allocation_fits_and_rotates() -> None:
    """With 14 A per phase, two of three 3-phase chargers get 6 A, the third 0 A in turn."""
    chargers = [SafeCharger(c) for c in "ABC"]
    zeroed = []
    for key in range(3):
        result = safe_allocation(
            chargers, limit_a=(16, 16, 16), margin_a=2, fallback_a=6, rotation_key=key
        )
        assert not result.fits
        assert sorted(result.limits_a.values()) == [0.0, 6.0, 6.0]
        zeroed.extend(result.zeroed)
    assert sorted(zeroed) == ["A", "B", "C"]


SAFE = [
    # chargers, fits, limits
    ([SafeCharger("A", ONLY_L1), SafeCharger("B", ONLY_L2), SafeCharger("C", ONLY_L3)], True,
     {"A": 6.0, "B": 6.0, "C": 6.0}),  # 1-phase chargers on different phases
    ([SafeCharger("A", max_a=4.0), SafeCharger("B")], True, {"A": 4.0, "B": 6.0}),
    ([SafeCharger("A", connectors=2), SafeCharger("B")], False, {"A": 6.0, "B": 0.0}),
]  # fmt: skip


@pytest.mark.parametrize(("chargers", "fits", "expected"), SAFE)
def test_safe_allocation_table(
    chargers: list[SafeCharger], fits: bool, expected: dict[str, float]
) -> None:
    """Fallback values are budgeted per wired phase and connector, capped at the charger max."""
    result = safe_allocation(
        chargers, limit_a=(16, 16, 16), margin_a=2, fallback_a=6, rotation_key=0
    )
    assert result.fits is fits
    assert result.limits_a == expected


@settings(max_examples=300, deadline=None)
@given(
    chargers=st.lists(
        st.builds(
            SafeCharger,
            charger_id=st.text("ABCDEFGH", min_size=1, max_size=2),
            wiring=WIRINGS,
            connectors=st.integers(1, 2),
        ),
        max_size=8,
        unique_by=lambda c: c.charger_id,
    ),
    limit=PHASE_CURRENTS,
    margin=st.floats(0, 5),
    fallback=st.floats(0, 16),
    key=st.integers(0, 100),
)
def test_safe_allocation_never_exceeds_the_fuse(
    chargers: list[SafeCharger],
    limit: tuple[float, float, float],
    margin: float,
    fallback: float,
    key: int,
) -> None:
    """The fallback limits, as drawable on every wired phase, fit the fuse minus margin."""
    result = safe_allocation(
        chargers, limit_a=limit, margin_a=margin, fallback_a=fallback, rotation_key=key
    )
    for p in range(3):
        use = sum(result.limits_a[c.charger_id] * c.connectors for c in chargers if p in c.wiring)
        assert use <= max(0.0, limit[p] - margin) + TOL
    for c in chargers:
        assert result.limits_a[c.charger_id] in (0.0, floor_step(fallback))
    assert result.fits == all(
        result.limits_a[c.charger_id] == floor_step(fallback) for c in chargers
    )


# --- properties of allocate ---------------------------------------------------------


@st.composite
def sessions_strategy(draw: st.DrawFn, *, history: bool) -> list[Session]:
    count = draw(st.integers(0, 6))
    out = []
    for i in range(count):
        out.append(
            Session(
                f"CP{i}",
                draw(st.integers(1, 2)),
                draw(WIRINGS),
                min_a=draw(st.sampled_from([0.0, 6.0, 6.05, 8.0, 10.0])),
                max_a=draw(st.floats(0, 40)),
                weight=draw(st.sampled_from([0.5, 1.0, 2.0, 3.0])),
                started_at=draw(st.integers(0, 5)),
                ev_phases=draw(st.sampled_from([None, 1, 3])),
                drawn_a=draw(st.none() | PHASE_CURRENTS) if history else None,
                previous_a=draw(st.none() | st.floats(0, 40)) if history else None,
            )
        )
    return out


def physical_capacity(s: SiteState, sessions: list[Session]) -> list[float]:
    """limit - margin - max(0, meter - EV draw), computed independently of the module."""
    out = []
    for p in range(3):
        drawn = sum(max(0.0, x.drawn_a[p]) for x in sessions if x.drawn_a is not None)
        out.append(s.limit_a[p] - s.margin_a - max(0.0, s.meter_a[p] - drawn))
    return out


def spare(s: SiteState, sessions: list[Session], result: Allocation) -> list[float]:
    cap = physical_capacity(s, sessions)
    for x in sessions:
        for p in used_phases(x):
            cap[p] -= result.limits_a[x.key]
    return cap


SITES = st.builds(
    SiteState,
    limit_a=PHASE_CURRENTS,
    margin_a=st.floats(0, 5),
    meter_a=PHASE_CURRENTS,
)


@settings(max_examples=300, deadline=None)
@given(
    s=SITES,
    sessions=sessions_strategy(history=True).filter(lambda xs: len({x.key for x in xs}) == len(xs)),
    now=st.floats(0, 10_000),
    hysteresis=st.sampled_from([0.0, 1.0, 3.0]),
)
def test_allocation_is_safe_and_within_bounds(
    s: SiteState, sessions: list[Session], now: float, hysteresis: float
) -> None:
    """Per phase allocations + non-EV load fit limit - margin; each limit is 0 or in [min, max]."""
    result = allocate(s, sessions, now=now, hysteresis_a=hysteresis)
    capacity = physical_capacity(s, sessions)
    left = spare(s, sessions, result)
    for p in range(3):
        if capacity[p] < 0:  # overloaded without EVs: nobody on it draws
            assert all(result.limits_a[x.key] == 0 for x in sessions if p in used_phases(x))
        else:
            assert left[p] >= -TOL
    for x in sessions:
        limit = result.limits_a[x.key]
        assert limit <= x.max_a + TOL
        assert limit == 0 or limit >= x.min_a - TOL
        assert limit == floor_step(limit)


@settings(max_examples=300, deadline=None)
@given(
    s=SITES,
    sessions=sessions_strategy(history=False).filter(
        lambda xs: len({x.key for x in xs}) == len(xs)
    ),
    now=st.floats(0, 10_000),
)
def test_no_capacity_left_unused_while_a_session_wants_more(
    s: SiteState, sessions: list[Session], now: float
) -> None:
    """A session below its max has a phase with < 0.1 A spare; a waiting one, < its minimum."""
    result = allocate(s, sessions, now=now, hysteresis_a=0)
    left = spare(s, sessions, result)
    for x in sessions:
        limit = result.limits_a[x.key]
        top = floor_step(x.max_a)
        if limit + 0.1 > top + TOL:
            continue  # at its max (within one 0.1 A step)
        lo = floor_step(x.min_a + 0.099999)  # min rounded up to the 0.1 A grid
        if limit == 0 and lo > top:
            continue  # can never be served
        need = 0.1 if limit > 0 else max(0.1, lo)
        assert min(left[p] for p in used_phases(x)) < need + TOL, (x, limit, left)


def test_reclaim_judges_the_held_draw_not_a_momentary_dip() -> None:
    site = SiteState(limit_a=(32.0, 32.0, 32.0), margin_a=0.0, meter_a=(3.0, 3.0, 3.0))
    dip = (3.0, 3.0, 3.0)
    momentary = Session("A", 1, (0, 1, 2), drawn_a=dip, previous_a=16.0)
    held = Session("A", 1, (0, 1, 2), drawn_a=dip, held_a=(16.0, 16.0, 16.0), previous_a=16.0)
    assert allocate(site, [momentary], now=0.0).limits_a[("A", 1)] == 6.0
    assert allocate(site, [held], now=0.0).limits_a[("A", 1)] == 32.0


def test_hysteresis_holds_only_sessions_that_allow_it() -> None:
    site = SiteState(limit_a=(32.0, 32.0, 32.0), margin_a=0.0, meter_a=(0.0, 0.0, 0.0))
    held = Session("A", 1, (0, 1, 2), previous_a=31.5)
    fresh = Session("A", 1, (0, 1, 2), previous_a=31.5, hold=False)
    assert allocate(site, [held], now=0.0).limits_a[("A", 1)] == 31.5
    assert allocate(site, [fresh], now=0.0).limits_a[("A", 1)] == 32.0


# --- dwell times: an EV started stays started, an EV paused stays paused ----------------

DWELL = {"min_run_s": 120.0, "min_pause_s": 60.0, "rotation_period": 300.0}


def test_a_session_started_within_min_run_keeps_its_minimum_over_the_rotation() -> None:
    """Rotation would favour the older arrival, but the EV started 30 s ago keeps charging."""
    sessions = [
        ev("A", started_at=0.0),
        ev("B", started_at=10.0, previous_a=6.0, running_since=1170.0),
    ]
    # 8 A of room: one minimum fits. Without dwell, A (first in order) would take it.
    without = allocate(site(limit=8.0), sessions, now=1200.0, rotation_period=0.0)
    assert limits(without) == {"A": 8.0, "B": 0.0}
    result = allocate(site(limit=8.0), sessions, now=1200.0, **DWELL)
    assert limits(result) == {"A": 0.0, "B": 8.0}
    assert result.waiting == (("A", 1),)


def test_the_fuse_pauses_a_protected_session_all_the_same() -> None:
    """Dwell never beats the fuse: two started EVs whose minima no longer fit, one pauses."""
    sessions = [
        ev("A", previous_a=6.0, running_since=990.0),
        ev("B", previous_a=6.0, running_since=995.0),
    ]
    result = allocate(site(limit=10.0), sessions, now=1000.0, **DWELL)
    assert limits(result) == {"A": 10.0, "B": 0.0}  # the older start stays


def test_a_session_paused_within_min_pause_stays_paused_even_with_room() -> None:
    """Room came back 20 s after the pause: the EV waits out its pause first."""
    paused = ev("A", previous_a=0.0, paused_since=980.0)
    result = allocate(site(), [paused], now=1000.0, **DWELL)
    assert limits(result) == {"A": 0.0}
    later = allocate(site(), [paused], now=1041.0, **DWELL)
    assert limits(later) == {"A": 32.0}


def test_a_stopped_session_needs_its_minimum_and_a_margin_to_start() -> None:
    """Noise around the minimum must not start and stop an EV: starting needs a margin,
    continuing does not."""
    new = ev("A")
    assert limits(allocate(site(limit=6.5), [new], now=0.0, start_margin_a=1.0)) == {"A": 0.0}
    assert limits(allocate(site(limit=7.0), [new], now=0.0, start_margin_a=1.0)) == {"A": 7.0}
    running = ev("A", previous_a=6.5, running_since=-500.0)
    assert limits(allocate(site(limit=6.5), [running], now=0.0, start_margin_a=1.0)) == {"A": 6.5}


def test_a_new_session_may_start_within_half_the_meter_noise() -> None:
    """On a noisy meter the house load estimate settles on the mean over many readings:
    room short of the minimum by less than half the noise starts an EV now (it would
    otherwise wait for the estimate to settle), short by more it waits."""
    new = ev("A")
    assert limits(allocate(site(limit=5.8), [new], now=0.0, noise_a=0.5)) == {"A": 6.0}
    assert limits(allocate(site(limit=5.7), [new], now=0.0, noise_a=0.5)) == {"A": 0.0}
    assert limits(allocate(site(limit=5.8), [new], now=0.0)) == {"A": 0.0}


def test_unbalanced_site_one_phase_evs_on_free_phases_are_not_starved() -> None:
    """L1 nearly full, L2/L3 free: EVs learned to be 1-phase on L2 and L3 charge at once,
    an unknown EV is probed (budgeted on all phases) only when its worst case fits, and
    the started EV on L1 is not paused for it."""
    meter = (24.0, 8.0, 8.0)  # 30 A usable per phase: L1 6 A free, L2/L3 22 A
    sessions = [
        ev("onL1", L123, ev_phases=1, previous_a=6.0, running_since=990.0, started_at=1.0),
        ev("onL2", L231, ev_phases=1, started_at=2.0),
        ev("onL3", L312, ev_phases=1, started_at=3.0),
        ev("unknown", L123, started_at=0.0),
    ]
    result = allocate(site(margin=2.0, meter=meter), sessions, now=1000.0, **DWELL)
    got = limits(result)
    assert got["onL1"] == 6.0 and got["unknown"] == 0.0
    assert got["onL2"] == 22.0 and got["onL3"] == 22.0


def test_noise_does_not_lower_a_kept_limit_within_its_tolerance() -> None:
    """A previous limit 0.3 A above the new room is kept with 0.5 A of noise tolerance,
    lowered without; 0.8 A above is lowered either way."""
    held = ev("A", previous_a=10.0)
    tight = site(limit=9.7)
    assert limits(allocate(tight, [held], now=0.0, noise_a=0.5)) == {"A": 10.0}
    assert limits(allocate(tight, [held], now=0.0)) == {"A": 9.7}
    assert limits(allocate(site(limit=9.2), [held], now=0.0, noise_a=0.5)) == {"A": 9.2}


def test_a_session_lowered_again_soon_goes_a_step_further() -> None:
    """A load rising steadily: a session lowered recently (falling) that must be lowered
    again goes lower_step_a below its fair value, so the next lowering is that much
    further away; a first lowering is exact."""
    first = ev("A", previous_a=16.0)
    again = ev("A", previous_a=16.0, falling=True)
    room = site(limit=12.0)
    assert limits(allocate(room, [first], now=0.0, lower_step_a=1.0)) == {"A": 12.0}
    assert limits(allocate(room, [again], now=0.0, lower_step_a=1.0)) == {"A": 11.0}
    # Never below the minimum, and a raise is not affected.
    assert limits(allocate(site(limit=6.5), [again], now=0.0, lower_step_a=1.0)) == {"A": 6.0}
    rising = ev("A", previous_a=8.0, falling=True)
    assert limits(allocate(room, [rising], now=0.0, lower_step_a=1.0)) == {"A": 12.0}


def test_a_capped_session_stays_capped_while_it_draws_less() -> None:
    """Capped at 12 A because it drew 10 A: still drawing 10 A, it keeps the cap (the
    first judgement would release it, since 10 A is not 2 A below 12 A); drawing 11.6 A,
    close to the cap, it wants more and gets it."""
    tapering = ev("T", previous_a=12.0, held_a=(10.0, 10.0, 10.0), capped=True)
    assert limits(allocate(site(), [tapering], now=0.0)) == {"T": 12.0}
    fresh = ev("T", previous_a=12.0, held_a=(10.0, 10.0, 10.0))
    assert limits(allocate(site(), [fresh], now=0.0)) == {"T": 32.0}
    wants = ev("T", previous_a=12.0, held_a=(11.6, 11.6, 11.6), capped=True)
    assert limits(allocate(site(), [wants], now=0.0)) == {"T": 32.0}
