"""The OCPP-J WebSocket endpoint: handshake checks, then one ChargerSession per connection.

`ws://HOST:PORT/<any prefix>/<chargePointId>`: the identity is the last path
segment, percent-decoded (OCPP-J 1.6 §3.1.1). The `ocpp1.6` subprotocol is
required: a handshake that offers none of ours is refused with HTTP 400, and the
response echoes exactly `ocpp1.6` (OCPP-J §3.1.2, certification case TC_088).

Two listeners share the rules: ws (profiles 0 and 1) and, with `[ocpp.tls]`, wss
(profiles 2 and 3; `edge.security.tls`). Who may connect as which charger, at which
security profile, is `edge.security.connection`'s decision, taken before the upgrade:
401 for missing or wrong Basic credentials, 403 for a connection below the charger's
profile (a downgrade), a client certificate that does not name it, or a revoked one.

A connection's client certificate (serial number and issuer) is kept while it is open:
when the service learns of a revocation (the API, a reload of the CRL after
`edge-csms ca revoke`, SIGHUP), `close_revoked` closes the connections that present a
revoked certificate at once (1008, policy violation) instead of letting them run until
the charger reconnects.
"""

from __future__ import annotations

import dataclasses
import http
import logging
import socket
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from edge.chargers import Registration
from edge.events import Connected, Disconnected
from edge.security.admission import ConnectionGuard
from edge.security.ca import serial_hex
from edge.security.connection import Admission
from edge.security.credentials import Busy
from edge.security.events import record_security_event
from edge.security.profiles import Refusal
from edge.security.tls import PeerCertificate, TlsListenerContext, peer_certificate
from edge.services import Services
from edge.session import ChargerSession, Handler, SessionRegistry

__all__ = ["OcppServer", "charger_identity"]

log = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"
TLS_EVENTS_PER_MINUTE = 30
PENDING_FULL_EVENTS_PER_MINUTE = 30
MAX_IDENTITY_LENGTH = 128
CLOSE_TIMEOUT = 5.0  # s: the closing handshake (WebSocket, then TLS)
REVOKED_CLOSE_CODE = 1008  # RFC 6455 policy violation: the certificate was revoked


def charger_identity(path: str) -> str | None:
    """The charge point identity in a request path, or None if there is none.

    The path arrives raw (query included, not decoded): `/ocpp/RDAM%20123?x=1` → `RDAM 123`.
    """
    segment = path.split("?", 1)[0].rsplit("/", 1)[-1]
    if not segment:
        return None  # "/ocpp/": a charger configured without its identity
    try:
        identity = unquote(segment, errors="strict") if "%" in segment else segment
    except UnicodeDecodeError:
        return None
    if len(identity) > MAX_IDENTITY_LENGTH or not identity.isprintable():
        return None
    return identity


class PerMinute:
    """Occurrences counted in one-minute windows, so that a flood is logged and journalled
    a bounded number of times a minute while every occurrence is still counted."""

    def __init__(self) -> None:
        self._window = 0.0
        self._seen = 0

    def count(self, now: float) -> int:
        """Count one at `now` (monotonic s); how many this window has seen, itself included."""
        if now - self._window >= 60.0:
            self._window, self._seen = now, 0
        self._seen += 1
        return self._seen


