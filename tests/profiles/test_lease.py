"""Lease profiles: strategies, the profiles themselves, the expiry grid and what to send when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from profiles.composite import composite_schedule
from profiles.lease import (
    LEASE_PROFILE_ID,
    SAFE_PROFILE_ID,
    LeasePolicy,
    LeaseView,
    Strategy,
    is_site_profile,
    lease_end,
    plan_leases,
    site_profile,
    strategies,
)
from profiles.model import ChargingProfilePurpose, ChargingRateUnit, parse_profile, render_profile
from profiles.validation import validate_profile

CPMAX = ChargingProfilePurpose.CHARGE_POINT_MAX
TXDEFAULT = ChargingProfilePurpose.TX_DEFAULT
NOW = datetime(2026, 5, 1, 12, 0, 7, 250_000, tzinfo=UTC)
T = NOW.timestamp()
POLICY = LeasePolicy(lease_time=60.0, min_interval=5.0)


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


# --- the expiry grid ----------------------------------------------------------------------


@given(st.floats(min_value=1e9, max_value=2e9), st.sampled_from([4.0, 60.0, 90.0, 600.0]))
def test_lease_end_is_on_the_grid_more_than_half_a_lease_away(now: float, lease: float) -> None:
    end = lease_end(now, lease)
    assert now + lease / 2 < end <= now + lease + 1e-6
    assert end / (lease / 2) == pytest.approx(round(end / (lease / 2)))


def test_leases_sent_within_one_grid_step_end_together() -> None:
    assert lease_end(1020.0, 60.0) == lease_end(1049.9, 60.0) == 1080.0
    assert lease_end(1050.0, 60.0) == 1110.0


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
