"""The operator HTTP API contract (DESIGN §4), against a real service and real chargers."""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from edge.app import App
from edge.ocppj import CSMS_TO_CP_ACTIONS
from edge.sim.charger import RawCharger
from tests.conftest import API_TOKEN, Api, api_client, ocpp_url
from tests.helpers import Json, booted, eventually, iso, now_iso, start_transaction

CP = "CP-API-1"

CERT = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"
BOOT = {"chargePointVendor": "Vendor", "chargePointModel": "Model", "firmwareVersion": "2.1"}
HASH_DATA = {
    "hashAlgorithm": "SHA256",
    "issuerNameHash": "a1b2c3",
    "issuerKeyHash": "d4e5f6",
    "serialNumber": "0123",
}


def later() -> str:
    return iso(datetime.now(UTC) + timedelta(hours=1))


def is_error(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("error"), str)


def online(
    app: App, charger_id: str = CP, connectors: int = 1
) -> AbstractAsyncContextManager[RawCharger]:
    """A charger connected, booted Accepted with `BOOT`, every connector Available."""
    return booted(app, charger_id, available=range(connectors + 1), boot=BOOT)


async def raw(api: Api, method: str, path: str, data: bytes) -> tuple[int, Any]:
    """Send a body as is, with a JSON content type; the answer must be JSON."""
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    async with api.session.request(method, api.base + path, data=data, headers=headers) as resp:
        assert resp.content_type == "application/json", resp.content_type
        return resp.status, await resp.json()


# --- health and authentication ------------------------------------------------------------


async def test_health_needs_no_auth(api: Api) -> None:
    """GET /api/health answers {"status": "ok"} without a token."""
    assert await api.request("GET", "/api/health", token=None) == (200, {"status": "ok"})


PROTECTED = [
    ("GET", "/api/chargers", None),
    ("GET", f"/api/chargers/{CP}", None),
    ("PUT", "/api/chargers/NEWCP", {"registration": "Accepted"}),
    ("POST", f"/api/chargers/{CP}/ocpp/ClearCache", {}),
    ("GET", f"/api/chargers/{CP}/events", None),
    ("GET", f"/api/chargers/{CP}/status-history", None),
    ("GET", "/api/id-tags", None),
    ("GET", "/api/id-tags/TAG1", None),
    ("PUT", "/api/id-tags/NEWTAG", {"status": "Accepted"}),
    ("DELETE", "/api/id-tags/TAG1", None),
    ("GET", "/api/transactions", None),
    ("GET", "/api/transactions/1", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), PROTECTED, ids=[f"{m} {p}" for m, p, _ in PROTECTED]
)
async def test_api_routes_require_the_bearer_token(
    app: App, api: Api, method: str, path: str, body: Any
) -> None:
    """Every /api route but health answers 401 with a JSON error without, or with a wrong, Bearer
    token.
    """
    async with online(app) as cp:
        cp.answers["ClearCache"] = {"status": "Accepted"}
        assert (await api.request("PUT", "/api/id-tags/TAG1", {"status": "Accepted"}))[0] == 201
        # Each wrong one from its own address: three in a row from one are throttled (429).
        for n, token in enumerate((None, "wrong-token", API_TOKEN + "x", API_TOKEN[:-1])):
            async with api_client(app.web_port, source=f"127.0.0.{n + 2}") as stranger:
                code, data = await stranger.request(method, path, body, token=token)
            assert code == 401, (token, code, data)
            assert is_error(data), data
        headers = {"Authorization": f"Basic {API_TOKEN}"}
        async with api.session.request(method, api.base + path, json=body, headers=headers) as resp:
            assert resp.status == 401
            assert is_error(await resp.json())
        # Nothing was done on the unauthenticated requests' behalf.
        assert cp.received_calls == []
        assert (await api.request("GET", "/api/chargers/NEWCP"))[0] == 404
        assert (await api.request("GET", "/api/id-tags/NEWTAG"))[0] == 404
        assert (await api.request("GET", "/api/id-tags/TAG1"))[0] == 200