class OcppServer:
    """Accepts charger connections and runs their sessions."""

    def __init__(
        self, services: Services, sessions: SessionRegistry, handlers: Mapping[str, Handler]
    ) -> None:
        self.services = services
        self.sessions = sessions
        self.handlers = handlers
        # One guard for both listeners: the limits span ws and wss.
        self.guard = ConnectionGuard(services, services.config.ocpp.limits)
        self._servers: list[Server] = []
        self.tls: TlsListenerContext | None = None
        # The client certificate of each open session that presented one (wss).
        self._peers: dict[ChargerSession, PeerCertificate] = {}
        self._tls_refusals = PerMinute()
        # Unknown identities let through the handshake under the pending policy and not
        # registered yet (by monotonic deadline): they count toward the cap, so that
        # concurrent handshakes cannot overshoot it. `_handle` removes them; a handshake
        # that fails after `_process_request` expires with its timeout.
        self._arriving: dict[str, float] = {}
        self._pending_full_refusals = PerMinute()

    async def start(self, host: str, port: int) -> list[tuple[str, int]]:
        """Start the ws listener; returns the bound addresses."""
        return await self._listen(host, port, None)

    async def start_tls(
        self, host: str, port: int, tls: TlsListenerContext
    ) -> list[tuple[str, int]]:
        """Start the wss listener on `tls`'s context; returns the bound addresses."""
        self.tls = tls
        return await self._listen(host, port, tls)

    async def _listen(
        self, host: str, port: int, tls: TlsListenerContext | None
    ) -> list[tuple[str, int]]:
        cfg = self.services.config.ocpp
        server = await serve(
            self._handle,
            host,
            port,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            process_request=self._process_request,
            # With `tls`, each connection runs its own TLS handshake (so a refused one is
            # known with its peer's address): the listener itself is plain TCP.
            create_connection=self.guard.connection_class(tls, close_timeout=CLOSE_TIMEOUT),
            compression=None,  # OCPP-J §5.1; also ~40 KiB less memory per connection
            max_size=cfg.max_message_size,
            max_queue=8,
            ping_interval=cfg.ping_interval or None,
            ping_timeout=cfg.ping_timeout,
            open_timeout=cfg.limits.handshake_timeout,
            close_timeout=CLOSE_TIMEOUT,
            server_header=None,
            # A site's chargers all reconnect at once after a restart: a deep accept
            # queue keeps their handshakes from timing out while the loop catches up.
            backlog=4096,
        )
        self._servers.append(server)
        return [_address(s) for s in server.sockets]

    async def close(self) -> None:
        for server in self._servers:
            server.close(close_connections=True)
        for server in self._servers:
            await server.wait_closed()

    def handshake_refused(self, reason: str, peer: str | None = None) -> None:
        """OpenSSL ended a wss handshake from `peer` ("address:port";
        `TlsListenerContext.on_refused`): counted always, journalled and logged with the
        peer at most `TLS_EVENTS_PER_MINUTE` times a minute (a scan or a flood of bad
        handshakes must not write the SD card, nor the log, at its pace)."""
        svc = self.services
        svc.metrics.inc("edge_connections_refused_total", reason="tls")
        seen = self._tls_refusals.count(time.monotonic())
        source = peer or "an unknown address"
        if seen <= TLS_EVENTS_PER_MINUTE:
            record_security_event(svc, None, "TlsHandshakeRefused", f"{reason} (from {source})")
        elif seen == TLS_EVENTS_PER_MINUTE + 1:
            log.warning(
                "more refused TLS handshakes this minute (the latest from %s); counted, not logged",
                source,
            )

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        refused = self.guard.admit(conn, charger_identity(request.path))
        if refused is not None:
            return refused
        if request.method != "GET":
            return conn.respond(http.HTTPStatus.METHOD_NOT_ALLOWED, "OCPP-J needs a GET upgrade\n")
        identity = charger_identity(request.path)
        if identity is None:
            return conn.respond(http.HTTPStatus.NOT_FOUND, "no charge point identity in path\n")
        svc = self.services
        charger = svc.chargers.get(identity)
        settings = svc.config.chargers.get(identity)
        if charger is None and settings is None and svc.config.ocpp.unknown_chargers == "reject":
            # OCPP-J: unknown identities are refused with HTTP 404 (1.6 errata 3.68).
            log.info("refused unknown charger %r from %s", identity, _peer(conn))
            svc.metrics.inc("edge_connections_refused_total", reason="unknown")
            svc.record(identity, "ConnectionRefused", {"reason": "unknown charger"})
            return conn.respond(http.HTTPStatus.NOT_FOUND, "unknown charge point\n")
        if (
            charger is None
            and settings is None
            and svc.config.ocpp.unknown_chargers == "pending"
            and self._pending_full(identity)
        ):
            # As "reject" would: 404 (1.6 errata 3.68), nothing registered.
            self._refuse_pending_full(conn, identity)
            return conn.respond(http.HTTPStatus.NOT_FOUND, "unknown charge point\n")
        verdict = await self._admit(conn, request, identity)
        if isinstance(verdict, Response):
            self._arriving.pop(identity, None)  # refused: it holds no pending place
            return verdict
        conn.charger_id = identity  # type: ignore[attr-defined]
        conn.admission = verdict  # type: ignore[attr-defined]
        return None

    def pending_count(self) -> int:
        """Chargers waiting for an operator's approval (registration Pending, not
        configured in `[chargers.*]`), with the unknown identities whose handshakes
        are under way."""
        svc = self.services
        now = time.monotonic()
        for identity, deadline in list(self._arriving.items()):
            if deadline <= now:
                del self._arriving[identity]
        configured = svc.config.chargers
        registered = sum(
            1
            for charger in svc.chargers
            if charger.registration is Registration.PENDING and charger.id not in configured
        )
        return registered + len(self._arriving)

    def _pending_full(self, identity: str) -> bool:
        """Whether `identity` (unknown, under the pending policy) finds every pending
        place taken; if not, it holds one until its session starts."""
        cfg = self.services.config.ocpp
        if identity not in self._arriving and self.pending_count() >= cfg.max_pending_chargers:
            return True
        self._arriving[identity] = time.monotonic() + cfg.limits.handshake_timeout + 1.0
        return False

    def _refuse_pending_full(self, conn: ServerConnection, identity: str) -> None:
        """Count a refusal for a full pending list; log it at most once a minute and raise a
        security event at most `PENDING_FULL_EVENTS_PER_MINUTE` times a minute (a flood of
        new identities must not write the SD card, nor the log, at its pace)."""
        svc = self.services
        svc.metrics.inc("edge_connections_refused_total", reason="pending_full")
        seen = self._pending_full_refusals.count(time.monotonic())
        limit = svc.config.ocpp.max_pending_chargers
        if seen == 1:
            log.warning(
                "%d chargers already wait for approval (max_pending_chargers): refused"
                " unknown charger %r from %s; further refusals this minute are counted"
                ' (edge_connections_refused_total{reason="pending_full"}), not logged',
                limit,
                identity,
                _peer(conn),
            )
        if seen <= PENDING_FULL_EVENTS_PER_MINUTE:
            record_security_event(
                svc,
                None,
                "PendingChargersFull",
                f"unknown charger {identity!r} refused: {limit} chargers already wait for"
                f" approval (from {_peer(conn)})",
            )

    async def _admit(
        self, conn: ServerConnection, request: Request, identity: str
    ) -> Admission | Response:
        """The security profile check (`edge.security.connection`), or the refusal."""
        svc = self.services
        if svc.security is None:
            return Admission(0)
        ssl_object: Any = conn.transport.get_extra_info("ssl_object")
        try:
            peer = peer_certificate(ssl_object)
        except ValueError:  # OpenSSL verified it, but it does not parse here
            return self._refuse(
                conn,
                identity,
                Refusal("certificate", "the client certificate cannot be read"),
                event="InvalidChargePointCertificate",
            )
        if peer is not None and self.revoked(peer):
            return self._refuse(
                conn,
                identity,
                Refusal("revoked", "the client certificate is revoked"),
                event="RevokedCertificateRefused",
            )
        charger = svc.chargers.get(identity)
        serials = (
            (charger.doc.get("serialNumber"), charger.doc.get("chargeBoxSerialNumber"))
            if charger is not None
            else ()
        )
        try:
            verdict = await svc.security.admit(
                identity,
                tls=ssl_object is not None,
                peer=peer,
                authorization=request.headers.get("Authorization"),
                serial_numbers=serials,
            )
        except Busy:
            svc.metrics.inc("edge_connections_refused_total", reason="busy")
            response = conn.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "busy, retry later\n")
            response.headers["Retry-After"] = "10"
            return response
        if isinstance(verdict, Refusal):
            event = {
                "credentials": "InvalidChargePointCredentials",
                "certificate": "InvalidChargePointCertificate",
            }.get(verdict.kind, "SecurityProfileDowngradeRefused")
            return self._refuse(conn, identity, verdict, event=event)
        conn.peer_certificate = peer  # type: ignore[attr-defined]
        return verdict if peer is None else dataclasses.replace(verdict, certificate=peer)

    def revoked(self, peer: PeerCertificate) -> bool:
        """Revoked in the listener's CRLs, or in the site CA's register: a revocation
        holds from its answer on, also while the listener is still reloading the CRL
        (which then refuses the certificate in the handshake)."""
        if self.tls is not None and peer.revoked_in(self.tls.current.revoked):
            return True
        authority = self.services.certificates
        return authority is not None and authority.revoked(peer.issuer, peer.serial_number)

    def close_revoked(self) -> int:
        """Close every open connection whose client certificate is now revoked (called
        when the service learns of a revocation); how many it closes."""
        closed = 0
        for session, peer in list(self._peers.items()):
            closed += self._close_if_revoked(session, peer)
        return closed

    def _close_if_revoked(self, session: ChargerSession, peer: PeerCertificate) -> bool:
        if session.closed or not self.revoked(peer):
            return False
        del self._peers[session]  # closed once, whatever else is revoked meanwhile
        serial = serial_hex(peer.serial_number)
        # A critical event: logged as a warning on edge.security, journalled, counted.
        record_security_event(
            self.services,
            session.charger.id,
            "RevokedCertificateDisconnected",
            f"client certificate {serial} revoked: its connection from {_peer(session.ws)}"
            f" is closed ({REVOKED_CLOSE_CODE}, policy violation)",
            critical=True,
        )
        self.sessions.close(session, REVOKED_CLOSE_CODE, "client certificate revoked")
        return True

    def _refuse(
        self, conn: ServerConnection, identity: str, refusal: Refusal, *, event: str
    ) -> Response:
        """Answer a refused handshake: 401 for credentials (with a Basic challenge), 403
        for the rest; logged, journalled and counted as a security event."""
        svc = self.services
        if refusal.kind in ("credentials", "certificate"):
            self.guard.failed(conn, identity)  # toward the back-off of repeated failures
        reason = "credentials" if refusal.kind == "credentials" else refusal.kind
        svc.metrics.inc("edge_connections_refused_total", reason=reason)
        svc.record(identity, "ConnectionRefused", {"reason": refusal.text})
        record_security_event(svc, identity, event, f"{refusal.text} (from {_peer(conn)})")
        if refusal.kind == "credentials":
            response = conn.respond(http.HTTPStatus.UNAUTHORIZED, "credentials required\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
            return response
        return conn.respond(http.HTTPStatus.FORBIDDEN, refusal.text + "\n")

    async def _handle(self, ws: ServerConnection) -> None:
        svc = self.services
        self.guard.opened(ws)
        identity: str = ws.charger_id  # type: ignore[attr-defined]
        charger = svc.chargers.get(identity)
        if charger is None:
            configured = identity in svc.config.chargers
            policy = svc.config.ocpp.unknown_chargers
            registration = (
                Registration.ACCEPTED if configured or policy == "accept" else Registration.PENDING
            )
            charger = svc.chargers.create(identity, registration, now=svc.now_text())
            log.info("new charger %r registered as %s", identity, registration)
        self._arriving.pop(identity, None)  # registered: counted as a charger from now on
        admission: Admission = ws.admission  # type: ignore[attr-defined]
        ssl_object: Any = ws.transport.get_extra_info("ssl_object")
        tls_version = ssl_object.version() if ssl_object is not None else None
        if svc.security is not None:
            # A pending profile or key this connection used is the only one from now on.
            await svc.security.connected(identity, admission, tls_version)
        session = ChargerSession(charger, ws, svc, self.handlers)
        self.sessions.add(session)
        svc.metrics.inc("edge_connections_total")
        log.info(
            "charger %s connected from %s (security profile %d%s)",
            identity,
            _peer(ws),
            admission.profile,
            f", {tls_version}" if tls_version else "",
        )
        svc.record(
            identity,
            "Connected",
            {"remote": _peer(ws), "securityProfile": admission.profile, "tls": tls_version},
        )
        svc.publish(Connected(charger_id=identity, at=svc.now()))
        peer: PeerCertificate | None = getattr(ws, "peer_certificate", None)
        if peer is not None:
            self._peers[session] = peer
            # Revoked while its handshake ran: closed now, not at the next revocation.
            self._close_if_revoked(session, peer)
        try:
            await session.run()
        finally:
            self._peers.pop(session, None)
            if self.sessions.remove(session):
                svc.chargers.note_disconnected(charger)
                svc.publish(Disconnected(charger_id=identity, at=svc.now()))
            code = ws.close_code
            log.info("charger %s disconnected (code %s)", identity, code)
            svc.record(identity, "Disconnected", {"code": code, "replaced": session.replaced})


def _peer(conn: ServerConnection) -> str:
    addr = conn.remote_address
    return f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)


def _address(sock: socket.socket) -> tuple[str, int]:
    name = sock.getsockname()
    return name[0], name[1]
