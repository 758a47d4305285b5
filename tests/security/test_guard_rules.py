"""The guard's rules, pure: handshake bucket, concurrent handshakes, total cap, back-off."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.config import ConfigError, LimitsConfig, parse_config
from edge.security.guard import Guard, Refusal, Ticket, source_key

NAT = "192.0.2.1"


def admitted(outcome: Ticket | Refusal) -> Ticket:
    assert isinstance(outcome, Ticket), outcome
    return outcome


def refused(outcome: Ticket | Refusal, reason: str) -> Refusal:
    assert isinstance(outcome, Refusal), outcome
    assert outcome.reason == reason, outcome
    assert outcome.retry_after > 0
    return outcome


def test_a_site_of_200_chargers_behind_one_nat_reconnects_at_once() -> None:
    """The defaults let 200 chargers from one address in at the same instant, twice over
    (a first attempt that failed for some reason and its retry), authenticated or not yet."""
    guard = Guard(LimitsConfig())
    tickets = [admitted(guard.admit(NAT, f"CP{n:03}", 0.0)) for n in range(200)]
    for t in tickets:
        guard.release(t)
    tickets = [admitted(guard.admit(NAT, f"CP{n:03}", 1.0)) for n in range(200)]
    for t in tickets:
        guard.opened(t)
    assert guard.admitted == 200 and guard.pending == 0


def test_a_flood_from_one_address_is_slowed_to_the_rate() -> None:
    limits = replace(LimitsConfig(), handshake_burst=10, handshake_rate=2.0)
    guard = Guard(limits)
    for _ in range(10):
        guard.release(admitted(guard.admit("10.0.0.9", "X", 0.0)))
    refusal = refused(guard.admit("10.0.0.9", "X", 0.0), "rate_limited")
    assert refusal.status == 429 and refusal.retry_after == 0.5
    # Another address is not affected.
    admitted(guard.admit("10.0.0.10", "X", 0.0))
    # Half a second later one more token.
    guard.release(admitted(guard.admit("10.0.0.9", "X", 0.5)))
    refused(guard.admit("10.0.0.9", "X", 0.5), "rate_limited")


def test_unauthenticated_handshakes_are_capped_per_identity_and_per_source() -> None:
    limits = replace(LimitsConfig(), max_handshakes_per_identity=2, max_handshakes_per_source=3)
    guard = Guard(limits)
    a = admitted(guard.admit("10.0.0.1", "CP1", 0.0))
    admitted(guard.admit("10.0.0.2", "CP1", 0.0))
    refused(guard.admit("10.0.0.3", "CP1", 0.0), "too_many_handshakes")
    guard.opened(a)  # authenticated: no longer counts as a handshake for CP1
    admitted(guard.admit("10.0.0.3", "CP1", 0.0))
    admitted(guard.admit("10.0.0.1", "CP2", 0.0))
    admitted(guard.admit("10.0.0.1", "CP3", 0.0))
    admitted(guard.admit("10.0.0.1", "CP4", 0.0))  # CP1's is no longer pending
    refused(guard.admit("10.0.0.1", "CP5", 0.0), "too_many_handshakes")


def test_total_cap_counts_open_and_pending_connections() -> None:
    guard = Guard(replace(LimitsConfig(), max_connections=3))
    tickets = [admitted(guard.admit(f"10.0.0.{n}", f"CP{n}", 0.0)) for n in range(3)]
    guard.opened(tickets[0])
    refusal = refused(guard.admit("10.0.0.9", "CP9", 0.0), "capacity")
    assert refusal.status == 503
    guard.release(tickets[0])
    guard.release(tickets[0])  # idempotent
    admitted(guard.admit("10.0.0.9", "CP9", 0.0))
    assert guard.admitted == 3


def test_failed_credentials_back_off_exponentially_per_source_and_identity() -> None:
    limits = replace(LimitsConfig(), auth_free_failures=3, lockout_max=60.0)
    guard = Guard(limits)
    delays = [guard.failed("10.0.0.1", "CP1", 0.0)[1] for _ in range(10)]
    assert delays == [0.0, 0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]
    refusal = refused(guard.admit("10.0.0.1", "CP1", 1.0), "locked_out")
    assert refusal.status == 429 and refusal.retry_after == 59.0
    # The same identity from elsewhere, and another identity from the same address: not locked.
    admitted(guard.admit("10.0.0.2", "CP1", 1.0))
    admitted(guard.admit("10.0.0.1", "CP2", 1.0))
    # After the wait it may try again; a success forgets the failures.
    ticket = admitted(guard.admit("10.0.0.1", "CP1", 61.0))
    guard.opened(ticket)
    assert guard.failed("10.0.0.1", "CP1", 62.0) == (1, 0.0)


def test_a_locked_out_charger_does_not_spend_its_neighbours_tokens() -> None:
    limits = replace(LimitsConfig(), auth_free_failures=1, handshake_burst=5)
    guard = Guard(limits)
    guard.failed(NAT, "BAD", 0.0)
    guard.failed(NAT, "BAD", 0.0)
    for _ in range(100):
        refused(guard.admit(NAT, "BAD", 0.1), "locked_out")
    for n in range(5):
        guard.release(admitted(guard.admit(NAT, f"CP{n}", 0.1)))


def test_a_guesser_behind_the_nat_is_stopped_but_working_chargers_still_connect() -> None:
    limits = replace(LimitsConfig(), source_free_failures=20, auth_free_failures=5)
    guard = Guard(limits)
    for n in range(3):
        guard.opened(admitted(guard.admit(NAT, f"CP{n}", 0.0)))
    for n in range(40):  # one try each for many identities: no pair is ever locked
        assert guard.failed(NAT, f"GUESS{n}", 1.0)[1] == 0.0
    assert guard.source_locked(NAT, 1.0) > 0
    refused(guard.admit(NAT, "GUESS99", 1.0), "locked_out")
    for n in range(3):
        admitted(guard.admit(NAT, f"CP{n}", 1.0))
    # Another address is not concerned; a source's failures decay (one a minute).
    admitted(guard.admit("10.9.9.9", "GUESS99", 1.0))
    admitted(guard.admit(NAT, "GUESS99", 1.0 + 60.0 * 25))


def test_one_misconfigured_charger_never_locks_out_its_address() -> None:
    """A charger with a wrong password, retrying as soon as it may for a day, stays below
    the source's threshold: the other chargers behind the NAT are never concerned."""
    guard = Guard(LimitsConfig())
    now = 0.0
    while now < 86400.0:
        outcome = guard.admit(NAT, "WRONG", now)
        if isinstance(outcome, Refusal):
            now += outcome.retry_after
            continue
        guard.failed(NAT, "WRONG", now)
        guard.release(outcome)
        now += 5.0
        assert guard.source_locked(NAT, now) == 0.0
    admitted(guard.admit(NAT, "NEWCOMER", now))


