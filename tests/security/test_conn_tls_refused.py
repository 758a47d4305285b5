"""Refused TLS handshakes on the wss listener are logged and journalled with the peer's
address, and a flood of them is counted in full but logged at a bounded rate: the real
server on 127.0.0.1 with real TLS, clients on other loopback addresses."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import Any

import pytest

from edge.app import App
from edge.server import TLS_EVENTS_PER_MINUTE
from tests.helpers import eventually
from tests.security.certs import make_ca
from tests.security.conn_support import (
    Pki,
    make_pki,
    security_events,
    serving,
    tls11_client,
    tls_config,
)

FLOOD = TLS_EVENTS_PER_MINUTE + 5


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


async def handshake_from(app: App, source: str, ctx: ssl.SSLContext) -> None:
    """A TLS handshake from `source` that the listener refuses (the client may notice at
    the handshake, or at its first read when TLS 1.3 ends it after the client's Finished)."""
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", app.ocpp_tls_port, ssl=ctx, local_addr=(source, 0)
        )
    except (ssl.SSLError, OSError):
        return
    try:
        writer.write(b"GET /ocpp/CP3 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await reader.read(1) == b""
    except (ssl.SSLError, OSError):
        pass
    finally:
        writer.close()


def refused_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "edge.security" and "TlsHandshakeRefused" in r.getMessage()
    ]


async def refused_events(app: App) -> list[dict[str, Any]]:
    return await security_events(app.web_port, "TlsHandshakeRefused")


async def test_a_refused_handshake_names_the_peer(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="edge.security"):
        async with serving(tls_config(tmp_path / "d", pki)) as (app, _):
            await handshake_from(app, "127.0.0.5", tls11_client(pki))
            foreign = pki.client("CP3", issuer=make_ca("Other CA"))
            await handshake_from(app, "127.0.0.6", pki.context(foreign))

            async def both() -> list[dict[str, Any]]:
                found = await refused_events(app)
                return found if len(found) == 2 else []

            by_reason = {
                "UNSUPPORTED_PROTOCOL" if "UNSUPPORTED_PROTOCOL" in e["data"]["techInfo"]
                else "issuer": e["data"]["techInfo"]
                for e in await eventually(both)
            }  # fmt: skip
            assert "from 127.0.0.5:" in by_reason["UNSUPPORTED_PROTOCOL"], by_reason
            assert "unable to get local issuer" in by_reason["issuer"], by_reason
            assert "from 127.0.0.6:" in by_reason["issuer"], by_reason
    lines = refused_lines(caplog)
    assert len(lines) == 2, lines
    assert any("127.0.0.5:" in line for line in lines)
    assert any("127.0.0.6:" in line for line in lines)


async def test_a_flood_of_refused_handshakes_is_counted_not_all_logged(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = tls11_client(pki)
    with caplog.at_level(logging.INFO, logger="edge.security"):
        async with serving(tls_config(tmp_path / "d", pki)) as (app, api):
            for _ in range(FLOOD):
                await handshake_from(app, "127.0.0.7", ctx)

            async def counted() -> bool:
                async with api.session.get(api.base + "/metrics") as resp:
                    text = await resp.text()
                line = f'edge_connections_refused_total{{reason="tls"}} {FLOOD}'
                return line in text.splitlines()

            assert await eventually(counted)

            async def journalled() -> list[dict[str, Any]]:
                found = await refused_events(app)
                return found if len(found) >= TLS_EVENTS_PER_MINUTE else []

            found = await eventually(journalled)
            assert len(found) == TLS_EVENTS_PER_MINUTE
            assert all("from 127.0.0.7:" in e["data"]["techInfo"] for e in found)
    assert len(refused_lines(caplog)) == TLS_EVENTS_PER_MINUTE
    more = [r.getMessage() for r in caplog.records if "more refused TLS" in r.getMessage()]
    assert len(more) == 1 and "127.0.0.7:" in more[0], more
