"""Lease profiles: strategies, the profiles themselves, the expiry grid and what to send when."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profiles.allocation import SafeCharger, safe_allocation
from profiles.composite import composite_schedule
from profiles.lease import (
    LEASE_PROFILE_ID,
    RISING_LEASE,
    SAFE_PROFILE_ID,
    HeldLease,
    LeasePolicy,
    LeaseView,
    Strategy,
    falls,
    is_site_profile,
    lease_end,
    plan_leases,
    refresh_due,
    rises,
    site_profile,
    strategies,
    unsuited,
)
from profiles.model import ChargingProfilePurpose, ChargingRateUnit, parse_profile, render_profile
from profiles.times import format_time, parse_time
from profiles.validation import validate_profile

CPMAX = ChargingProfilePurpose.CHARGE_POINT_MAX
TXDEFAULT = ChargingProfilePurpose.TX_DEFAULT
NOW = datetime(2026, 5, 1, 12, 0, 7, 250_000, tzinfo=UTC)
T = NOW.timestamp()
POLICY = LeasePolicy(lease_time=60.0, min_interval=5.0)
OUTCOMES = ("accepted", "accepted", "accepted", "slow", "refused", "lost", "lost-applied")


def limit_at(placed: list[tuple[int, object]], at: datetime, connector_id: int = 1) -> float | None:
    composite = composite_schedule(
        placed,  # type: ignore[arg-type]
        connector_id=connector_id,
        start=at,
        duration=1,
        unit=ChargingRateUnit.A,
        transaction_id=7,
        transaction_start=at - timedelta(minutes=1),
    )
    return composite.periods[0].limit


# --- strategies and profiles ------------------------------------------------------------


def test_strategies_prefer_charge_point_max_at_the_top_level_then_one() -> None:
    assert strategies(None) == (
        Strategy(CPMAX, 8),
        Strategy(CPMAX, 1),
        Strategy(TXDEFAULT, 8),
        Strategy(TXDEFAULT, 1),
    )
    assert strategies(3)[0] == Strategy(CPMAX, 3)
    assert strategies(1) == (Strategy(CPMAX, 1), Strategy(TXDEFAULT, 1))
    assert strategies(0) == ()  # one level leaves no room for a safe profile below a lease


def test_only_tx_default_applies_per_connector() -> None:
    assert Strategy(TXDEFAULT, 8).per_connector
    assert not Strategy(CPMAX, 8).per_connector
    assert Strategy(CPMAX, 8).safe_level == 7


@pytest.mark.parametrize("strategy", strategies(None))
def test_site_profiles_are_valid_on_connector_zero(strategy: Strategy) -> None:
    end = NOW + timedelta(seconds=45)
    safe = site_profile(strategy=strategy, safe=True, limit_a=6.04, now=NOW)
    lease = site_profile(strategy=strategy, safe=False, limit_a=16.0, now=NOW, valid_to=end)
    assert (safe.charging_profile_id, lease.charging_profile_id) == (
        SAFE_PROFILE_ID,
        LEASE_PROFILE_ID,
    )
    assert (safe.stack_level, lease.stack_level) == (strategy.safe_level, strategy.lease_level)
    assert safe.valid_to is None and lease.valid_to == end
    assert safe.schedule.periods[0].limit == 6.0
    # Backdated, so a charger whose clock is a little behind already applies it.
    assert safe.schedule.start_schedule is not None and safe.schedule.start_schedule < NOW
    for profile in (safe, lease):
        assert parse_profile(render_profile(profile)) == profile
        assert validate_profile(profile, connector_id=0, active_transaction_id=None) == []
    assert is_site_profile(SAFE_PROFILE_ID) and is_site_profile(LEASE_PROFILE_ID)
    assert not is_site_profile(900_000)


@pytest.mark.parametrize("strategy", strategies(None))
def test_a_lease_falls_back_to_the_safe_value_when_it_ends(strategy: Strategy) -> None:
    """The fail-safe property itself, evaluated with the composite rules a charger applies."""
    end = NOW + timedelta(seconds=45)
    placed = [
        (0, site_profile(strategy=strategy, safe=True, limit_a=6.0, now=NOW)),
        (0, site_profile(strategy=strategy, safe=False, limit_a=20.0, now=NOW, valid_to=end)),
    ]
    assert limit_at(placed, NOW) == 20.0
    assert limit_at(placed, end - timedelta(seconds=1)) == 20.0
    assert limit_at(placed, end) == 6.0
    assert limit_at(placed, end + timedelta(days=30)) == 6.0


def test_a_higher_lease_hides_lower_profiles_of_the_purpose_and_tx_profiles_still_lower_it() -> (
    None
):
    strategy = Strategy(CPMAX, 8)
    foreign = site_profile(strategy=Strategy(CPMAX, 3), safe=True, limit_a=32.0, now=NOW)
    foreign = type(foreign)(**{**_fields(foreign), "charging_profile_id": 42})
    safe = site_profile(strategy=strategy, safe=True, limit_a=6.0, now=NOW)
    end = NOW + timedelta(seconds=30)
    lease = site_profile(strategy=strategy, safe=False, limit_a=20.0, now=NOW, valid_to=end)
    tx = site_profile(strategy=Strategy(ChargingProfilePurpose.TX, 1), safe=True, limit_a=10.0,
                      now=NOW)  # fmt: skip
    tx = type(tx)(**{**_fields(tx), "charging_profile_id": 43, "transaction_id": 7})
    placed = [(0, foreign), (0, safe), (0, lease)]
    assert limit_at(placed, NOW) == 20.0
    assert limit_at(placed, end) == 6.0  # the safe profile hides the foreign 32 A below it
    assert limit_at([*placed, (1, tx)], NOW) == 10.0


def _fields(profile: object) -> dict[str, object]:
    return {name: getattr(profile, name) for name in profile.__slots__}  # type: ignore[attr-defined]


# --- when leases end ---------------------------------------------------------------------


@given(st.floats(min_value=1e9, max_value=2e9), st.sampled_from([4.0, 60.0, 90.0, 600.0]))
def test_a_falling_lease_ends_within_a_lease_a_rising_one_within_one_and_a_half(
    now: float, lease: float
) -> None:
    """In whole milliseconds; a falling lease more than half a lease away (its refresh at
    half a lease has time to be retried), a rising one more than a whole lease away."""
    falling = lease_end(now, lease)
    rising = lease_end(now, lease, falling=False)
    assert now + lease / 2 < falling <= now + lease
    assert now + RISING_LEASE * lease <= rising < now + RISING_LEASE * lease + 0.001 + 1e-6
    for end in (falling, rising):
        assert from_epoch_ms(end) == end


def test_no_lease_that_rises_ends_before_one_that_falls() -> None:
    """A falling lease ends no later than the earliest rising lease of another charger; a
    rising one no earlier than the latest falling one."""
    assert lease_end(1000.4, 60.0) == 1060.4
    assert lease_end(1000.4, 60.0, earliest_rise=1042.0) == 1042.0
    assert lease_end(1000.4, 60.0, falling=False) == 1090.4
    assert lease_end(1000.4, 60.0, falling=False, latest_fall=1100.0) == 1100.0


def test_falling_and_rising_are_judged_against_every_safe_value_that_may_be_in_force() -> None:
    assert falls(6.0, (6.0,)) and not rises(6.0, (6.0,))  # at its safe value: falling
    assert rises(0.0, (6.0,)) and not falls(0.0, (6.0,))
    assert rises(32.0, (None,)) and not falls(32.0, (None,))  # no safe profile: unlimited
    assert falls(8.0, (6.0, 10.0)) and rises(8.0, (6.0, 10.0))  # a safe value changing


def test_a_rising_lease_is_refreshed_with_a_whole_lease_left_a_falling_one_with_half() -> None:
    assert refresh_due(T + 60, T, 60.0, rising=True)
    assert not refresh_due(T + 61, T, 60.0, rising=True)
    assert refresh_due(T + 30, T, 60.0) and not refresh_due(T + 31, T, 60.0)
    assert refresh_due(None, T, 60.0)


def test_a_change_is_a_refresh_the_next_comes_half_a_lease_later() -> None:
    """A lowering carries a whole new lease: no refresh until half a lease after it, where
    a single grid of lease/2 would refresh right after the change."""
    views = {"A": view(lease_a=20.0, valid_to=T + 31, changed_at=T - 29)}
    (lower,) = plan_leases(views, {"A": 16.0}, T, POLICY)
    assert (lower.reason, lower.valid_to) == ("lower", T + 60)
    views = {"A": view(lease_a=16.0, valid_to=lower.valid_to, changed_at=T)}
    for later in (1.0, 10.0, 29.0):
        assert plan_leases(views, {"A": 16.0}, T + later, POLICY) == []
    (refresh,) = plan_leases(views, {"A": 16.0}, T + 30.0, POLICY)
    assert refresh.reason == "refresh" and refresh.valid_to == T + 90


def test_a_falling_lease_ends_before_every_rising_lease_another_charger_may_hold() -> None:
    """B idles at 0 A under a safe value of 6 A (rising, ends at T + 40): A's raise ends
    at T + 40, not T + 60. A reply B never gave counts too (`maybe`)."""
    b = view(lease_a=0.0, valid_to=T + 40, changed_at=T - 100)
    a = view(lease_a=6.0, valid_to=T + 50, changed_at=T - 100)
    updates = plan_leases({"A": a, "B": b}, {"A": 16.0}, T, POLICY)
    assert [(u.key, u.reason, u.valid_to) for u in updates] == [("A", "raise", T + 40)]
    b_unanswered = view(lease_a=0.0, valid_to=T + 80, maybe=(HeldLease(0.0, T + 45),))
    updates = plan_leases({"A": a, "B": b_unanswered}, {"A": 16.0}, T, POLICY)
    assert [u.valid_to for u in updates] == [T + 45]
    # A rising lease gets no earlier end than A's falling one.
    a_high = view(lease_a=16.0, valid_to=T + 95)
    (pause,) = plan_leases({"A": a_high, "B": b}, {"B": 0.0}, T + 40, POLICY)
    assert pause.valid_to >= T + 95


def test_a_falling_lease_held_back_by_a_rising_one_is_not_refreshed_for_nothing() -> None:
    """B's rising lease cannot be refreshed (B is gone): A's lease, already ending with B's,
    is not sent again every cycle; when both ended (A at its safe value, B at its own),
    A gets a whole lease again."""
    b = view(lease_a=0.0, valid_to=T + 20)
    a = view(lease_a=16.0, valid_to=T + 20, changed_at=T - 100)
    for later in (0.0, 5.0, 19.0):
        assert plan_leases({"A": a, "B": b}, {"A": 16.0}, T + later, POLICY) == []
    (again,) = plan_leases({"A": a, "B": b}, {"A": 16.0}, T + 20, POLICY)
    assert again.limit_a == 16.0 and again.valid_to == T + 80


def test_a_lease_a_new_safe_value_turns_around_is_sent_again_with_an_end_for_both() -> None:
    """A idles at 0 A with a safe value of 0 (falling); its safe value is to become 6 A
    (rising): its lease is sent again first, ending no later than B's rising lease and
    no earlier than C's falling one."""
    a = view(safe_a=0.0, lease_a=0.0, valid_to=T + 20, safe_next=6.0)
    b = view(lease_a=0.0, valid_to=T + 70)
    c = view(lease_a=16.0, valid_to=T + 50)
    (again,) = plan_leases({"A": a, "B": b, "C": c}, {"A": 0.0}, T, POLICY)
    assert again.reason == "refresh" and T + 50 <= again.valid_to <= T + 70
    # At 8 A under a safe value of 10 A (rising, 85 s left), to become 6 A (falling): sent
    # again, to end within a lease and no later than B's rising lease.
    down = view(safe_a=10.0, lease_a=8.0, valid_to=T + 85, safe_next=6.0)
    (again,) = plan_leases({"A": down, "B": b}, {"A": 8.0}, T, POLICY)
    assert again.reason == "refresh" and T + 50 <= again.valid_to <= T + 60
    unchanged = view(safe_a=6.0, lease_a=0.0, valid_to=T + 70, safe_next=8.0)  # rising still
    assert plan_leases({"A": unchanged}, {"A": 0.0}, T, POLICY) == []


