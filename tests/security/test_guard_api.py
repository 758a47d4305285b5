"""The operator API against strangers: authentication on every route, CORS off, the token
kept hashed and rotatable, and no secret in an error answer or a log line."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import re
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from edge.app import App
from edge.config import Config
from edge.security.token import HASH_FILE, LEGACY_FILE
from edge.web.auth import COOKIE
from tests.conftest import API_TOKEN, TIME_SCALE, make_config
from tests.helpers import eventually

ROOT = Path(__file__).resolve().parents[2]

# Routes reachable without the operator's token, and why. Any other route must answer 401
# to a request without credentials: a route added later without thought fails the test.
PUBLIC = {
    "/api/health": "readiness, no data",
    "/metrics": "Prometheus scrape, counters only",
    "/api/session": "the page's login itself",
    "/": "the page's HTML shell, no data",
    "/static": "the page's scripts and styles",
}
# Charger side of file transfers: authorised by a signed link or an upload grant, not by
# the operator's token (a charger has none). Without a valid one: 403 or 404, never data.
CHARGER_SIDE = re.compile(r"^/files/")


def no_token(config: Config) -> Config:
    return dataclasses.replace(config, web=dataclasses.replace(config.web, api_token=None))


def base(app: App) -> str:
    return f"http://127.0.0.1:{app.web_port}"


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def routes(app: web.Application) -> list[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        assert path, route
        found.add((route.method, str(path)))
    return sorted(found)


@asynccontextmanager
async def served(
    config: Config,
) -> AsyncIterator[tuple[App, web.Application, aiohttp.ClientSession]]:
    """A running App, its aiohttp application (for its router) and an HTTP client."""
    async with App(config) as app, aiohttp.ClientSession() as session:
        runner = app._runner
        assert runner is not None
        yield app, runner.app, session


async def test_every_route_but_the_public_ones_needs_credentials(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    async with served(config) as (app, web_app, session):
        table = routes(web_app)
        assert len(table) > 40, table  # the router really was enumerated
        checked = 0
        for method, path in table:
            if path in PUBLIC or path.rstrip("/") in PUBLIC:
                continue
            url = base(app) + concrete(path) + ("/x" if path == "/static" else "")
            async with session.request(method, url) as resp:
                body = await resp.read()
                if CHARGER_SIDE.match(path):
                    assert resp.status in (403, 404), (method, path, resp.status)
                else:
                    assert resp.status == 401, (method, path, resp.status, body[:200])
                    if method != "HEAD":
                        assert json.loads(body)["error"] == "unauthorized"
                assert not [h for h in resp.headers if h.lower().startswith("access-control")]
                checked += 1
        # With a wrong token, and with a token of the right length but one character off:
        # 401, until the third refusal in a row backs this address off (429).
        statuses = []
        for token in ("wrong", API_TOKEN[:-1] + "X", API_TOKEN + " x", ""):
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(base(app) + "/api/chargers", headers=headers) as resp:
                statuses.append(resp.status)
        assert statuses == [401, 401, 401, 429]
        assert checked > 35


async def test_public_routes_give_nothing_away(tmp_path: Path) -> None:
    async with served(make_config(tmp_path / "data")) as (app, _, session):
        async with session.get(base(app) + "/api/health") as resp:
            assert await resp.json() == {"status": "ok"}
        async with session.get(base(app) + "/api/session") as resp:
            assert await resp.json() == {"authenticated": False}
        async with session.get(base(app) + "/metrics") as resp:
            assert API_TOKEN not in await resp.text()


async def test_cors_is_off(tmp_path: Path) -> None:
    """No Access-Control-Allow-* header ever, and a preflight is not honoured: a page
    elsewhere cannot read the API, even from a browser that holds the token or a cookie."""
    async with served(make_config(tmp_path / "data")) as (app, web_app, _session):
        evil = {"Origin": "http://evil.example"}
        async with aiohttp.ClientSession() as session:
            for method, path in routes(web_app):
                preflight = {
                    **evil,
                    "Access-Control-Request-Method": method,
                    "Access-Control-Request-Headers": "authorization, content-type",
                }
                async with session.options(base(app) + concrete(path), headers=preflight) as r:
                    assert r.status >= 400, (path, r.status)
                    assert not [h for h in r.headers if h.lower().startswith("access-control")]
            auth = {**evil, "Authorization": f"Bearer {API_TOKEN}"}
            async with session.get(base(app) + "/api/chargers", headers=auth) as resp:
                assert resp.status == 200
                assert not [h for h in resp.headers if h.lower().startswith("access-control")]


async def test_api_token_is_rotated_by_the_api_and_the_old_one_stops_at_once(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    legacy = "legacy-token-0123456789abcdef"
    (data / LEGACY_FILE).write_text(legacy + "\n")
    async with served(no_token(make_config(data))) as (app, _, _session):
        # The plain-text token of an earlier version was migrated: hashed, file removed.
        assert not (data / LEGACY_FILE).exists()
        hashed = (data / HASH_FILE).read_bytes()
        assert legacy.encode() not in hashed
        assert stat.S_IMODE((data / HASH_FILE).stat().st_mode) == 0o600
        assert app.api_token is None
        url = base(app)
        jar = aiohttp.CookieJar(unsafe=True)
        # The page logs in with the token when [web] password is not set.
        async with (
            aiohttp.ClientSession(cookie_jar=jar) as browser,
            browser.post(url + "/api/session", json={"password": legacy}) as resp,
        ):
            assert resp.status == 204
        async with aiohttp.ClientSession() as session:
            old = {"Authorization": f"Bearer {legacy}"}
            async with session.get(url + "/api/chargers", headers=old) as resp:
                assert resp.status == 200
            async with session.post(url + "/api/token/rotate", headers=old) as resp:
                assert resp.status == 200
                assert resp.headers["Cache-Control"] == "no-store"
                new = (await resp.json())["token"]
            assert len(new) >= 40 and new != legacy
            async with session.get(url + "/api/chargers", headers=old) as resp:
                assert resp.status == 401
            new_headers = {"Authorization": f"Bearer {new}"}
            async with session.get(url + "/api/chargers", headers=new_headers) as resp:
                assert resp.status == 200

            async def rotation_journalled() -> list[dict[str, object]] | None:
                async with session.get(url + "/api/events", headers=new_headers) as resp:
                    events: list[dict[str, object]] = await resp.json()
                rotated = [
                    e
                    for e in events
                    if e["kind"] == "SecurityEvent" and e["data"]["type"] == "ApiTokenRotated"
                ]
                return events if rotated else None

            events = await eventually(rotation_journalled)
            assert new not in json.dumps(events) and legacy not in json.dumps(events)
        # The session opened with the old token is closed by the rotation.
        async with aiohttp.ClientSession(cookie_jar=jar) as browser:
            assert jar.filter_cookies(URL(url)).get(COOKIE) is not None
            async with browser.get(url + "/api/chargers") as resp:
                assert resp.status == 401
    # The new token survives a restart (only its hash is on disk).
    assert new.encode() not in (data / HASH_FILE).read_bytes()
    async with served(no_token(make_config(data))) as (app, _, session):
        headers = {"Authorization": f"Bearer {new}"}
        async with session.get(base(app) + "/api/chargers", headers=headers) as resp:
            assert resp.status == 200


async def rotate_by_command_line(
    config_file: Path, command: str = "rotate"
) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edge",
        "token",
        command,
        "--config",
        str(config_file),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=str(ROOT),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60 * TIME_SCALE)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_token_rotate_command_works_on_a_running_service(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config_file = tmp_path / "edge.toml"
    config_file.write_text(f'[storage]\ndata_dir = "{data}"\n')
    code, first, _ = await rotate_by_command_line(config_file)
    assert code == 0
    first = first.strip()
    async with served(no_token(make_config(data))) as (app, _, session):
        headers = {"Authorization": f"Bearer {first}"}
        async with session.get(base(app) + "/api/chargers", headers=headers) as resp:
            assert resp.status == 200
        code, second, err = await rotate_by_command_line(config_file)
        assert code == 0
        second = second.strip()
        assert second != first and first not in err and second not in err
        async with session.get(base(app) + "/api/chargers", headers=headers) as resp:
            assert resp.status == 401  # at once, without a restart
        headers = {"Authorization": f"Bearer {second}"}
        async with session.get(base(app) + "/api/chargers", headers=headers) as resp:
            assert resp.status == 200


async def test_token_init_makes_one_only_if_there_is_none(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config_file = tmp_path / "edge.toml"
    config_file.write_text(f'[storage]\ndata_dir = "{data}"\n')
    code, first, _ = await rotate_by_command_line(config_file, "init")
    assert code == 0 and first.strip()
    code, again, err = await rotate_by_command_line(config_file, "init")
    assert code == 0 and again == "" and "exists" in err  # first setup only: nothing rotated
    async with served(no_token(make_config(data))) as (app, _, session):
        headers = {"Authorization": f"Bearer {first.strip()}"}
        async with session.get(base(app) + "/api/chargers", headers=headers) as resp:
            assert resp.status == 200


async def test_a_token_in_the_configuration_is_not_rotated_here(tmp_path: Path) -> None:
    config_file = tmp_path / "edge.toml"
    config_file.write_text(
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n[web]\napi_token = "{API_TOKEN}"\n'
    )
    code, out, err = await rotate_by_command_line(config_file)
    assert code == 2 and out == "" and "api_token" in err and API_TOKEN not in err
    async with served(make_config(tmp_path / "data")) as (app, _, session):
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        async with session.post(base(app) + "/api/token/rotate", headers=headers) as resp:
            assert resp.status == 409
            assert (await resp.json())["error"] == "token_in_config"
            assert API_TOKEN not in await resp.text()
        assert not (tmp_path / "data" / HASH_FILE).exists()


async def test_without_any_token_the_api_refuses_everything(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        async with served(no_token(make_config(tmp_path / "data"))) as (app, _, session):
            statuses = []
            for token in ("", "x", "None", "null"):
                headers = {"Authorization": f"Bearer {token}"}
                async with session.get(base(app) + "/api/chargers", headers=headers) as r:
                    statuses.append(r.status)
            async with session.post(
                base(app) + "/api/session", json={"password": "anything-at-all"}
            ) as r:
                statuses.append(r.status)
            # Refused, then backed off after three in a row (the throttle's 429).
            assert statuses == [401, 401, 401, 429, 429]
            async with session.get(base(app) + "/api/health") as r:
                assert r.status == 200
    assert "edge-csms token rotate" in caplog.text
    assert not (tmp_path / "data" / HASH_FILE).exists()


async def test_no_secret_in_error_answers_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused tokens and passwords, and a charger's refused Basic password, appear in no
    answer and no log line; nor does the real token."""
    secrets_seen = [API_TOKEN, "guess-0123456789-token", "charger-password-guess"]
    with caplog.at_level(logging.DEBUG):
        async with (
            served(make_config(tmp_path / "data")) as (app, _, session),
            # The guesses come from another host: its back-off must not hold this one's
            # requests with the right token back.
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
            ) as stranger,
        ):
            bodies = []
            for token in secrets_seen[1:]:
                headers = {"Authorization": f"Bearer {token}"}
                async with stranger.get(base(app) + "/api/chargers", headers=headers) as r:
                    bodies.append(await r.text() + str(r.headers))
                async with stranger.post(base(app) + "/api/session", json={"password": token}) as r:
                    bodies.append(await r.text() + str(r.headers))
            headers = {"Authorization": f"Bearer {API_TOKEN}"}
            for method, path, body in (
                ("POST", "/api/chargers/NOPE/ocpp/Reset", {"type": "Hard"}),
                ("PUT", "/api/id-tags/" + "x" * 300, {"status": "Nope"}),
                ("POST", "/api/token/rotate", None),
                ("POST", "/api/chargers/x/ocpp/NoSuchAction", {}),
            ):
                async with session.request(
                    method, base(app) + path, json=body, headers=headers
                ) as r:
                    assert r.status >= 400
                    bodies.append(await r.text() + str(r.headers))
            bad_json = {**headers, "Content-Type": "application/json"}
            async with session.put(
                base(app) + "/api/id-tags/T1", data=b"{" + API_TOKEN.encode(), headers=bad_json
            ) as r:
                assert r.status == 400
                text = await r.text()
                bodies.append(text)
    everything = "\n".join(bodies) + caplog.text
    for secret in secrets_seen:
        assert secret not in everything, secret
