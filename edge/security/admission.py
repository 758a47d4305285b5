"""The OCPP server's use of the `Guard` (edge.security.guard): a connection's source
address, refusals as HTTP answers with Retry-After, log lines, security events, metrics.

`edge.server` calls it at three points: `admit` at the start of `_process_request`,
`failed` where credentials are refused, `opened` when a session starts. An admitted
connection is released when its connection task ends, whatever became of its handshake.
Its `connection_class` (websockets' `create_connection`) counts TCP connections per
source from the moment they are accepted (on the wss listener, once the TLS handshake,
which it starts, has succeeded).
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
from edge.security.events import METRIC, record_security_event
from edge.security.guard import Guard, Refusal, remember, source_key
from edge.security.tls import TlsListenerContext
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

    def connection_class(
        self, tls: TlsListenerContext | None = None, *, close_timeout: float = 5.0
    ) -> type[ServerConnection]:
        """websockets' connection class, counting TCP connections per source address; with
        `tls`, each connection first runs its TLS handshake (`TlsListenerContext.accept`),
        and is a WebSocket connection from its success on."""
        owner = self
        handshake_timeout = self.guard.limits.handshake_timeout

        class GuardedConnection(ServerConnection):
            guard_source: str | None = None
            tls_started = False

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                if tls is not None and not self.tls_started:
                    # The TCP connection: the TLS layer goes in front of this one, which
                    # is called again with the TLS transport once the handshake succeeds.
                    self.tls_started = True
                    tls.accept(
                        self,
                        transport,
                        handshake_timeout=handshake_timeout,
                        shutdown_timeout=close_timeout,
                    )
                    return
                super().connection_made(transport)
                peer = transport.get_extra_info("peername")
                source = source_key(str(peer[0])) if isinstance(peer, tuple) else str(peer)
                if owner.guard.socket_opened(source):
                    self.guard_source = source
                    return
                # Before a byte is read: the handshake task sees the connection lost.
                owner.refused_socket(source)
                self.transport.abort()

            def connection_lost(self, exc: Exception | None) -> None:
                if self.guard_source is not None:
                    owner.guard.socket_closed(self.guard_source)
                    self.guard_source = None
                super().connection_lost(exc)

        return GuardedConnection

    def refused_socket(self, source: str) -> None:
        self.services.metrics.inc("edge_connections_refused_total", reason="too_many_sockets")
        self._log_refusal(source, "too_many_sockets", None, 0.0, self.monotonic())

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
        # Every refusal is counted, but only a lockout is journalled: a flood of bad
        # credentials must not become a flood of writes to the SD card.
        svc.metrics.inc(METRIC, type="FailedAuthentication", critical="false")
        if delay > 0:
            record_security_event(
                svc,
                identity,
                "AuthLockout",
                f"from {source}: {count} refused credentials in a row, locked out for"
                f" {delay:.0f} s",
                critical=True,
            )
        source_lock = self.guard.source_locked(source, now)
        if source_lock > 0 and not source_was_locked:
            record_security_event(
                svc,
                None,
                "SourceLockout",
                f"{source}: too many refused credentials for several chargers, backed off for"
                f" {source_lock:.0f} s (chargers that authenticated from there are not"
                " affected)",
                critical=True,
            )

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
        self._log_refusal(source, refusal.reason, identity, refusal.retry_after, now)
        text = {
            "rate_limited": "too many handshakes from this address\n",
            "locked_out": "too many refused credentials; try again later\n",
            "too_many_handshakes": "too many handshakes in progress\n",
            "capacity": "too many connections\n",
        }[refusal.reason]
        response = conn.respond(http.HTTPStatus(refusal.status), text)
        response.headers["Retry-After"] = str(max(1, math.ceil(refusal.retry_after)))
        return response

    def _log_refusal(
        self, source: str, reason: str, identity: str | None, retry_after: float, now: float
    ) -> None:
        key = (source, reason)
        last = self._logged.get(key)
        if last is None or now - last > 60.0:
            # Logged once a minute per source and reason: a flood must not flood the log.
            log.warning(
                "handshakes from %s refused (%s), e.g. for %r; retry after %.0f s",
                source,
                reason,
                identity,
                retry_after,
            )
            remember(self._logged, key, now, self.guard.limits.tracked_sources)


def _source(conn: ServerConnection) -> str:
    addr = conn.remote_address
    host = addr[0] if isinstance(addr, tuple) and addr else str(addr)
    return source_key(str(host))
