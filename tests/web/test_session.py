"""Login sessions for the page: cookie, logout, CSRF Origin check, throttled failures."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from edge.app import App
from edge.config import Config, load_config
from edge.web.auth import COOKIE, Throttle
from edge.web.password import PasswordHash
from tests.conftest import API_TOKEN, make_config


def base(app: App) -> str:
    return f"http://127.0.0.1:{app.web_port}"


async def login(
    session: aiohttp.ClientSession, app: App, password: str, **headers: str
) -> aiohttp.ClientResponse:
    async with session.post(
        base(app) + "/api/session", json={"password": password}, headers=headers
    ) as resp:
        await resp.read()
        return resp


def cookie_jar() -> aiohttp.CookieJar:
    # 127.0.0.1 is an IP address: aiohttp keeps its cookies only when told to.
    return aiohttp.CookieJar(unsafe=True)


async def test_token_logs_in_and_the_cookie_opens_the_api(app: App) -> None:
    """Without [web] password the API token logs in; the cookie then works for GET."""
    async with aiohttp.ClientSession(cookie_jar=cookie_jar()) as session:
        async with session.get(base(app) + "/api/chargers") as resp:
            assert resp.status == 401
            assert (await resp.json())["error"] == "unauthorized"
        resp = await login(session, app, API_TOKEN)
        assert resp.status == 204
        morsel = resp.cookies[COOKIE]
        assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"
        assert int(morsel["max-age"]) == 30 * 86400
        async with session.get(base(app) + "/api/chargers") as resp:
            assert resp.status == 200
        async with session.get(base(app) + "/api/session") as resp:
            assert await resp.json() == {"authenticated": True}
        origin = {"Origin": base(app)}
        async with session.delete(base(app) + "/api/session", headers=origin) as resp:
            assert resp.status == 204
        async with session.get(base(app) + "/api/chargers") as resp:
            assert resp.status == 401
        async with session.get(base(app) + "/api/session") as resp:
            assert await resp.json() == {"authenticated": False}


async def test_state_changing_requests_with_the_cookie_need_our_origin(app: App) -> None:
    """A POST/PUT/DELETE on the cookie without our Origin is refused (403): CSRF."""
    async with aiohttp.ClientSession(cookie_jar=cookie_jar()) as session:
        assert (await login(session, app, API_TOKEN)).status == 204
        url = base(app) + "/api/id-tags/TAG1"
        async with session.put(url, json={}) as resp:
            assert resp.status == 403
            assert (await resp.json())["error"] == "bad_origin"
        async with session.put(url, json={}, headers={"Origin": "http://evil.example"}) as resp:
            assert resp.status == 403
        async with session.put(url, json={}, headers={"Origin": base(app)}) as resp:
            assert resp.status == 201, await resp.text()
    # The Bearer token needs no Origin.
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        async with session.put(base(app) + "/api/id-tags/TAG2", json={}, headers=headers) as r:
            assert r.status == 201


async def test_bad_login_bodies_are_json_4xx(app: App) -> None:
    """A login without a password string answers 400 invalid_request/invalid_json."""
    async with aiohttp.ClientSession() as session:
        for body, code in (
            (b"", "invalid_json"),
            (b"[1]", "invalid_json"),
            (b'{"password": 1}', "invalid_request"),
            (b'{"password": "x", "user": "y"}', "invalid_request"),
        ):
            async with session.post(base(app) + "/api/session", data=body) as resp:
                assert resp.status == 400
                assert (await resp.json())["error"] == code


async def test_failed_logins_are_throttled_and_logged_without_the_password(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    """After three wrong passwords the next try waits (429, Retry-After); no secret logged."""
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            resp = await login(session, app, "wrong-password-123")
            assert resp.status == 401
        resp = await login(session, app, API_TOKEN)
        assert resp.status == 429
        assert int(resp.headers["Retry-After"]) >= 1
    assert "web login failed from 127.0.0.1" in caplog.text
    assert "wrong-password-123" not in caplog.text


def test_throttle_doubles_the_wait_and_forgets_on_success() -> None:
    """Each failure past the free ones doubles the wait; a success clears the address."""
    now = [0.0]
    throttle = Throttle(lambda: now[0])
    for _ in range(2):
        throttle.failed("a")
        assert throttle.retry_after("a") == 0
    throttle.failed("a")
    assert throttle.retry_after("a") == 1
    throttle.failed("a")
    assert throttle.retry_after("a") == 2
    now[0] += 2
    assert throttle.retry_after("a") == 0
    assert throttle.retry_after("b") == 0
    throttle.succeeded("a")
    throttle.failed("a")
    assert throttle.retry_after("a") == 0


@pytest.fixture
def password_config(tmp_path: Path) -> Config:
    config = make_config(tmp_path / "data")
    return replace(config, web=replace(config.web, password=PasswordHash.of("site-secret-1")))


async def test_configured_password_replaces_the_token(password_config: Config) -> None:
    """With [web] password set, it logs in and the API token no longer does."""
    async with App(password_config) as app, aiohttp.ClientSession() as session:
        assert (await login(session, app, API_TOKEN)).status == 401
        assert (await login(session, app, "site-secret-1")).status == 204


def test_password_is_read_hashed(tmp_path: Path) -> None:
    """`[web] password` is kept as a salted hash, never as text; short ones are refused."""
    path = tmp_path / "config.toml"
    path.write_text('[web]\npassword = "correct horse"\n')
    config = load_config(path)
    assert config.web.password is not None
    assert "correct horse" not in repr(config)
    assert config.web.password.matches("correct horse")
    assert not config.web.password.matches("correct horse!")
    assert PasswordHash.of("x" * 8).salt != PasswordHash.of("x" * 8).salt