def test_a_rising_lease_before_a_falling_one_would_overload_the_phase() -> None:
    """Why the order: two chargers on one 32 A phase, safe values 16 A each. A at 26 A
    (falling), B at 0 A (rising). If B's lease ended first B would rise to 16 A beside A
    at 26 A: 42 A. In the order, the phase never carries more than the leases (26 A) or
    the safe values (32 A)."""
    held = {"A": (26.0, 16.0), "B": (0.0, 16.0)}
    assert phase_load(held, {"A": T + 60, "B": T + 30}, T + 30) == 42.0
    for at in (T, T + 30, T + 60, T + 89, T + 90):
        assert phase_load(held, {"A": T + 60, "B": T + 90}, at) <= 32.0


def from_epoch_ms(end: float) -> float:
    """`end` as validTo carries it (ISO 8601 with milliseconds), back in epoch seconds."""
    text = format_time(datetime.fromtimestamp(end, UTC))
    return parse_time(text).timestamp()


def phase_load(held: dict[str, tuple[float, float]], ends: dict[str, float], at: float) -> float:
    return sum(lease if at < ends[k] else safe for k, (lease, safe) in held.items())


# --- the order, whatever happens: a simulated controller that dies ------------------------


@dataclass
class Sim:
    """One charger: what it really holds, and what the controller knows of it."""

    wiring: tuple[int, ...]
    safe: float  # really in force
    lease: HeldLease | None  # really held
    known_safe: float | None
    known_lease: HeldLease | None
    changed_at: float | None = None
    maybe: list[HeldLease] = field(default_factory=list)
    maybe_safes: list[float | None] = field(default_factory=list)


