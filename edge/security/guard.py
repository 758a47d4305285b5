"""What one source address may cost the OCPP endpoint: handshake rate, concurrent
handshakes, connections in total, and a back-off after refused credentials.

Pure: every call takes the monotonic time; no I/O. `edge.security.admission` is the
server's side of it (the HTTP refusals, log lines, security events and metrics).

Why these shapes:
- A site's chargers often sit behind one NAT address and all reconnect at once after a
  restart of the edge or of the router. The handshake bucket (burst 400) and the cap on
  concurrent handshakes per source (256) let 200 of them in at once; a host hammering the
  endpoint is slowed to `handshake_rate` handshakes a second.
- Failed credentials back off per (source, identity): one misconfigured charger, or
  someone guessing one charger's password, is slowed down exponentially without touching
  the other chargers behind the same address. Failures per source decay by one a minute
  and back off only the identities that never authenticated from that source, so a
  guesser trying many identities is stopped and the working chargers behind the same NAT
  keep connecting.
- A second authenticated connection of a charger replaces the first (DESIGN §4), so the
  per-identity cap is on handshakes not yet authenticated: they are what a stranger can
  open in a charger's name.
- A connection that never sends its request never reaches the handshake checks, so TCP
  connections are also counted per source from the moment they are accepted
  (`max_sockets_per_source`): one host cannot hold every file descriptor.
- Every table is bounded (`tracked_sources` entries, least recently used dropped; the
  counters of open connections by their number); IPv6 sources count per /64, the block
  one host can pick addresses from.
"""

from __future__ import annotations

import http
import ipaddress
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import TypeVar

from edge.config import LimitsConfig

__all__ = ["Guard", "Refusal", "Ticket", "backoff", "remember", "source_key"]

SOURCE_DECAY = 60.0  # s: one refused credential of a source forgotten per minute
KNOWN_PER_SOURCE = 4  # known-good identities tracked per source, times tracked_sources

K = TypeVar("K")
V = TypeVar("V")


def source_key(address: str) -> str:
    """The address limits are counted by: IPv4 as is, IPv6 by its /64."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a handshake is refused, and how: an HTTP status and seconds to wait."""

    reason: str  # "rate_limited" | "locked_out" | "too_many_handshakes" | "capacity"
    status: int
    retry_after: float


@dataclass(slots=True)
class Ticket:
    """One admitted connection, from its request until it closes."""

    source: str
    identity: str | None
    pending: bool = True  # not yet authenticated
    released: bool = False


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


@dataclass(slots=True)
class _Failures:
    count: float
    at: float  # time of the last failure (or of the last decay, for a source)
    blocked_until: float


def remember(table: OrderedDict[K, V], key: K, value: V, cap: int) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > cap:
        table.popitem(last=False)


def _drop_count(table: dict[K, int], key: K) -> None:
    left = table.get(key, 0) - 1
    if left > 0:
        table[key] = left
    else:
        table.pop(key, None)