# --- chargers -----------------------------------------------------------------------------


async def test_list_chargers_fields(app: App, api: Api) -> None:
    """GET /api/chargers lists each charger: identity, boot data, liveness and connectors."""
    async with online(app, connectors=2) as cp:
        assert await cp.status(2, "Faulted", "GroundFailure") == {}
        chargers = await api.get("/api/chargers")
        assert [c["id"] for c in chargers] == [CP]
        entry = chargers[0]
        assert entry["connected"] is True
        assert entry["registration"] == "Accepted"
        assert (entry["vendor"], entry["model"], entry["firmwareVersion"]) == (
            "Vendor",
            "Model",
            "2.1",
        )
        assert isinstance(entry["lastSeen"], str) and entry["lastSeen"].endswith("Z")
        seen = datetime.fromisoformat(entry["lastSeen"])
        assert abs(seen - datetime.now(UTC)) < timedelta(seconds=30)
        connectors = [
            {k: c[k] for k in ("connectorId", "status", "errorCode", "transactionId")}
            for c in entry["connectors"]
        ]
        assert connectors == [
            {
                "connectorId": 0,
                "status": "Available",
                "errorCode": "NoError",
                "transactionId": None,
            },
            {
                "connectorId": 1,
                "status": "Available",
                "errorCode": "NoError",
                "transactionId": None,
            },
            {
                "connectorId": 2,
                "status": "Faulted",
                "errorCode": "GroundFailure",
                "transactionId": None,
            },
        ]
        detail = await api.get(f"/api/chargers/{CP}")
        for key in ("id", "connected", "registration", "vendor", "model", "firmwareVersion"):
            assert detail[key] == entry[key], key
        assert detail["connectors"] == entry["connectors"]
    # Disconnected: still listed, no longer connected.
    await eventually(lambda: _connected_is(api, False))


async def _connected_is(api: Api, expected: bool) -> bool:
    chargers = await api.get("/api/chargers")
    return bool(chargers) and chargers[0]["connected"] is expected


async def test_get_charger(app: App, api: Api) -> None:
    """GET /api/chargers/{id} shows one charger with profiles and reservations; unknown → 404."""
    async with online(app):
        data = await api.get(f"/api/chargers/{CP}")
        assert data["id"] == CP
        assert data["connected"] is True
        assert data["chargingProfiles"] == []
        assert data["reservations"] == []
        assert [c["connectorId"] for c in data["connectors"]] == [0, 1]
    code, body = await api.request("GET", "/api/chargers/NOPE")
    assert code == 404 and is_error(body)


async def test_put_charger_registration(app: App, api: Api) -> None:
    """PUT /api/chargers/{id} creates (201) or changes (200) a registration, which the next boot
    answers.
    """
    code, body = await api.request("PUT", "/api/chargers/NEWCP", {"registration": "Pending"})
    assert code == 201, body
    assert (body["id"], body["registration"], body["connected"]) == ("NEWCP", "Pending", False)
    assert (await api.get("/api/chargers/NEWCP"))["registration"] == "Pending"
    async with RawCharger.connect(ocpp_url(app, "NEWCP")) as cp:
        assert (await cp.boot())["status"] == "Pending"
        code, body = await api.request("PUT", "/api/chargers/NEWCP", {"registration": "Rejected"})
        assert code == 200 and body["registration"] == "Rejected"
        assert (await cp.boot())["status"] == "Rejected"
        code, body = await api.request("PUT", "/api/chargers/NEWCP", {"registration": "Accepted"})
        assert code == 200 and body["registration"] == "Accepted"
        assert (await cp.boot())["status"] == "Accepted"
        assert (await api.get("/api/chargers/NEWCP"))["registration"] == "Accepted"
    for bad in ({"registration": "Maybe"}, {"registration": None}, {}, {"registration": 1}):
        code, body = await api.request("PUT", "/api/chargers/NEWCP", bad)
        assert code == 400 and is_error(body), (bad, code, body)
    code, body = await api.request("PUT", "/api/chargers/OTHER", {"registration": "accepted"})
    assert code == 400 and is_error(body)
    assert (await api.request("GET", "/api/chargers/OTHER"))[0] == 404
    assert (await api.get("/api/chargers/NEWCP"))["registration"] == "Accepted"


