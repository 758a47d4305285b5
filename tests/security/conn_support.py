"""What the connection security tests share: a site's certificates on disk, a config with
the wss listener, and an independent charger (the `ocpp` package's ChargePoint) over ws or
wss with Basic auth and/or a client certificate."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocpp.routing import on
from ocpp.v16 import call, call_result
from websockets.asyncio.client import connect

from edge.app import App
from edge.config import ChargerSettings, Config, SecurityConfig, TlsConfig
from tests.chargepoint import TaskChargePoint, basic_auth, ocpp_connect, reading
from tests.conftest import TIME_SCALE, Api, api_client, make_config, running
from tests.helpers import eventually
from tests.security.certs import (
    Issued,
    Paths,
    client_context,
    ec_key,
    make_ca,
    make_client_cert,
    make_server_cert,
    write,
    write_pem,
)

TIMEOUT = 20 * TIME_SCALE
PASSWORD = "0123456789abcdef"  # 16 characters: the password itself (OCTT's rule)


@dataclass
class Pki:
    """A site's TLS material: a CA, RSA and EC server certificates, client certificates."""

    root: Path
    ca: Issued
    ca_file: Path
    server: Paths
    server_ec: Paths
    clients: dict[Path, Issued] = field(default_factory=dict)
    """The client certificates written by `client`, by certificate file."""

    def client(self, cn: str, *, issuer: Issued | None = None, expired: bool = False) -> Paths:
        """A client certificate with subject CN = `cn`, issued by the site CA (or `issuer`)."""
        issued = make_client_cert(issuer or self.ca, cn, expired=expired)
        paths = write(self.root, f"client-{cn}-{len(self.clients)}", issued)
        self.clients[paths.cert] = issued
        return paths

    def issued(self, paths: Paths) -> int:
        """The serial number of a client certificate written by `client`."""
        return self.clients[paths.cert].serial

    def context(self, client: Paths | None = None) -> ssl.SSLContext:
        """A charger's TLS context: trusts the site CA, presents `client` if given."""
        return client_context(self.ca_file, client)


def make_pki(root: Path) -> Pki:
    root.mkdir(parents=True, exist_ok=True)
    ca = make_ca("Site CA")
    ca_file = write_pem(root / "ca.pem", ca)
    server = write(root, "server", make_server_cert(ca), chain=[ca])
    server_ec = write(root, "server-ec", make_server_cert(ca, key=ec_key()), chain=[ca])
    return Pki(root=root, ca=ca, ca_file=ca_file, server=server, server_ec=server_ec)


def tls11_client(pki: Pki) -> ssl.SSLContext:
    """A client offering TLS 1.1 only: OpenSSL on the listener ends its handshake."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.load_verify_locations(pki.ca_file)
    return ctx


def tls_config(
    data_dir: Path,
    pki: Pki,
    chargers: dict[str, ChargerSettings] | None = None,
    *,
    client_ca: bool = True,
    crl: Path | None = None,
    relaxed: bool = False,
    both_key_types: bool = False,
) -> Config:
    """A test config with ws and wss on ephemeral ports."""
    base = make_config(data_dir)
    tls = TlsConfig(
        port=0,
        certificate=pki.server.cert,
        private_key=pki.server.key,
        client_ca=pki.ca_file if client_ca else None,
        crl=crl,
        additional_certificate=pki.server_ec.cert if both_key_types else None,
        additional_private_key=pki.server_ec.key if both_key_types else None,
    )
    return dataclasses.replace(
        base,
        ocpp=dataclasses.replace(base.ocpp, tls=tls),
        chargers=chargers or {},
        security=SecurityConfig(relaxed_subject_checks=relaxed),
    )


def ws_url(app: App, charger_id: str) -> str:
    return f"ws://127.0.0.1:{app.ocpp_port}/ocpp/{charger_id}"


def wss_url(app: App, charger_id: str) -> str:
    return f"wss://127.0.0.1:{app.ocpp_tls_port}/ocpp/{charger_id}"


def open_ws(
    url: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    password: bytes | str | None = None,
    user: str | None = None,
    subprotocols: list[str] | None = None,
) -> connect:
    """A WebSocket handshake as a charger makes it, with Basic credentials for `password`
    (raises what the server's refusal gives); await it, or `async with` it."""
    identity = url.rsplit("/", 1)[-1]
    headers = basic_auth(user or identity, password) if password is not None else None
    return ocpp_connect(
        url, subprotocols=subprotocols or ["ocpp1.6"], headers=headers, ssl=ssl_context
    )


class SimCharger(TaskChargePoint):
    """An independent charger: answers ChangeConfiguration with `answer` and remembers
    what it was told (its new AuthorizationKey, its new SecurityProfile)."""

    def __init__(self, identity: str, connection: Any, answer: str = "Accepted") -> None:
        super().__init__(identity, connection)
        self.answer = answer
        self.changes: list[tuple[str, str]] = []

    @on("ChangeConfiguration")
    def on_change_configuration(self, key: str, value: str) -> call_result.ChangeConfiguration:
        self.changes.append((key, value))
        return call_result.ChangeConfiguration(status=self.answer)

    @on("Reset")
    def on_reset(self, type: str) -> call_result.Reset:
        return call_result.Reset(status="Accepted")

    async def boot(self) -> str:
        result = await self.call(
            call.BootNotification(
                charge_point_model="Model-S", charge_point_vendor="VendorS",
                charge_point_serial_number=f"SN-{self.id}",
            )
        )  # fmt: skip
        return str(result.status)


@contextlib.asynccontextmanager
async def charger(
    url: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    password: bytes | str | None = None,
    answer: str = "Accepted",
) -> AsyncIterator[SimCharger]:
    """A connected, booted SimCharger."""
    async with (
        open_ws(url, ssl_context=ssl_context, password=password) as ws,
        reading(SimCharger(url.rsplit("/", 1)[-1], ws, answer)) as cp,
    ):
        assert await cp.boot() == "Accepted"
        yield cp


@contextlib.asynccontextmanager
async def serving(config: Config) -> AsyncIterator[tuple[App, Api]]:
    """The App on `config` with its API client (`running`), within TIMEOUT."""
    async with asyncio.timeout(TIMEOUT), running(config) as site:
        yield site


async def refused(url: str, **kwargs: Any) -> BaseException:
    """The error of a handshake the server refuses (at TLS or at HTTP)."""
    try:
        ws = await open_ws(url, **kwargs)
    except Exception as err:  # the refusal's shape is the test's to check
        return err
    await ws.close()
    raise AssertionError(f"{url}: the handshake was accepted")


async def security_events(web_port: int, event_type: str) -> list[dict[str, Any]]:
    """The edge's security events of one type, newest first, as journal rows (`charger_id`,
    `data` with `type`, `techInfo`)."""
    async with api_client(web_port) as api:
        rows = await api.get("/api/events?kind=SecurityEvent&limit=1000")
    return [row for row in rows if row["data"].get("type") == event_type]


async def has_security_event(web_port: int, event_type: str, charger_id: str | None) -> bool:
    """Whether such an event (journalled without waiting) shows up for the charger."""

    async def probe() -> bool:
        rows = await security_events(web_port, event_type)
        return any(row["charger_id"] == charger_id for row in rows)

    try:
        return bool(await eventually(probe, timeout=5 * TIME_SCALE))
    except (AssertionError, TimeoutError):
        return False


def http_status(err: BaseException) -> int | None:
    """The HTTP status of a refused upgrade; None when TLS ended it first."""
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)
