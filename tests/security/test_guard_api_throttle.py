"""The operator API's back-off after refused credentials, against the real server over
real HTTP on 127.0.0.1, with clients on other loopback addresses as other hosts: three
wrong tokens in a row back an address off (429, Retry-After, a JSON error), a right
token from there is refused too meanwhile, another address is never affected, the
public routes stay open, a success resets the count, and the episode is logged and
journalled once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edge.app import App
from tests.conftest import API_TOKEN, Api, api_client, make_config, running
from tests.helpers import eventually

GUESSER = "127.0.0.2"
NEIGHBOUR = "127.0.0.3"
PATH = "/api/chargers"


@asynccontextmanager
async def site(tmp_path: Path) -> AsyncIterator[tuple[App, Api, Api, Api]]:
    """A running App; API clients from 127.0.0.1, from the guesser's address and from a
    neighbour's."""
    async with (
        running(make_config(tmp_path / "data")) as (app, api),
        api_client(app.web_port, source=GUESSER) as guesser,
        api_client(app.web_port, source=NEIGHBOUR) as neighbour,
    ):
        yield app, api, guesser, neighbour


async def get(client: Api, path: str, token: str | None) -> tuple[int, Any, aiohttp.ClientResponse]:
    """GET `path` with `Authorization: Bearer <token>` (none for None): status, body, response."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with client.session.get(client.base + path, headers=headers) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body, resp


async def lockout_events(api: Api) -> list[dict[str, Any]]:
    return [e for e in await api.get("/api/security/events") if e["type"] == "ApiAuthLockout"]


def metric(text: str, reason: str) -> float:
    prefix = f'edge_api_auth_refused_total{{reason="{reason}"}} '
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


async def test_wrong_tokens_back_the_address_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with site(tmp_path) as (_app, api, guesser, neighbour):
            for guess in ("guess-1", "guess-2", "guess-3"):
                status, body, _ = await get(guesser, PATH, guess)
                assert status == 401 and body["error"] == "unauthorized", body
            # Backed off: a fourth guess, and the right token, get 429 with Retry-After.
            for token in ("guess-4", API_TOKEN, None):
                status, body, resp = await get(guesser, PATH, token)
                assert status == 429, (token, status, body)
                assert resp.headers["Retry-After"] == "1"
                assert body["error"] == "too_many_attempts" and body["retryAfter"] == 1, body
                assert "guess" not in str(body) and API_TOKEN not in str(body)
            # Nor is the throttle sidestepped by the login or by GET /api/session.
            async with guesser.session.post(
                guesser.base + "/api/session", json={"password": API_TOKEN}
            ) as resp:
                assert resp.status == 429 and "Retry-After" in resp.headers
            status, _, _ = await get(guesser, "/api/session", API_TOKEN)
            assert status == 429
            # Another address with the right token is not affected, nor are the public routes.
            status, _, _ = await get(neighbour, PATH, API_TOKEN)
            assert status == 200
            for public in ("/api/health", "/metrics", "/"):
                async with guesser.session.get(guesser.base + public) as resp:
                    assert resp.status == 200, public
            async with api.session.get(api.base + "/metrics") as resp:
                text = await resp.text()
            assert metric(text, "credentials") == 3
            assert metric(text, "throttled") == 5  # the three above, the login, the session
            # One security event (a warning in the log) for the whole episode.
            found = await eventually(lambda: lockout_events(api))
            assert len(found) == 1 and found[0]["critical"] is True, found
            assert GUESSER in found[0]["techInfo"]
            # Once the back-off has passed the right token works, and the count starts over.
            await asyncio.sleep(1.1)
            status, _, _ = await get(guesser, PATH, API_TOKEN)
            assert status == 200
            for guess in ("guess-5", "guess-6"):
                status, _, _ = await get(guesser, PATH, guess)
                assert status == 401
            status, _, _ = await get(guesser, PATH, API_TOKEN)
            assert status == 200
            assert len(await lockout_events(api)) == 1
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and "ApiAuthLockout" in r.getMessage()
    ]
    assert len(lines) == 1 and GUESSER in lines[0], lines
    assert API_TOKEN not in caplog.text and "guess-" not in caplog.text


async def test_a_logged_in_page_is_not_held_back(tmp_path: Path) -> None:
    """The page's session cookie is no guess: a back-off of its address (someone else
    guessing tokens behind the same NAT) does not lock the technician's page out."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        site(tmp_path) as (app, _api, guesser, _neighbour),
        aiohttp.ClientSession(
            cookie_jar=jar, connector=aiohttp.TCPConnector(local_addr=(GUESSER, 0))
        ) as page,
    ):
        base = f"http://127.0.0.1:{app.web_port}"
        async with page.post(base + "/api/session", json={"password": API_TOKEN}) as resp:
            assert resp.status == 204
        for guess in ("guess-1", "guess-2", "guess-3", "guess-4"):
            await get(guesser, PATH, guess)
        status, _, _ = await get(guesser, PATH, API_TOKEN)
        assert status == 429
        async with page.get(base + PATH) as resp:
            assert resp.status == 200
