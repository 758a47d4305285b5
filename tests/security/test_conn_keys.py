"""Charger passwords kept hashed, and AuthorizationKey changes (TC_073, the rotation).

The charger is the `ocpp` package's ChargePoint; it takes a new AuthorizationKey (hex on
the wire) and reconnects with the key's raw bytes, as the Whitepaper says.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytest

from edge.config import ChargerSettings, Config
from tests.conftest import Api, make_config
from tests.helpers import eventually
from tests.security.conn_support import (
    PASSWORD,
    charger,
    has_security_event,
    http_status,
    refused,
    serving,
    ws_url,
)

NEW_PASSWORD = "new-password-0123456"  # 20 bytes, OCTT's plaintext form


def config_with(data_dir: Path, password: str = PASSWORD, profile: int = 1) -> Config:
    base = make_config(data_dir)
    return dataclasses.replace(
        base, chargers={"CPK": ChargerSettings(password=password, security_profile=profile)}
    )


async def security_of(api: Api, charger_id: str = "CPK") -> dict[str, Any]:
    return dict((await api.get(f"/api/chargers/{charger_id}"))["security"])


def secrets_absent(data_dir: Path, *secrets: str | bytes) -> None:
    """No secret in any file of the data dir: documents, journal, WAL."""
    for path in data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for secret in secrets:
                raw = secret.encode() if isinstance(secret, str) else secret
                assert raw not in content, (path, secret)


async def test_authorization_key_by_hand_old_key_until_the_new_is_used(tmp_path: Path) -> None:
    """TC_073 through the generic endpoint: ChangeConfiguration(AuthorizationKey, hex of the
    new password) Accepted; the old password still works until the charger connects with the
    new one; then only the new one does, also after a restart with the unchanged file."""
    data_dir = tmp_path / "d"
    config = config_with(data_dir)
    hex_key = NEW_PASSWORD.encode().hex()
    async with serving(config) as (app, api):
        async with charger(ws_url(app, "CPK"), password=PASSWORD) as cp:
            status, body = await api.operation(
                "CPK", "ChangeConfiguration", {"key": "AuthorizationKey", "value": hex_key}
            )
            assert status == 200 and body["response"]["status"] == "Accepted", body
            assert cp.changes == [("AuthorizationKey", hex_key)]
        assert (await eventually(lambda: security_of(api)))["newKeyPending"] is True
        async with charger(ws_url(app, "CPK"), password=PASSWORD):
            pass  # the charger may not have switched yet
        async with charger(ws_url(app, "CPK"), password=bytes.fromhex(hex_key)):
            security = await security_of(api)
            assert security["newKeyPending"] is False
            assert security["passwordSource"] == "AuthorizationKey"
        assert http_status(await refused(ws_url(app, "CPK"), password=PASSWORD)) == 401
        async with charger(ws_url(app, "CPK"), password=NEW_PASSWORD):
            pass
    async with serving(config) as (app, api):
        assert http_status(await refused(ws_url(app, "CPK"), password=PASSWORD)) == 401
        async with charger(ws_url(app, "CPK"), password=NEW_PASSWORD):
            pass
    secrets_absent(data_dir, PASSWORD, NEW_PASSWORD, hex_key)


async def test_rotation_in_one_action(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """POST /api/chargers/{id}/security/rotate-key: a 40-hex-digit key the API never shows;
    the charger reconnects with its bytes (or, as some chargers do, its hex text)."""
    caplog.set_level(logging.DEBUG)
    data_dir = tmp_path / "d"
    async with serving(config_with(data_dir)) as (app, api):
        async with charger(ws_url(app, "CPK"), password=PASSWORD) as cp:
            status, body = await api.request("POST", "/api/chargers/CPK/security/rotate-key")
            assert status == 200 and body["keyChanged"] is True, body
            ((key, value),) = cp.changes
            assert key == "AuthorizationKey" and len(value) == 40
            int(value, 16)
            assert value not in str(body)
            assert body["security"]["newKeyPending"] is True
        async with charger(ws_url(app, "CPK"), password=bytes.fromhex(value)):
            pass
        assert http_status(await refused(ws_url(app, "CPK"), password=PASSWORD)) == 401
        async with charger(ws_url(app, "CPK"), password=value):
            pass
        events = await api.get("/api/chargers/CPK/events?limit=200")
        assert value not in str(events)
        assert await has_security_event(app.web_port, "AuthorizationKeyConfirmed", "CPK")
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("edge"))
    assert value not in ours and PASSWORD not in ours
    secrets_absent(data_dir, PASSWORD, value, bytes.fromhex(value))


@pytest.mark.parametrize("answer", ["Rejected", "NotSupported"])
async def test_refused_key_change_keeps_the_old_key(tmp_path: Path, answer: str) -> None:
    """A rotation the charger Rejects (or does not support) changes nothing."""
    async with serving(config_with(tmp_path / "d")) as (app, api):
        async with charger(ws_url(app, "CPK"), password=PASSWORD, answer=answer) as cp:
            status, body = await api.request("POST", "/api/chargers/CPK/security/rotate-key")
            assert status == 200 and body["keyChanged"] is False, body
            ((_, value),) = cp.changes
        assert (await security_of(api))["newKeyPending"] is False
        err = await refused(ws_url(app, "CPK"), password=bytes.fromhex(value))
        assert http_status(err) == 401
        async with charger(ws_url(app, "CPK"), password=PASSWORD):
            pass


async def test_password_set_through_the_api_is_stored_hashed(tmp_path: Path) -> None:
    """PUT /api/chargers/{id} {"password"}: Basic auth from then on (profile 1), the
    password nowhere in the data dir or the answer."""
    data_dir = tmp_path / "d"
    async with serving(make_config(data_dir)) as (app, api):
        status, body = await api.request(
            "PUT", "/api/chargers/CPP", {"registration": "Accepted", "password": NEW_PASSWORD}
        )
        assert status == 201 and NEW_PASSWORD not in str(body)
        security = await security_of(api, "CPP")
        assert security["password"] is True and security["profile"] == 1
        assert http_status(await refused(ws_url(app, "CPP"))) == 401
        async with charger(ws_url(app, "CPP"), password=NEW_PASSWORD):
            pass
        status, body = await api.request("PUT", "/api/chargers/CPP", {"password": "short"})
        assert status == 400
    secrets_absent(data_dir, NEW_PASSWORD)


async def test_changed_config_password_replaces_the_stored_one(tmp_path: Path) -> None:
    """A restart with the same config password keeps the stored hash; a changed one
    replaces it (the old one is refused)."""
    data_dir = tmp_path / "d"
    async with (
        serving(config_with(data_dir)) as (app, _),
        charger(ws_url(app, "CPK"), password=PASSWORD),
    ):
        pass
    async with serving(config_with(data_dir, NEW_PASSWORD)) as (app, _):
        assert http_status(await refused(ws_url(app, "CPK"), password=PASSWORD)) == 401
        async with charger(ws_url(app, "CPK"), password=NEW_PASSWORD):
            pass
    secrets_absent(data_dir, PASSWORD, NEW_PASSWORD)


async def test_hex_config_password_is_the_key_in_hex(tmp_path: Path) -> None:
    """A config password of 32-40 hex digits is the key's hex form (OCTT's rule): the
    charger presents the bytes, or the hex text."""
    hex_key = NEW_PASSWORD.encode().hex()
    async with serving(config_with(tmp_path / "d", hex_key)) as (app, _):
        async with charger(ws_url(app, "CPK"), password=NEW_PASSWORD):
            pass
        async with charger(ws_url(app, "CPK"), password=hex_key):
            pass


async def test_charger_without_password_takes_one(tmp_path: Path) -> None:
    """A profile 0 charger Accepts an AuthorizationKey: it may connect without one until
    it has used it; from then on it is profile 1 and needs it."""
    hex_key = NEW_PASSWORD.encode().hex()
    async with serving(make_config(tmp_path / "d")) as (app, api):
        async with charger(ws_url(app, "CP0")):
            status, body = await api.operation(
                "CP0", "ChangeConfiguration", {"key": "AuthorizationKey", "value": hex_key}
            )
            assert status == 200 and body["response"]["status"] == "Accepted", body
        async with charger(ws_url(app, "CP0")):
            assert (await security_of(api, "CP0"))["profile"] == 0
        async with charger(ws_url(app, "CP0"), password=NEW_PASSWORD):
            security = await security_of(api, "CP0")
            assert (security["profile"], security["newKeyPending"]) == (1, False)
        assert http_status(await refused(ws_url(app, "CP0"))) == 401


async def test_full_check_queue_answers_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the password checks' queue is full, a handshake is answered 503 with
    Retry-After (the charger retries) instead of waiting without bound."""
    from edge.security import credentials

    async with serving(config_with(tmp_path / "d")) as (app, _):
        monkeypatch.setattr(credentials, "MAX_WAITING", 0)
        err = await refused(ws_url(app, "CPK"), password=PASSWORD)
        assert http_status(err) == 503
        response = getattr(err, "response", None)
        assert response is not None and response.headers["Retry-After"] == "10"
        monkeypatch.setattr(credentials, "MAX_WAITING", 64)
        async with charger(ws_url(app, "CPK"), password=PASSWORD):
            pass