# --- operations: errors -------------------------------------------------------------------


async def test_operation_unknown_action(app: App, api: Api) -> None:
    """An action that is not a CSMS→charger OCPP 1.6 action answers 404 and sends nothing."""
    async with online(app) as cp:
        for action in ("Foo", "Heartbeat", "StartTransaction", "reset"):
            code, body = await api.operation(CP, action, {})
            assert code == 404 and is_error(body), (action, code, body)
        assert cp.received_calls == []


async def test_operation_schema_invalid_payload(app: App, api: Api) -> None:
    """A payload invalid for the action's schema answers 400 with an OCPP errorCode and sends
    nothing.
    """
    async with online(app) as cp:
        for action, payload in (
            ("Reset", {"type": "Sideways"}),
            ("Reset", {}),
            ("UnlockConnector", {"connectorId": "one"}),
            ("ChangeConfiguration", {"key": "K", "value": "v", "extra": 1}),
        ):
            code, body = await api.operation(CP, action, payload)
            assert code == 400, (action, payload, code, body)
            assert is_error(body)
            assert isinstance(body.get("errorCode"), str) and body["errorCode"], body
        assert cp.received_calls == []


async def test_operation_unknown_charger(api: Api) -> None:
    """An operation on a charger the CSMS does not know answers 404."""
    code, body = await api.operation("NOBODY", "Reset", {"type": "Soft"})
    assert code == 404 and is_error(body)


async def test_operation_disconnected_charger(app: App, api: Api) -> None:
    """An operation on a known charger that is not connected answers 409."""
    code, _ = await api.request("PUT", "/api/chargers/OFFLINE", {"registration": "Accepted"})
    assert code == 201
    code, body = await api.operation("OFFLINE", "Reset", {"type": "Soft"})
    assert code == 409 and is_error(body)
    async with online(app):
        pass
    await eventually(lambda: _connected_is_for(api, CP, False))
    code, body = await api.operation(CP, "Reset", {"type": "Soft"})
    assert code == 409 and is_error(body)


async def _connected_is_for(api: Api, charger_id: str, expected: bool) -> bool:
    return (await api.get(f"/api/chargers/{charger_id}"))["connected"] is expected


async def test_operation_call_error(app: App, api: Api) -> None:
    """A CALLERROR from the charger answers 502 with error CallError and the charger's errorCode."""
    async with online(app) as cp:
        cp.answers["Reset"] = ("NotImplemented", "no reset here")
        code, body = await api.operation(CP, "Reset", {"type": "Hard"})
        assert code == 502, body
        assert body["error"] == "CallError"
        assert body["errorCode"] == "NotImplemented"


async def test_operation_timeout(app: App, api: Api) -> None:
    """A charger that never answers gives 504 after call_timeout; the next operation works."""
    async with online(app) as cp:
        cp.answers["Reset"] = "silent"
        begun = time.monotonic()
        code, body = await api.operation(CP, "Reset", {"type": "Soft"})
        elapsed = time.monotonic() - begun
        assert code == 504 and is_error(body), (code, body)
        timeout = app.config.ocpp.call_timeout
        assert timeout * 0.9 <= elapsed < timeout + 2.0, elapsed
        cp.answers["Reset"] = {"status": "Accepted"}
        assert await api.operation(CP, "Reset", {"type": "Soft"}) == (
            200,
            {"response": {"status": "Accepted"}},
        )