def _call(sim: Sim, outcome: str, *, lease: HeldLease | None = None, safe: float | None = None,
          controller: bool = True, now: float = 0.0) -> bool:  # fmt: skip
    """A SetChargingProfile whose outcome is `outcome`: 'accepted', 'refused' or 'lost'
    (sent, never answered: applied or not, 'lost-applied'). The charger's truth changes
    when applied; the controller's knowledge as `edge.site.controller` keeps it."""
    applied = outcome in ("accepted", "lost-applied")
    if lease is not None:
        if applied:
            sim.lease = lease
        if controller and outcome == "accepted":
            if sim.known_lease is None or sim.known_lease.limit_a != lease.limit_a:
                sim.changed_at = now
            sim.known_lease, sim.maybe = lease, []
        elif controller and outcome.startswith("lost"):
            sim.maybe.append(lease)
    if safe is not None:  # among maybe_safes since it was planned, as the controller has it
        if applied:
            sim.safe = safe
        if controller and outcome == "accepted":
            sim.known_safe, sim.maybe_safes = safe, []
        elif controller and outcome == "refused":
            sim.maybe_safes.remove(safe)
    return outcome == "accepted"


def _fit(wishes: list[float], sims: list[Sim], fuse: float) -> list[float]:
    """Limits under `wishes` whose sums fit `fuse` on every phase."""
    use = [0.0, 0.0, 0.0]
    for w, sim in zip(wishes, sims, strict=True):
        for p in sim.wiring:
            use[p] += w
    out = []
    for w, sim in zip(wishes, sims, strict=True):
        k = min([1.0, *(fuse / use[p] for p in sim.wiring if use[p] > 0)])
        out.append(math.floor(w * k * 10) / 10)
    return out


