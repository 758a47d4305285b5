"""Who may use `/api`: the Bearer token, or a login session's cookie (the page).

Browsers cannot put an `Authorization` header on a WebSocket, and a token kept in the
page's storage is readable by any script injected into it. So the page logs in once
(`POST /api/session` with `[web] password`, or the API token when none is set) and gets
an HttpOnly, SameSite=Strict cookie holding a random session id. Sessions live in
memory: a restart asks for the password again, and nothing is written to the SD card.

CSRF: with the cookie, a state-changing request (and the `/api/live` upgrade, which
browsers never subject to CORS) must carry an `Origin` naming this host. The Bearer
token needs no such check: a browser never sends it on its own.

Refused credentials (a wrong Bearer token, a failed login) are throttled per remote
address together, exponentially after a few free tries (`Throttle`, the back-off of the
OCPP guard), and logged without the secret. While an address is backed off, the API
answers its requests 429 whatever they hold, a right token included: otherwise the
throttle would tell a right guess from a wrong one. A logged-in page's cookie (a random
session id, not something one guesses) is not held back.

The routes that open and close sessions are in `edge.web.login`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from edge.security.guard import backoff, remember, source_key
from edge.security.token import TokenStore
from edge.web.password import PasswordHash

__all__ = [
    "COOKIE",
    "SESSION_DAYS",
    "STATE_CHANGING",
    "Failure",
    "Throttle",
    "WebAuth",
    "same_origin",
]

COOKIE = "edge_session"
SESSION_DAYS = 30
MAX_SESSIONS = 256  # the oldest is dropped beyond this (a page left open on many phones)
FREE_TRIES = 3  # refused credentials in a row, the last of which starts the back-off
MAX_DELAY = 900.0  # s: the longest wait after many refused credentials
MAX_ADDRESSES = 1024  # throttled addresses remembered; the oldest forgotten beyond this
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(slots=True)
class _Failures:
    count: int
    at: float  # the last refusal
    blocked_until: float
    throttled: bool = False  # this run of refusals has started a back-off


@dataclass(frozen=True, slots=True)
class Failure:
    """A refusal counted by `Throttle.failed`."""

    count: int
    """Refused credentials from the address in a row."""
    delay: float
    """Seconds the address is now backed off for (0: it may try again at once)."""
    episode_started: bool
    """This refusal started the address's back-off (log and journal it once, not every
    refusal of a flood)."""


class Throttle:
    """Refused operator credentials per remote address (IPv6 per /64, as the OCPP guard
    counts sources): the `FREE_TRIES`-th refusal in a row makes the address wait 1 s,
    each further one doubles the wait, up to `MAX_DELAY`; a success clears the address,
    and so does a quiet spell of twice `MAX_DELAY`."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def retry_after(self, address: str) -> float:
        """Seconds before `address` may try again (0: now)."""
        entry = self._failures.get(source_key(address))
        if entry is None:
            return 0.0
        return max(0.0, entry.blocked_until - self.monotonic())

    def failed(self, address: str) -> Failure:
        """Count a refusal of `address`'s credentials."""
        key = source_key(address)
        now = self.monotonic()
        entry = self._failures.get(key)
        if entry is None or now - entry.at > 2 * MAX_DELAY:
            entry = _Failures(0, now, 0.0)
        entry.count += 1
        entry.at = now
        # The OCPP guard's curve: free tries, then 1 s, 2 s, 4 s, … up to MAX_DELAY.
        delay = backoff(entry.count, FREE_TRIES - 1, MAX_DELAY)
        started = delay > 0 and not entry.throttled
        if delay > 0:
            entry.blocked_until = now + delay
            entry.throttled = True
        remember(self._failures, key, entry, MAX_ADDRESSES)
        return Failure(entry.count, delay, started)

    def succeeded(self, address: str) -> None:
        if self._failures:
            self._failures.pop(source_key(address), None)


class WebAuth:
    """The token (hash), the password (hash) and the login sessions of one web application."""

    def __init__(
        self,
        token: TokenStore,
        password: PasswordHash | None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        self.password = password
        self.monotonic = monotonic
        self.throttle = Throttle(monotonic)
        self._sessions: OrderedDict[str, float] = OrderedDict()  # id → expiry (monotonic)

    def bearer_ok(self, request: web.BaseRequest) -> bool:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        given = given.strip()
        return scheme.lower() == "bearer" and bool(given) and self.token.matches(given)

    def session_ok(self, request: web.BaseRequest) -> bool:
        session_id = request.cookies.get(COOKIE)
        if not session_id:
            return False
        expires = self._sessions.get(session_id)
        if expires is None:
            return False
        if expires <= self.monotonic():
            del self._sessions[session_id]
            return False
        return True

    async def check_password(self, given: str) -> bool:
        """Whether `given` opens a session: the password, or the token when none is set."""
        if self.password is None:
            return self.token.matches(given)
        # scrypt takes tens of ms (hundreds on a Pi): not on the event loop.
        return await asyncio.to_thread(self.password.matches, given)

    def open_session(self) -> str:
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = self.monotonic() + SESSION_DAYS * 86400
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return session_id

    def close_other_sessions(self, request: web.BaseRequest) -> int:
        """Log out every browser but the one making `request` (after a token rotation:
        a session opened with the old token may be the reason for it)."""
        keep = request.cookies.get(COOKIE)
        closed = [s for s in self._sessions if s != keep]
        for session_id in closed:
            del self._sessions[session_id]
        return len(closed)

    def close_session(self, request: web.BaseRequest) -> None:
        session_id = request.cookies.get(COOKIE)
        if session_id:
            self._sessions.pop(session_id, None)


def same_origin(request: web.BaseRequest) -> bool:
    """Whether the request's `Origin` names this host (CSRF and cross-site WebSocket
    check); a request without one fails."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return False
    return urlsplit(origin).netloc.lower() == (request.host or "").lower()