async def test_operation_schema_invalid_response(app: App, api: Api) -> None:
    """A charger's answer that fails the response schema gives 502."""
    async with online(app) as cp:
        cp.answers["Reset"] = {"status": "Maybe"}
        code, body = await api.operation(CP, "Reset", {"type": "Soft"})
        assert code == 502 and is_error(body), (code, body)
        cp.answers["UnlockConnector"] = {}
        code, body = await api.operation(CP, "UnlockConnector", {"connectorId": 1})
        assert code == 502 and is_error(body), (code, body)


# --- operations: every CSMS→charger action ------------------------------------------------

OPERATIONS: dict[str, tuple[Json, Json]] = {
    "CancelReservation": ({"reservationId": 7}, {"status": "Accepted"}),
    "ChangeAvailability": ({"connectorId": 1, "type": "Inoperative"}, {"status": "Accepted"}),
    "ChangeConfiguration": ({"key": "HeartbeatInterval", "value": "30"}, {"status": "Accepted"}),
    "ClearCache": ({}, {"status": "Accepted"}),
    "ClearChargingProfile": ({}, {"status": "Unknown"}),
    "DataTransfer": ({"vendorId": "com.example"}, {"status": "UnknownVendorId"}),
    "GetCompositeSchedule": ({"connectorId": 1, "duration": 3600}, {"status": "Rejected"}),
    "GetConfiguration": ({}, {}),
    "GetDiagnostics": ({"location": "ftp://example.com/diagnostics/"}, {}),
    "GetLocalListVersion": ({}, {"listVersion": 0}),
    "RemoteStartTransaction": ({"idTag": "TAG1"}, {"status": "Accepted"}),
    "RemoteStopTransaction": ({"transactionId": 1}, {"status": "Rejected"}),
    "ReserveNow": (
        {
            "connectorId": 1,
            "expiryDate": "2099-01-01T00:00:00.000Z",
            "idTag": "TAG1",
            "reservationId": 7,
        },
        {"status": "Accepted"},
    ),
    "Reset": ({"type": "Soft"}, {"status": "Accepted"}),
    "SendLocalList": ({"listVersion": 1, "updateType": "Full"}, {"status": "Accepted"}),
    "SetChargingProfile": (
        {
            "connectorId": 0,
            "csChargingProfiles": {
                "chargingProfileId": 1,
                "stackLevel": 0,
                "chargingProfilePurpose": "ChargePointMaxProfile",
                "chargingProfileKind": "Relative",
                "chargingSchedule": {
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
                },
            },
        },
        {"status": "Accepted"},
    ),
    "TriggerMessage": ({"requestedMessage": "Heartbeat"}, {"status": "Rejected"}),
    "UnlockConnector": ({"connectorId": 1}, {"status": "Unlocked"}),
    "UpdateFirmware": (
        {"location": "https://example.com/fw.bin", "retrieveDate": "2099-01-01T00:00:00.000Z"},
        {},
    ),
    # Security Whitepaper
    "CertificateSigned": ({"certificateChain": CERT}, {"status": "Accepted"}),
    "DeleteCertificate": ({"certificateHashData": HASH_DATA}, {"status": "Accepted"}),
    "ExtendedTriggerMessage": ({"requestedMessage": "Heartbeat"}, {"status": "Rejected"}),
    "GetInstalledCertificateIds": (
        {"certificateType": "CentralSystemRootCertificate"},
        {"status": "NotFound"},
    ),
    "GetLog": (
        {
            "logType": "DiagnosticsLog",
            "requestId": 1,
            "log": {"remoteLocation": "https://example.com/logs/"},
        },
        {"status": "Accepted"},
    ),
    "InstallCertificate": (
        {"certificateType": "CentralSystemRootCertificate", "certificate": CERT},
        {"status": "Accepted"},
    ),
    "SignedUpdateFirmware": (
        {
            "requestId": 1,
            "firmware": {
                "location": "https://example.com/fw.bin",
                "retrieveDateTime": "2099-01-01T00:00:00.000Z",
                "signingCertificate": CERT,
                "signature": "c2lnbmF0dXJl",
            },
        },
        {"status": "Accepted"},
    ),
}