def test_sources_are_counted_per_ipv4_address_and_ipv6_64() -> None:
    assert source_key("192.0.2.7") == "192.0.2.7"
    assert source_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert source_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert source_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert source_key("fe80::1%eth0") == "fe80::/64"
    assert source_key("not an address") == "not an address"


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["admit", "open", "release", "fail"]),
        st.integers(0, 300),  # source
        st.integers(0, 50),  # identity
        st.floats(0.0, 5.0),  # time step
    ),
    max_size=400,
)


@settings(max_examples=200, deadline=None, database=None)
@given(events=EVENTS)
def test_tables_stay_bounded_and_counts_consistent(
    events: list[tuple[str, int, int, float]],
) -> None:
    limits = replace(
        LimitsConfig(),
        tracked_sources=64,
        max_connections=50,
        handshake_burst=3,
        auth_free_failures=2,
        source_free_failures=5,
    )
    guard = Guard(limits)
    live: list[Ticket] = []
    now = 0.0
    for kind, src, ident, step in events:
        now += step
        source, identity = f"10.0.{src // 256}.{src % 256}", f"CP{ident}"
        if kind == "admit":
            outcome = guard.admit(source, identity, now)
            if isinstance(outcome, Ticket):
                live.append(outcome)
        elif kind == "open" and live:
            guard.opened(live[ident % len(live)])
        elif kind == "release" and live:
            guard.release(live.pop(ident % len(live)))
        elif kind == "fail":
            guard.failed(source, identity, now)
        assert guard.admitted == len(live) <= limits.max_connections
        assert guard.pending == sum(t.pending for t in live)
        sizes = guard.sizes()
        assert sizes["buckets"] <= 64 and sizes["pair_failures"] <= 64
        assert sizes["source_failures"] <= 64 and sizes["known_good"] <= 64 * 4
        assert sizes["pending_sources"] <= len(live) and sizes["pending_identities"] <= len(live)
    for t in live:
        guard.release(t)
    assert guard.admitted == guard.pending == 0
    assert guard.sizes()["pending_sources"] == guard.sizes()["pending_identities"] == 0


def test_limits_are_read_from_ocpp_limits() -> None:
    config = parse_config({"ocpp": {"limits": {"max_connections": 10, "handshake_rate": 2.5}}})
    assert config.ocpp.limits.max_connections == 10
    assert config.ocpp.limits.handshake_rate == 2.5
    assert config.ocpp.limits.handshake_burst == LimitsConfig().handshake_burst
    assert parse_config({}).ocpp.limits == LimitsConfig()
    with pytest.raises(ConfigError) as info:
        parse_config({"ocpp": {"limits": {"max_connections": 0, "burst": 3}}})
    assert any(p.startswith("ocpp.limits.max_connections:") for p in info.value.problems)
    assert any(p.startswith("ocpp.limits.burst: unknown key") for p in info.value.problems)


def test_open_sockets_are_capped_per_source() -> None:
    guard = Guard(replace(LimitsConfig(), max_sockets_per_source=2))
    assert guard.socket_opened("10.0.0.1") and guard.socket_opened("10.0.0.1")
    assert not guard.socket_opened("10.0.0.1")
    assert guard.socket_opened("10.0.0.2")
    guard.socket_closed("10.0.0.1")
    assert guard.socket_opened("10.0.0.1")
    for source in ("10.0.0.1", "10.0.0.1", "10.0.0.2"):
        guard.socket_closed(source)
    assert guard.sizes()["socket_sources"] == 0