def _phase_loads(sims: list[Sim], at: float) -> list[float]:
    loads = [0.0, 0.0, 0.0]
    for sim in sims:
        limit = sim.lease.limit_a if sim.lease and sim.lease.valid_to > at else sim.safe
        for p in sim.wiring:
            loads[p] += limit
    return loads


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([(0,), (1,), (2,), (0, 1, 2), (1, 2, 0)]), min_size=2, max_size=6),
    st.sampled_from([0.0, 6.0, 10.0, 16.0]),
    st.lists(
        st.tuples(
            st.floats(0.5, 40.0),  # seconds to the next cycle
            st.lists(st.floats(0.0, 32.0), min_size=6, max_size=6),  # wishes
            st.lists(st.sampled_from(OUTCOMES), min_size=12, max_size=12),
            st.integers(0, 3),  # a new rotation of the safe values now and then
        ),
        min_size=1,
        max_size=25,
    ),
    st.lists(st.booleans(), min_size=12, max_size=12),  # the last round: which calls landed
)
def test_whichever_leases_have_ended_every_phase_stays_within_the_fuse(
    wirings: list[tuple[int, ...]],
    fallback: float,
    cycles: list[tuple[float, list[float], list[str], int]],
    landed: list[bool],
) -> None:
    """A site of 1- and 3-phase chargers under a 32 A fuse whose safe values fit it, run by
    `plan_leases` as the controller does: lowering before raising, calls accepted, refused
    or never answered (applied or not), safe values rotating. The controller dies in the
    middle of a round of calls. From then on, at every moment, each phase carries no more
    than it carried at the death or the safe values in force; so within the fuse when both
    are."""
    fuse = 32.0
    chargers = [SafeCharger(f"C{i}", wiring=w, max_a=32.0) for i, w in enumerate(wirings)]

    def safe_values(rotation: int) -> list[float]:
        safe = safe_allocation(chargers, limit_a=(fuse,) * 3, margin_a=0.0,
                               fallback_a=fallback, rotation_key=rotation)  # fmt: skip
        return [safe.limits_a[c.charger_id] for c in chargers]

    first = safe_values(0)
    sims = [Sim(w, s, None, s, None) for w, s in zip(wirings, first, strict=True)]
    now = T
    Calls = list[tuple[HeldLease | None, float | None]]
    pending: list[tuple[Sim, Calls]] = []  # a call answered next cycle, then the rest
    for n, (gap, wishes, outcomes, rotation) in enumerate(cycles):
        now += gap
        last = n == len(cycles) - 1
        carried: list[tuple[Sim, Calls]] = []
        for sim, calls in pending:  # the call in flight lands, the next one goes out
            lc, sc = calls[0]
            if lc is not None:
                sim.maybe.remove(lc)
            _call(sim, "accepted", lease=lc, safe=sc, now=now)
            if len(calls) > 1:
                following = calls[1][0]
                if following is not None:
                    sim.maybe.append(following)
                carried.append((sim, calls[1:]))
        pending = carried
        busy = {id(sim) for sim, _ in pending}
        safes = safe_values(rotation)
        targets = _fit(wishes[: len(sims)], sims, fuse)
        views = {}
        for i, sim in enumerate(sims):
            sim.maybe = [m for m in sim.maybe if m.valid_to > now]
            needs = sim.known_safe != safes[i] and id(sim) not in busy
            views[i] = LeaseView(
                sim.known_safe,
                sim.known_lease.limit_a if sim.known_lease else None,
                sim.known_lease.valid_to if sim.known_lease else None,
                sim.changed_at,
                busy=id(sim) in busy,
                maybe=tuple(sim.maybe),
                safe_maybe=tuple(sim.maybe_safes),
                safe_next=safes[i] if needs else None,
            )
        updates = {u.key: u for u in plan_leases(views, dict(enumerate(targets)), now, POLICY)}
        for i, sim in enumerate(sims):
            update, safe_next = updates.get(i), views[i].safe_next
            if update is None and safe_next is not None and unsuited(views[i], now):
                safe_next = None  # as the controller: not without the lease sent again first
            if update is None and safe_next is None:
                continue
            if safe_next is not None:
                sim.maybe_safes.append(safe_next)  # as the controller: from now on
            lease = HeldLease(update.limit_a, update.valid_to) if update else None
            lease_first = lease is not None and safe_next is not None and sim.known_safe is not None
            both: Calls = (
                [(lease, None), (None, safe_next)]
                if lease_first
                else [(None, safe_next), (lease, None)]
            )
            calls = [c for c in both if c != (None, None)]
            for k, (lc, sc) in enumerate(calls):
                if lc is not None:
                    sim.maybe.append(lc)  # in flight
                if last:  # the controller dies: the call in flight landed or not
                    if landed[(2 * i + k) % len(landed)]:
                        _call(sim, "accepted", lease=lc, safe=sc, controller=False)
                    break  # nothing after it goes out
                outcome = outcomes[(2 * i + k) % len(outcomes)]
                if outcome == "slow":  # answered next cycle: busy meanwhile
                    pending.append((sim, calls[k:]))
                    break
                if lc is not None:
                    sim.maybe.remove(lc)
                if not _call(sim, outcome, lease=lc, safe=sc, now=now):
                    if lc is not None and safe_next is not None and k == 0:
                        sim.maybe_safes.remove(safe_next)  # the safe value never went
                    break  # the controller goes on only after an accepted call

    for n, (sim, calls) in enumerate(pending):  # in flight when it died
        if landed[-1 - n % len(landed)]:
            _call(sim, "accepted", lease=calls[0][0], safe=calls[0][1], controller=False)
    # The controller is dead: from `now` on the chargers fall back on their own.
    at_death = _phase_loads(sims, now)
    all_safe = [sum(s.safe for s in sims if p in s.wiring) for p in range(3)]
    ends = sorted({s.lease.valid_to for s in sims if s.lease and s.lease.valid_to > now})
    for moment in [now, *ends]:
        loads = _phase_loads(sims, moment)
        for p in range(3):
            assert loads[p] <= max(at_death[p], all_safe[p]) + 1e-9, (moment - T, p, sims)
    if all(s.safe == t for s, t in zip(sims, safe_values(cycles[-1][3]), strict=True)):
        # Safe values as planned: they fit; what the leases held fit too (the allocation),
        # give or take a raise that went out in the last round before a lowering landed.
        assert max(all_safe) <= fuse + 1e-9


