"""The guard on the real server: handshake rate, lockout after refused credentials, the
total cap, and the release of every admitted connection however its handshake ends.

Tests connect from 127.0.0.1 and, as "another host on the LAN", from 127.0.0.2.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidMessage, InvalidStatus

from edge.config import ChargerSettings, Config, LimitsConfig
from tests.chargepoint import basic_auth, ocpp_connect
from tests.conftest import TIME_SCALE, Api, make_config, ocpp_url, running
from tests.helpers import eventually

TIMEOUT = 20 * TIME_SCALE
PASSWORD = "0123456789abcdef"
OTHER_HOST = "127.0.0.2"
BOOT = {"chargePointVendor": "Guard", "chargePointModel": "Test"}


async def open_ws(
    url: str,
    headers: dict[str, str] | None = None,
    *,
    source: str = "127.0.0.1",
    subprotocols: list[str] | None = None,
) -> ClientConnection:
    offered = subprotocols if subprotocols is not None else ["ocpp1.6"]
    return await ocpp_connect(url, subprotocols=offered, headers=headers, local_addr=(source, 0))


async def refusal(url: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    """The HTTP response of a handshake the server must refuse."""
    with pytest.raises(InvalidStatus) as info:
        ws = await open_ws(url, headers, **kw)
        await ws.close()
    return info.value.response


async def heartbeat(ws: ClientConnection) -> None:
    """One exchange the server must answer with a CALLRESULT (a BootNotification: served
    whatever the charger's registration)."""
    await ws.send(json.dumps([2, "b", "BootNotification", BOOT]))
    answer = json.loads(await asyncio.wait_for(ws.recv(), 5 * TIME_SCALE))
    assert answer[:2] == [3, "b"], answer


async def metric(api: Api, line_start: str) -> float:
    status, text = await api.request("GET", "/metrics", token=None)
    assert status == 200
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def with_limits(config: Config, **limits: Any) -> Config:
    ocpp = dataclasses.replace(config.ocpp, limits=dataclasses.replace(LimitsConfig(), **limits))
    return dataclasses.replace(config, ocpp=ocpp)


def with_password(config: Config, identity: str) -> Config:
    return dataclasses.replace(
        config, chargers={identity: ChargerSettings(password=PASSWORD, security_profile=1)}
    )


async def test_handshake_flood_is_refused_with_429_and_others_are_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = with_limits(make_config(tmp_path / "data"), handshake_burst=5, handshake_rate=0.1)
    async with asyncio.timeout(TIMEOUT), running(config) as (app, api):
        calm = await open_ws(ocpp_url(app, "CALM"), source=OTHER_HOST)
        for n in range(4):
            ws = await open_ws(ocpp_url(app, f"F{n}"))
            await ws.close()
        refused = 0
        for n in range(20):
            try:
                ws = await open_ws(ocpp_url(app, f"G{n}"))
            except InvalidStatus as err:
                assert err.response.status_code == 429
                assert int(err.response.headers["Retry-After"]) >= 1
                refused += 1
            else:
                await ws.close()
        assert refused >= 19
        await heartbeat(calm)  # the other host's charger is served throughout
        ws = await open_ws(ocpp_url(app, "CALM2"), source=OTHER_HOST)
        await ws.close()
        await calm.close()
        assert await metric(api, 'edge_connections_refused_total{reason="rate_limited"}') >= 19
        # One log line for the episode, not one per refused handshake.
        assert caplog.text.count("refused (rate_limited)") == 1, caplog.text


async def test_refused_credentials_lock_out_that_identity_from_that_address(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = with_password(with_limits(make_config(tmp_path / "data"), auth_free_failures=3), "CP9")
    caplog.set_level(logging.DEBUG)
    # As `edge-csms` runs (edge/cli.py): websockets logs request headers, Authorization
    # included, at DEBUG, so the command line keeps its logger at WARNING whatever the
    # --log-level.
    caplog.set_level(logging.WARNING, logger="websockets")
    async with asyncio.timeout(TIMEOUT), running(config) as (app, api):
        url = ocpp_url(app, "CP9")
        for _ in range(3):
            assert (await refusal(url, basic_auth("CP9", "wrong-password"))).status_code == 401
        # The fourth failure starts the back-off: from now on even the right password
        # from this address is refused until the wait is over, with 429 and Retry-After.
        assert (await refusal(url, basic_auth("CP9", "wrong-password"))).status_code == 401
        locked = await refusal(url, basic_auth("CP9", PASSWORD))
        assert locked.status_code == 429
        assert int(locked.headers["Retry-After"]) >= 1
        assert PASSWORD.encode() not in locked.body
        # The charger itself, at another address, is not locked out by a stranger's tries.
        ws = await open_ws(url, basic_auth("CP9", PASSWORD), source=OTHER_HOST)
        await heartbeat(ws)
        await ws.close()
        # After the wait (1 s), the right password works from the first address too.
        await asyncio.sleep(1.2)
        ws = await open_ws(url, basic_auth("CP9", PASSWORD))
        await heartbeat(ws)
        await ws.close()
        assert (
            await metric(api, 'edge_security_events_total{critical="true",type="AuthLockout"}') >= 1
        )
        assert (
            await metric(
                api, 'edge_security_events_total{critical="false",type="FailedAuthentication"}'
            )
            >= 4
        )
        assert await metric(api, 'edge_connections_refused_total{reason="locked_out"}') >= 1
        events = [
            e
            for e in await api.get("/api/events?kind=SecurityEvent")
            if e["data"]["type"] == "AuthLockout"
        ]
        assert events and events[0]["charger_id"] == "CP9", events
        assert PASSWORD not in str(events)
        # Neither the password tried nor the right one is in the log; the lockout is.
        assert "locked out" in caplog.text
        assert PASSWORD not in caplog.text and "wrong-password" not in caplog.text
        assert basic_auth("CP9", PASSWORD)["Authorization"].split()[1] not in caplog.text


async def test_total_cap_answers_503_and_frees_with_closed_connections(tmp_path: Path) -> None:
    config = with_limits(make_config(tmp_path / "data"), max_connections=3)
    async with asyncio.timeout(TIMEOUT), running(config) as (app, api):
        # Handshakes that fail after admission (no subprotocol: 400) release their place.
        for n in range(6):
            assert (await refusal(ocpp_url(app, f"NOSUB{n}"), subprotocols=[])).status_code == 400
        open_ = [await open_ws(ocpp_url(app, f"CAP{n}")) for n in range(3)]
        full = await refusal(ocpp_url(app, "CAP3"))
        assert full.status_code == 503 and "Retry-After" in full.headers
        await open_[0].close()

        async def admitted_again() -> bool:
            try:
                ws = await open_ws(ocpp_url(app, "CAP3"))
            except InvalidStatus:
                return False
            await heartbeat(ws)
            await ws.close()
            return True

        assert await eventually(admitted_again)
        for ws in open_[1:]:
            await heartbeat(ws)
            await ws.close()
        assert await metric(api, 'edge_connections_refused_total{reason="capacity"}') >= 1


async def test_reconnecting_charger_replaces_itself_under_the_identity_cap(
    tmp_path: Path,
) -> None:
    """The per-identity cap is on handshakes not yet authenticated: a charger reconnecting
    many times in a row (each connection replacing the last) is never refused."""
    config = with_limits(make_config(tmp_path / "data"), max_handshakes_per_identity=1)
    async with asyncio.timeout(TIMEOUT), running(config) as (app, _):
        sockets = [await open_ws(ocpp_url(app, "SAME")) for _ in range(10)]
        await heartbeat(sockets[-1])
        for ws in sockets:
            await ws.close()


async def test_two_hundred_chargers_behind_one_nat_reconnect_at_once(tmp_path: Path) -> None:
    """With the default limits, 200 chargers from one address connect at the same moment,
    all boot, and all reconnect at once again (the edge restarted, or the router did)."""
    nat = "127.0.0.5"
    async with asyncio.timeout(6 * TIMEOUT), running(make_config(tmp_path / "data")) as (app, api):
        for _round in range(2):
            sockets = await asyncio.gather(
                *(open_ws(ocpp_url(app, f"NAT{n:03}"), source=nat) for n in range(200))
            )
            await asyncio.gather(*(heartbeat(ws) for ws in sockets))
            await asyncio.gather(*(ws.close() for ws in sockets))
        refused = await metric(api, "edge_connections_refused_total")
        assert refused == 0.0


async def test_connections_that_never_send_a_request_are_capped_per_address(
    tmp_path: Path,
) -> None:
    """One host cannot hold every file descriptor with connections that send nothing:
    beyond max_sockets_per_source the next is closed as it is accepted; other addresses
    are served, and the address may connect again once it closes some."""
    config = with_limits(make_config(tmp_path / "data"), max_sockets_per_source=20)
    idle = "127.0.0.6"
    async with asyncio.timeout(TIMEOUT), running(config) as (app, api):
        streams = [
            await asyncio.open_connection("127.0.0.1", app.ocpp_port, local_addr=(idle, 0))
            for _ in range(30)
        ]

        async def closed_at_once(reader: asyncio.StreamReader) -> bool:
            try:
                async with asyncio.timeout(1.0 * TIME_SCALE):
                    return await reader.read(1) == b""
            except TimeoutError:
                return False  # still open: held by the server
            except ConnectionResetError:
                return True

        closed = await asyncio.gather(*(closed_at_once(r) for r, _ in streams))
        assert sum(closed) == 10, closed
        # Closed before an HTTP answer: the client sees no response at all.
        with pytest.raises(InvalidMessage):
            ws = await open_ws(ocpp_url(app, "IDLEHOST"), source=idle)
            await ws.close()
        ws = await open_ws(ocpp_url(app, "ELSEWHERE"), source=OTHER_HOST)
        await heartbeat(ws)
        await ws.close()
        for _, writer in streams:
            writer.close()

        async def connects_again() -> bool:
            try:
                ws = await open_ws(ocpp_url(app, "IDLEHOST"), source=idle)
            except InvalidMessage:
                return False
            await heartbeat(ws)
            await ws.close()
            return True

        assert await eventually(connects_again)
        assert await metric(api, 'edge_connections_refused_total{reason="too_many_sockets"}') >= 11
