"""The OCPP server's use of the `Guard` (edge.security.guard): a connection's source
address, refusals as HTTP answers with Retry-After, log lines, security events, metrics.

`edge.server` calls it at three points: `admit` at the start of `_process_request`,
`failed` where credentials are refused, `opened` when a session starts. An admitted
connection is released when its connection task ends, whatever became of its handshake.
"""

from __future__ import annotations

import asyncio
import http
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Response

from edge.config import LimitsConfig
from edge.security.guard import Guard, Refusal, remember, source_key
from edge.services import Services

__all__ = ["ConnectionGuard"]

log = logging.getLogger("edge.security")


class ConnectionGuard:
    """The OCPP server's use of a `Guard`: refusals as HTTP answers, logged and counted."""

    def __init__(
        self,
        services: Services,
        limits: LimitsConfig,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.services = services
        self.guard = Guard(limits)
        self.monotonic = monotonic
        # Sources already logged as refused: one line per episode, not one per attempt.
        self._logged: OrderedDict[tuple[str, str], float] = OrderedDict()
        services.metrics.gauge(
            "edge_handshakes_pending",
            "Charger handshakes admitted and not yet authenticated",
            lambda: [((), float(self.guard.pending))],
        )

    def admit(self, conn: ServerConnection, identity: str | None) -> Response | None:
        """At the start of the handshake: None to go on, or the refusal to answer."""
        source = _source(conn)
        now = self.monotonic()
        outcome = self.guard.admit(source, identity, now)
        if isinstance(outcome, Refusal):
            return self._refuse(conn, source, identity, outcome, now)
        conn.guard_ticket = outcome  # type: ignore[attr-defined]
        task = asyncio.current_task()
        if task is not None:
            # The connection's task ends with the connection, whatever became of its
            # handshake: the one place every admitted connection passes through.
            task.add_done_callback(lambda _: self.guard.release(outcome))
        return None

    def opened(self, conn: ServerConnection) -> None:
        """At the start of a session: the connection is authenticated."""
        ticket = getattr(conn, "guard_ticket", None)
        if ticket is not None:
            self.guard.opened(ticket)

    def failed(self, conn: ServerConnection, identity: str) -> None:
        """Where credentials are refused: count them toward the back-off."""
        source = _source(conn)
        now = self.monotonic()
        source_was_locked = self.guard.source_locked(source, now) > 0
        count, delay = self.guard.failed(source, identity, now)
        svc = self.services
        svc.metrics.inc("edge_security_events_total", type="FailedAuthentication")
        if delay > 0:
            svc.metrics.inc("edge_security_events_total", type="AuthLockout")
            log.warning(
                "charger %r from %s: %d refused credentials in a row, locked out for %.0f s",
                identity,
                source,
                count,
                delay,
            )
            svc.record(
                identity,
                "AuthLockout",
                {"source": source, "failures": count, "seconds": round(delay, 1)},
            )
        source_lock = self.guard.source_locked(source, now)
        if source_lock > 0 and not source_was_locked:
            svc.metrics.inc("edge_security_events_total", type="SourceLockout")
            log.warning(
                "%s: too many refused credentials for several chargers, backed off for %.0f s"
                " (chargers that authenticated from there are not affected)",
                source,
                source_lock,
            )
            svc.record(None, "SourceLockout", {"source": source, "seconds": round(source_lock, 1)})

    def _refuse(
        self,
        conn: ServerConnection,
        source: str,
        identity: str | None,
        refusal: Refusal,
        now: float,
    ) -> Response:
        svc = self.services
        svc.metrics.inc("edge_connections_refused_total", reason=refusal.reason)
        key = (source, refusal.reason)
        last = self._logged.get(key)
        if last is None or now - last > 60.0:
            # Logged once a minute per source and reason: a flood must not flood the log.
            log.warning(
                "handshakes from %s refused (%s), e.g. for %r; retry after %.0f s",
                source,
                refusal.reason,
                identity,
                refusal.retry_after,
            )
            remember(self._logged, key, now, self.guard.limits.tracked_sources)
        text = {
            "rate_limited": "too many handshakes from this address\n",
            "locked_out": "too many refused credentials; try again later\n",
            "too_many_handshakes": "too many handshakes in progress\n",
            "capacity": "too many connections\n",
        }[refusal.reason]
        response = conn.respond(http.HTTPStatus(refusal.status), text)
        response.headers["Retry-After"] = str(max(1, math.ceil(refusal.retry_after)))
        return response


def _source(conn: ServerConnection) -> str:
    addr = conn.remote_address
    host = addr[0] if isinstance(addr, tuple) and addr else str(addr)
    return source_key(str(host))