# --- what to send -------------------------------------------------------------------------


def view(**kw: object) -> LeaseView:
    kw.setdefault("safe_a", 6.0)
    return LeaseView(**kw)  # type: ignore[arg-type]


def test_effective_limit_is_the_lease_while_valid_then_the_safe_value() -> None:
    v = view(lease_a=20.0, valid_to=T + 10)
    assert v.effective_a(T) == 20.0
    assert v.effective_a(T + 10) == 6.0
    assert view(safe_a=None).effective_a(T) == float("inf")


def test_a_charger_without_a_lease_gets_one() -> None:
    updates = plan_leases({"A": view()}, {"A": 6.0}, T, POLICY)
    assert [(u.key, u.limit_a, u.reason) for u in updates] == [("A", 6.0, "refresh")]
    assert updates[0].valid_to == lease_end(T, 60.0)


def test_lowering_goes_first_and_raises_wait_for_the_next_cycle() -> None:
    views = {
        "up": view(lease_a=10.0, valid_to=T + 50, changed_at=T - 20),
        "down": view(lease_a=20.0, valid_to=T + 50, changed_at=T - 20),
    }
    targets = {"up": 20.0, "down": 10.0}
    updates = plan_leases(views, targets, T, POLICY)
    assert [(u.key, u.reason) for u in updates] == [("down", "lower")]
    assert updates[0].lowers
    # Next cycle, the lowering still in flight: still no raise.
    views["down"] = view(lease_a=20.0, valid_to=T + 50, busy=True, lowering=True)
    assert plan_leases(views, targets, T + 1, POLICY) == []
    # Once it is through, the raise goes.
    views["down"] = view(lease_a=10.0, valid_to=T + 50, changed_at=T + 1)
    updates = plan_leases(views, targets, T + 2, POLICY)
    assert [(u.key, u.limit_a, u.reason) for u in updates] == [("up", 20.0, "raise")]