class Guard:
    """The admission and back-off rules, without I/O."""

    def __init__(self, limits: LimitsConfig) -> None:
        self.limits = limits
        cap = limits.tracked_sources
        self._cap = cap
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._pair_failures: OrderedDict[tuple[str, str], _Failures] = OrderedDict()
        self._source_failures: OrderedDict[str, _Failures] = OrderedDict()
        self._known_good: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._pending_by_source: dict[str, int] = {}
        self._pending_by_identity: dict[str, int] = {}
        self._sockets_by_source: dict[str, int] = {}
        self.admitted = 0  # connections admitted and not yet released
        self.pending = 0  # of those, not yet authenticated

    # --- sockets ----------------------------------------------------------------------------

    def socket_opened(self, source: str) -> bool:
        """A TCP connection from `source` was accepted: whether it may stay open (counted
        only then; `socket_closed` must follow a True)."""
        open_now = self._sockets_by_source.get(source, 0)
        if open_now >= self.limits.max_sockets_per_source:
            return False
        self._sockets_by_source[source] = open_now + 1
        return True

    def socket_closed(self, source: str) -> None:
        _drop_count(self._sockets_by_source, source)

    # --- admission ------------------------------------------------------------------------

    def admit(self, source: str, identity: str | None, now: float) -> Ticket | Refusal:
        """Admit a handshake from `source` for `identity` (None: the path names none)."""
        lim = self.limits
        if identity is not None:
            lockout = self._lockout(source, identity, now)
            if lockout > 0:
                # Before the bucket: a locked-out charger's retries cost no tokens that
                # the other chargers behind its address need.
                return Refusal("locked_out", http.HTTPStatus.TOO_MANY_REQUESTS, lockout)
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = _Bucket(float(lim.handshake_burst), now)
        else:
            elapsed = max(0.0, now - bucket.at)
            bucket.tokens = min(lim.handshake_burst, bucket.tokens + elapsed * lim.handshake_rate)
            bucket.at = now
        remember(self._buckets, source, bucket, self._cap)
        if bucket.tokens < 1.0:
            wait = (1.0 - bucket.tokens) / lim.handshake_rate
            return Refusal("rate_limited", http.HTTPStatus.TOO_MANY_REQUESTS, wait)
        if self.admitted >= lim.max_connections:
            # The bucket is not charged: being full is not the caller's doing.
            return Refusal("capacity", http.HTTPStatus.SERVICE_UNAVAILABLE, 10.0)
        if self._pending_by_source.get(source, 0) >= lim.max_handshakes_per_source or (
            identity is not None
            and self._pending_by_identity.get(identity, 0) >= lim.max_handshakes_per_identity
        ):
            return Refusal("too_many_handshakes", http.HTTPStatus.TOO_MANY_REQUESTS, 1.0)
        bucket.tokens -= 1.0
        self.admitted += 1
        self.pending += 1
        self._pending_by_source[source] = self._pending_by_source.get(source, 0) + 1
        if identity is not None:
            self._pending_by_identity[identity] = self._pending_by_identity.get(identity, 0) + 1
        return Ticket(source, identity)

    def opened(self, ticket: Ticket) -> None:
        """The connection authenticated and its session starts: it is no longer a pending
        handshake, and its identity's refused credentials from this source are forgiven."""
        if ticket.released or not ticket.pending:
            return
        self._end_pending(ticket)
        if ticket.identity is not None:
            pair = (ticket.source, ticket.identity)
            self._pair_failures.pop(pair, None)
            remember(self._known_good, pair, None, self._cap * KNOWN_PER_SOURCE)

    def release(self, ticket: Ticket) -> None:
        """The connection closed (or its handshake failed); idempotent."""
        if ticket.released:
            return
        if ticket.pending:
            self._end_pending(ticket)
        ticket.released = True
        self.admitted -= 1

    def _end_pending(self, ticket: Ticket) -> None:
        ticket.pending = False
        self.pending -= 1
        _drop_count(self._pending_by_source, ticket.source)
        if ticket.identity is not None:
            _drop_count(self._pending_by_identity, ticket.identity)

    # --- refused credentials ----------------------------------------------------------------

    def failed(self, source: str, identity: str, now: float) -> tuple[int, float]:
        """Count refused credentials; returns (failures of this pair in a row, seconds it is
        now locked out for, 0 while within its free failures)."""
        lim = self.limits
        pair = (source, identity)
        entry = self._pair_failures.get(pair)
        if entry is None or now - entry.at > 2 * lim.lockout_max:
            entry = _Failures(0.0, now, 0.0)  # quiet for long enough: a fresh start
        entry.count += 1
        entry.at = now
        delay = backoff(entry.count, lim.auth_free_failures, lim.lockout_max)
        entry.blocked_until = now + delay
        remember(self._pair_failures, pair, entry, self._cap)

        src = self._source_failures.get(source)
        if src is None:
            src = _Failures(0.0, now, 0.0)
        src.count = max(0.0, src.count - max(0.0, now - src.at) / SOURCE_DECAY) + 1.0
        src.at = now
        src.blocked_until = now + backoff(src.count, lim.source_free_failures, lim.lockout_max)
        remember(self._source_failures, source, src, self._cap)
        return int(entry.count), delay

    def _lockout(self, source: str, identity: str, now: float) -> float:
        """Seconds before `identity` may try again from `source` (0: now)."""
        wait = 0.0
        pair = self._pair_failures.get((source, identity))
        if pair is not None:
            wait = pair.blocked_until - now
        src = self._source_failures.get(source)
        if src is not None and (source, identity) not in self._known_good:
            wait = max(wait, src.blocked_until - now)
        return max(0.0, wait)

    def source_locked(self, source: str, now: float) -> float:
        """Seconds the source is backed off for the identities it never authenticated."""
        src = self._source_failures.get(source)
        return 0.0 if src is None else max(0.0, src.blocked_until - now)

    def sizes(self) -> dict[str, int]:
        """Entries per table (their bound is tested)."""
        return {
            "buckets": len(self._buckets),
            "pair_failures": len(self._pair_failures),
            "source_failures": len(self._source_failures),
            "known_good": len(self._known_good),
            "pending_sources": len(self._pending_by_source),
            "pending_identities": len(self._pending_by_identity),
            "socket_sources": len(self._sockets_by_source),
        }


def backoff(count: float, free: int, longest: float) -> float:
    """0 within the free failures, then 1 s, 2 s, 4 s, … up to `longest` (also the
    operator API's back-off, `edge.web.auth.Throttle`)."""
    over = count - free
    if over <= 0:
        return 0.0
    return min(longest, math.pow(2.0, min(over - 1.0, 40.0)))