def test_operations_cover_every_csms_action() -> None:
    """The parametrized operations below cover all 26 CSMS→charger actions (1.6 + security)."""
    assert set(OPERATIONS) == CSMS_TO_CP_ACTIONS
    assert len(OPERATIONS) == 26


@pytest.mark.parametrize("action", sorted(OPERATIONS))
async def test_operation_every_action(app: App, api: Api, action: str) -> None:
    """Each CSMS→charger action is sent with the operator's payload and its answer returned as 200
    {"response": …}.
    """
    request, response = OPERATIONS[action]
    async with online(app) as cp:
        cp.answers[action] = response
        code, body = await api.operation(CP, action, request)
        assert (code, body) == (200, {"response": response})
        assert cp.received_calls == [(action, request)]


async def test_operation_results_are_recorded(app: App, api: Api) -> None:
    """ChangeAvailability Accepted and GetConfiguration results show in GET /api/chargers/{id}."""
    async with online(app, connectors=2) as cp:
        cp.answers["ChangeAvailability"] = {"status": "Accepted"}
        request = {"connectorId": 2, "type": "Inoperative"}
        assert (await api.operation(CP, "ChangeAvailability", request))[0] == 200
        availability = (await api.get(f"/api/chargers/{CP}"))["availability"]
        assert availability["2"]["type"] == "Inoperative"
        assert availability["2"]["status"] == "Accepted"
        cp.answers["ChangeAvailability"] = {"status": "Rejected"}
        request = {"connectorId": 1, "type": "Inoperative"}
        assert (await api.operation(CP, "ChangeAvailability", request))[0] == 200
        assert "1" not in (await api.get(f"/api/chargers/{CP}"))["availability"]

        keys = [
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
            {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
        ]
        cp.answers["GetConfiguration"] = {"configurationKey": keys, "unknownKey": ["Nope"]}
        code, _ = await api.operation(
            CP, "GetConfiguration", {"key": ["HeartbeatInterval", "NumberOfConnectors", "Nope"]}
        )
        assert code == 200
        configuration = (await api.get(f"/api/chargers/{CP}"))["configuration"]
        assert configuration["HeartbeatInterval"]["value"] == "300"
        assert configuration["HeartbeatInterval"]["readonly"] is False
        assert configuration["NumberOfConnectors"]["value"] == "2"
        assert configuration["NumberOfConnectors"]["readonly"] is True
        assert "Nope" not in configuration


SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


async def _secret_not_shown(api: Api, action: str) -> None:
    """Wait for the operation's journal event, then look for the secret everywhere."""

    async def journalled() -> bool:
        code, events = await api.request("GET", f"/api/chargers/{CP}/events")
        assert code == 200
        return any(
            e.get("kind") == "Operation" and e.get("data", {}).get("action") == action
            for e in events
        )

    await eventually(journalled)
    for path in (f"/api/chargers/{CP}", f"/api/chargers/{CP}/events", "/api/chargers"):
        async with api.session.get(
            api.base + path, headers={"Authorization": f"Bearer {API_TOKEN}"}
        ) as resp:
            assert resp.status == 200
            assert SECRET not in await resp.text(), path


async def test_authorization_key_never_shown_after_change(app: App, api: Api) -> None:
    """An AuthorizationKey set with ChangeConfiguration appears neither in the charger nor its
    events.
    """
    async with online(app) as cp:
        cp.answers["ChangeConfiguration"] = {"status": "Accepted"}
        request = {"key": "AuthorizationKey", "value": SECRET}
        code, _ = await api.operation(CP, "ChangeConfiguration", request)
        assert code == 200
        assert cp.received_calls == [("ChangeConfiguration", request)]
        await _secret_not_shown(api, "ChangeConfiguration")


async def test_authorization_key_never_shown_when_reported(app: App, api: Api) -> None:
    """An AuthorizationKey value a charger wrongly reports in GetConfiguration is not kept in the
    charger nor its events.
    """
    async with online(app) as cp:
        cp.answers["GetConfiguration"] = {
            "configurationKey": [
                {"key": "AuthorizationKey", "readonly": False, "value": SECRET},
                {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
            ]
        }
        code, _ = await api.operation(CP, "GetConfiguration", {})
        assert code == 200
        assert "HeartbeatInterval" in (await api.get(f"/api/chargers/{CP}"))["configuration"]
        await _secret_not_shown(api, "GetConfiguration")


# --- id tags ------------------------------------------------------------------------------


async def test_id_tags_crud(app: App, api: Api) -> None:
    """Id tags are created (201), updated (200), read, listed and deleted (204, then 404)."""
    code, body = await api.request(
        "PUT",
        "/api/id-tags/TAG1",
        {"status": "Accepted", "expiryDate": "2099-01-01T00:00:00Z", "parentIdTag": "GROUP1"},
    )
    assert code == 201, body
    assert (body["idTag"], body["status"], body["parentIdTag"]) == ("TAG1", "Accepted", "GROUP1")
    assert datetime.fromisoformat(body["expiryDate"]) == datetime(2099, 1, 1, tzinfo=UTC)
    assert await api.get("/api/id-tags/TAG1") == body
    async with online(app) as cp:
        conf = await cp.call("Authorize", {"idTag": "TAG1"})
        assert conf["idTagInfo"]["status"] == "Accepted"
        assert conf["idTagInfo"]["parentIdTag"] == "GROUP1"

        code, body = await api.request("PUT", "/api/id-tags/TAG1", {"status": "Blocked"})
        assert code == 200, body
        assert (body["idTag"], body["status"]) == ("TAG1", "Blocked")
        assert (await api.get("/api/id-tags/TAG1"))["status"] == "Blocked"
        conf = await cp.call("Authorize", {"idTag": "TAG1"})
        assert conf["idTagInfo"]["status"] == "Blocked"

        assert (await api.request("PUT", "/api/id-tags/TAG2", {"status": "Expired"}))[0] == 201
        listed = await api.get("/api/id-tags")
        assert {t["idTag"]: t["status"] for t in listed} == {"TAG1": "Blocked", "TAG2": "Expired"}

        assert await api.request("DELETE", "/api/id-tags/TAG1") == (204, None)
        code, body = await api.request("GET", "/api/id-tags/TAG1")
        assert code == 404 and is_error(body)
        code, body = await api.request("DELETE", "/api/id-tags/TAG1")
        assert code == 404 and is_error(body)
        assert [t["idTag"] for t in await api.get("/api/id-tags")] == ["TAG2"]
        conf = await cp.call("Authorize", {"idTag": "TAG1"})
        assert conf["idTagInfo"]["status"] == "Invalid"


@pytest.mark.parametrize(
    ("id_tag", "body"),
    [
        ("BAD1", {"status": "Bogus"}),
        ("BAD1", {"status": "accepted"}),
        ("BAD1", {"status": "ConcurrentTx"}),
        ("BAD1", {"status": "Accepted", "expiryDate": "tomorrow"}),
        ("BAD1", {"status": "Accepted", "expiryDate": 1234567890}),
        ("BAD1", {"status": "Accepted", "parentIdTag": "P" * 21}),
        ("T" * 21, {"status": "Accepted"}),
    ],
    ids=["status", "status-case", "concurrent", "expiry-text", "expiry-number", "parent", "long"],
)
async def test_id_tag_invalid_is_400(api: Api, id_tag: str, body: Json) -> None:
    """An invalid status, expiryDate, parentIdTag or an idTag over 20 characters answers 400 and
    stores nothing.
    """
    code, answer = await api.request("PUT", f"/api/id-tags/{id_tag}", body)
    assert code == 400 and is_error(answer), (code, answer)
    assert await api.get("/api/id-tags") == []


async def test_id_tag_20_characters_is_valid(api: Api) -> None:
    """An idTag of exactly 20 characters (CiString20) is accepted."""
    code, body = await api.request("PUT", "/api/id-tags/" + "T" * 20, {"status": "Accepted"})
    assert code == 201 and body["idTag"] == "T" * 20


async def test_id_tag_lookup_is_case_insensitive(app: App, api: Api) -> None:
    """A tag stored as "ABC" authorizes "abc" and starts a transaction with it (IdToken is
    case-insensitive).
    """
    assert (await api.request("PUT", "/api/id-tags/ABC", {"status": "Accepted"}))[0] == 201
    assert (await api.get("/api/id-tags/abc"))["idTag"] == "ABC"
    async with online(app) as cp:
        conf = await cp.call("Authorize", {"idTag": "abc"})
        assert conf["idTagInfo"]["status"] == "Accepted"
        await start_transaction(cp, "aBc", connector_id=1, meter_start=0)
    code, _ = await api.request("PUT", "/api/id-tags/abc", {"status": "Blocked"})
    assert code == 200
    assert [(t["idTag"].casefold(), t["status"]) for t in await api.get("/api/id-tags")] == [
        ("abc", "Blocked")
    ]


# --- transactions -------------------------------------------------------------------------

TX_FIELDS = {
    "transactionId",
    "chargerId",
    "connectorId",
    "idTag",
    "meterStart",
    "meterStop",
    "energyWh",
    "startTime",
    "stopTime",
    "stopReason",
    "reservationId",
    "active",
}


async def test_transactions_list_and_filters(app: App, api: Api) -> None:
    """GET /api/transactions filters by chargerId and active, and each entry has the contract
    fields.
    """
    assert (await api.request("PUT", "/api/id-tags/TAG1", {"status": "Accepted"}))[0] == 201
    async with online(app, "CP-A", connectors=2) as a, online(app, "CP-B") as b:
        done = await start_transaction(a, "TAG1", connector_id=1, meter_start=100)
        conf = await a.call(
            "StopTransaction",
            {"transactionId": done, "meterStop": 600, "timestamp": now_iso(), "reason": "Local"},
        )
        assert "idTagInfo" not in conf
        running_a = await start_transaction(a, "TAG1", connector_id=2, meter_start=1000)
        running_b = await start_transaction(b, "TAG1", connector_id=1, meter_start=5000)

        async def ids(query: str) -> set[int]:
            return {t["transactionId"] for t in await api.get(f"/api/transactions{query}")}

        everything = await api.get("/api/transactions")
        assert {t["transactionId"] for t in everything} == {done, running_a, running_b}
        for entry in everything:
            assert set(entry) >= TX_FIELDS, entry
        assert await ids("?chargerId=CP-A") == {done, running_a}
        assert await ids("?chargerId=CP-B") == {running_b}
        assert await ids("?chargerId=CP-C") == set()
        assert await ids("?active=true") == {running_a, running_b}
        assert await ids("?active=false") == {done}
        assert await ids("?chargerId=CP-A&active=true") == {running_a}
        assert await ids("?chargerId=CP-B&active=false") == set()

        stopped = await api.get(f"/api/transactions/{done}")
        assert stopped["chargerId"] == "CP-A" and stopped["connectorId"] == 1
        assert (stopped["meterStart"], stopped["meterStop"], stopped["energyWh"]) == (100, 600, 500)
        assert (stopped["stopReason"], stopped["active"], stopped["idTag"]) == (
            "Local",
            False,
            "TAG1",
        )
        assert stopped["stopTime"].endswith("Z") and stopped["startTime"].endswith("Z")


async def test_get_transaction_with_meter_values(app: App, api: Api) -> None:
    """GET /api/transactions/{id} returns the transaction with its meter samples; unknown → 404,
    non-integer → 400.
    """
    assert (await api.request("PUT", "/api/id-tags/TAG1", {"status": "Accepted"}))[0] == 201
    async with online(app) as cp:
        tx_id = await start_transaction(cp, "TAG1", connector_id=1, meter_start=2000)
        sampled = [{"value": "2600", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]
        stamp = now_iso()
        conf = await cp.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": tx_id,
                "meterValue": [{"timestamp": stamp, "sampledValue": sampled}],
            },
        )
        assert conf == {}
        data = await api.get(f"/api/transactions/{tx_id}")
        assert data["transactionId"] == tx_id and data["active"] is True
        assert data["energyWh"] == 600
        assert len(data["meterValues"]) == 1
        sample = data["meterValues"][0]
        assert datetime.fromisoformat(sample["timestamp"]) == datetime.fromisoformat(stamp)
        assert sample["sampledValue"] == sampled
    code, body = await api.request("GET", f"/api/transactions/{tx_id + 1000}")
    assert code == 404 and is_error(body)
    code, body = await api.request("GET", "/api/transactions/abc")
    assert code == 400 and is_error(body)


# --- metrics and generic errors -----------------------------------------------------------


async def test_metrics_prometheus_text(app: App, api: Api) -> None:
    """GET /metrics answers Prometheus text with the connected-chargers gauge."""
    async with online(app), api.session.get(api.base + "/metrics") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
    assert "# TYPE edge_chargers_connected gauge" in text
    assert "\nedge_chargers_connected 1\n" in "\n" + text


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("PUT", "/api/id-tags/TAG1", b"{not json"),
        ("PUT", "/api/chargers/NEWCP", b'{"registration": '),
        ("POST", f"/api/chargers/{CP}/ocpp/Reset", b"[1, 2"),
        ("PUT", "/api/id-tags/TAG1", b"[1, 2]"),
        ("POST", f"/api/chargers/{CP}/ocpp/Reset", b'"Soft"'),
    ],
    ids=["id-tag", "charger", "operation", "id-tag-array", "operation-string"],
)
async def test_malformed_json_body_is_400(
    app: App, api: Api, method: str, path: str, data: bytes
) -> None:
    """A body that is not a JSON object answers 400 with a JSON error and changes nothing."""
    async with online(app) as cp:
        code, body = await raw(api, method, path, data)
        assert code == 400 and is_error(body), (code, body)
        assert cp.received_calls == []
    assert await api.get("/api/id-tags") == []
    assert (await api.request("GET", "/api/chargers/NEWCP"))[0] == 404