def test_a_raise_waits_the_minimum_interval_but_a_lowering_never_does() -> None:
    recent = view(lease_a=10.0, valid_to=T + 50, changed_at=T - 1)
    assert plan_leases({"A": recent}, {"A": 20.0}, T, POLICY) == []
    assert [u.reason for u in plan_leases({"A": recent}, {"A": 8.0}, T, POLICY)] == ["lower"]
    assert [u.reason for u in plan_leases({"A": recent}, {"A": 20.0}, T + 4, POLICY)] == ["raise"]


def test_a_raise_its_refresh_would_carry_soon_waits_for_the_refresh() -> None:
    """Refresh due in 3 s (< min_interval): the raise goes with it, one call, not two; a
    start from 0 A does not wait, nor a raise with the refresh further away."""
    soon = view(lease_a=10.0, valid_to=T + 33, changed_at=T - 20)
    assert plan_leases({"A": soon}, {"A": 20.0}, T, POLICY) == []
    updates = plan_leases({"A": soon}, {"A": 20.0}, T + 3, POLICY)
    assert [(u.limit_a, u.reason) for u in updates] == [(20.0, "raise")]
    start = view(lease_a=0.0, valid_to=T + 33, changed_at=T - 20)
    assert [u.reason for u in plan_leases({"A": start}, {"A": 20.0}, T, POLICY)] == ["raise"]
    later = view(lease_a=10.0, valid_to=T + 40, changed_at=T - 20)
    assert [u.reason for u in plan_leases({"A": later}, {"A": 20.0}, T, POLICY)] == ["raise"]


