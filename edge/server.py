"""The OCPP-J WebSocket endpoint: handshake checks, then one ChargerSession per connection.

`ws://HOST:PORT/<any prefix>/<chargePointId>`: the identity is the last path
segment, percent-decoded (OCPP-J 1.6 §3.1.1). The `ocpp1.6` subprotocol is
required: a handshake that offers none of ours is refused with HTTP 400, and the
response echoes exactly `ocpp1.6` (OCPP-J §3.1.2, certification case TC_088).
"""

from __future__ import annotations

import contextlib
import hmac
import http
import logging
import socket
from collections.abc import Mapping
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import InvalidHeader
from websockets.headers import parse_authorization_basic
from websockets.http11 import Request, Response

from edge.chargers import Registration
from edge.events import Connected, Disconnected
from edge.security.admission import ConnectionGuard
from edge.services import Services
from edge.session import ChargerSession, Handler, SessionRegistry

__all__ = ["OcppServer", "charger_identity"]

log = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"
MAX_IDENTITY_LENGTH = 128


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


class OcppServer:
    """Accepts charger connections and runs their sessions."""

    def __init__(
        self, services: Services, sessions: SessionRegistry, handlers: Mapping[str, Handler]
    ) -> None:
        self.services = services
        self.sessions = sessions
        self.handlers = handlers
        self._server: Server | None = None
        self.guard = ConnectionGuard(services, services.config.ocpp.limits)

    async def start(self, host: str, port: int) -> list[tuple[str, int]]:
        """Start listening; returns the bound addresses."""
        cfg = self.services.config.ocpp
        self._server = await serve(
            self._handle,
            host,
            port,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            process_request=self._process_request,
            create_connection=self.guard.connection_class(),
            compression=None,  # OCPP-J §5.1; also ~40 KiB less memory per connection
            max_size=cfg.max_message_size,
            max_queue=8,
            ping_interval=cfg.ping_interval or None,
            ping_timeout=cfg.ping_timeout,
            open_timeout=cfg.limits.handshake_timeout,
            close_timeout=5,
            server_header=None,
            # A site's chargers all reconnect at once after a restart: a deep accept
            # queue keeps their handshakes from timing out while the loop catches up.
            backlog=4096,
        )
        return [_address(s) for s in self._server.sockets]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
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
        if settings is not None and settings.password is not None:
            refusal = self._check_basic_auth(conn, request, identity, settings.password)
            if refusal is not None:
                return refusal
        conn.charger_id = identity  # type: ignore[attr-defined]
        return None

    def _check_basic_auth(
        self, conn: ServerConnection, request: Request, identity: str, password: str
    ) -> Response | None:
        """Security profile 1: HTTP Basic auth, username = identity (OCPP-J §6.2.2)."""
        user = given = None
        header = request.headers.get("Authorization")
        if header is not None:
            with contextlib.suppress(InvalidHeader):
                user, given = parse_authorization_basic(header)
        if (
            user == identity
            and given is not None
            # websockets decodes the credentials with surrogateescape: bytes that are not
            # UTF-8 come back as lone surrogates, which a plain encode() refuses (HTTP 500).
            and hmac.compare_digest(given.encode("utf-8", "surrogateescape"), password.encode())
        ):
            return None
        log.warning("charger %r from %s: bad or missing credentials", identity, _peer(conn))
        self.guard.failed(conn, identity)
        self.services.metrics.inc("edge_connections_refused_total", reason="credentials")
        self.services.record(identity, "ConnectionRefused", {"reason": "bad credentials"})
        response = conn.respond(http.HTTPStatus.UNAUTHORIZED, "credentials required\n")
        response.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
        return response

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
        session = ChargerSession(charger, ws, svc, self.handlers)
        self.sessions.add(session)
        svc.metrics.inc("edge_connections_total")
        log.info("charger %s connected from %s", identity, _peer(ws))
        svc.record(identity, "Connected", {"remote": _peer(ws)})
        svc.publish(Connected(charger_id=identity, at=svc.now()))
        try:
            await session.run()
        finally:
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