@pytest.mark.parametrize("path", ["/api/nothing-here", "/api/chargers/X/nothing", "/nothing"])
async def test_unknown_route_is_404_json(api: Api, path: str) -> None:
    """An unknown route answers 404 with a JSON error body."""
    code, body = await api.request("GET", path)
    assert code == 404 and is_error(body), (code, body)


async def test_operations_respect_registration(app: App, api: Api) -> None:
    """A Rejected charger gets no operations; a Pending one no remote start/stop (1.6 §4.2)."""
    async with RawCharger.connect(ocpp_url(app, "CP-REG")) as cp:
        await cp.boot()
        cp.answers["RemoteStartTransaction"] = {"status": "Accepted"}
        cp.answers["GetConfiguration"] = {"configurationKey": []}
        status, _ = await api.request("PUT", "/api/chargers/CP-REG", {"registration": "Pending"})
        assert status == 200
        status, body = await api.operation("CP-REG", "RemoteStartTransaction", {"idTag": "T1"})
        assert status == 409 and body["error"] == "not_accepted"
        status, _ = await api.operation("CP-REG", "GetConfiguration", {})
        assert status == 200  # configuring a Pending charger is allowed
        await api.request("PUT", "/api/chargers/CP-REG", {"registration": "Rejected"})
        status, body = await api.operation("CP-REG", "GetConfiguration", {})
        assert status == 409 and body["error"] == "not_accepted"
        assert [name for name, _ in cp.received_calls] == ["GetConfiguration"]