def test_a_lease_is_refreshed_at_half_its_time_even_while_a_raise_waits() -> None:
    due = view(lease_a=10.0, valid_to=T + 30, changed_at=T - 1)
    updates = plan_leases({"A": due}, {"A": 20.0}, T, POLICY)
    assert [(u.limit_a, u.reason) for u in updates] == [(10.0, "refresh")]
    steady = view(lease_a=10.0, valid_to=T + 31, changed_at=T - 29)
    assert plan_leases({"A": steady}, {"A": 10.0}, T, POLICY) == []


def test_a_busy_charger_gets_nothing_and_a_charger_without_target_is_left_alone() -> None:
    busy = view(lease_a=10.0, valid_to=T + 1, busy=True)
    assert plan_leases({"A": busy}, {"A": 0.0}, T, POLICY) == []
    assert plan_leases({"A": view()}, {}, T, POLICY) == []


def test_an_unknown_safe_value_makes_every_target_a_lowering() -> None:
    updates = plan_leases({"A": view(safe_a=None)}, {"A": 32.0}, T, POLICY)
    assert [u.reason for u in updates] == ["lower"]


@given(
    st.dictionaries(
        st.sampled_from("ABCDEF"),
        st.tuples(
            st.one_of(st.none(), st.floats(0, 32)),
            st.floats(0, 32),
            st.floats(-60, 60),
            st.booleans(),
            st.booleans(),
        ),
        min_size=1,
    )
)
def test_no_raise_is_planned_while_any_charger_is_being_lowered(
    data: dict[str, tuple[float | None, float, float, bool, bool]],
) -> None:
    views = {
        k: LeaseView(6.0, lease, T + ends, T - 10, busy, busy and lowering)
        for k, (lease, _, ends, busy, lowering) in data.items()
    }
    targets = {k: round(target, 1) for k, (_, target, _, _, _) in data.items()}
    updates = plan_leases(views, targets, T, POLICY)
    keys = [u.key for u in updates]
    assert len(keys) == len(set(keys))
    assert all(not views[u.key].busy for u in updates)
    if any(u.lowers for u in updates) or any(v.busy and v.lowering for v in views.values()):
        assert all(u.reason != "raise" for u in updates)
    for u in updates:
        current = views[u.key].effective_a(T)
        if u.reason == "refresh":
            assert u.limit_a <= max(current, targets[u.key]) + 1e-9
