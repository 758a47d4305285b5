"""The 34 Core CSMS test cases of the OCTT for OCPP 1.6 (certification reference §2.1).

Each test drives the exact message sequence of its case with a scripted charger on a
real WebSocket. Steps where "the Central System sends X" are triggered the way an
operator does it, through `POST /api/chargers/{id}/ocpp/{Action}`, with the charger
answering as the test tool does. Besides what the tool validates, each test checks
the state the CSMS keeps, as the operator API shows it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edge.app import App
from edge.sim.charger import RawCharger
from tests.conftest import Api, ocpp_url
from tests.helpers import Json, authorize, booted, charging, iso, now_iso, start_transaction

CP = "OCTT-CP"
CONNECTORS = 2  # the tool's NumberOfConnectors
CONNECTOR_IDS = range(CONNECTORS + 1)  # connector 0, the charger as a whole, and each one
VALID_TAG = "VALIDTAG01"
EXPIRED_TAG = "EXPIREDTAG"
BLOCKED_TAG = "BLOCKEDTAG"
UNKNOWN_TAG = "UNKNOWNTAG"


# --- helpers ------------------------------------------------------------------------------


def same_instant(api_time: str | None, sent: str) -> bool:
    assert api_time is not None
    assert api_time.endswith("Z"), api_time
    return datetime.fromisoformat(api_time) == datetime.fromisoformat(sent)


@pytest.fixture(autouse=True)
async def seed_id_tags(api: Api) -> None:
    """The CSMS test data the tool relies on: a valid, an expired and a blocked idTag."""
    for tag, status in (
        (VALID_TAG, "Accepted"),
        (EXPIRED_TAG, "Expired"),
        (BLOCKED_TAG, "Blocked"),
    ):
        code, body = await api.request("PUT", f"/api/id-tags/{tag}", {"status": status})
        assert code == 201, (code, body)


async def operate(api: Api, action: str, payload: Json) -> Json:
    """Trigger a CSMS→charger call as the operator; return the charger's answer."""
    code, body = await api.operation(CP, action, payload)
    assert code == 200, (code, body)
    assert set(body) == {"response"}, body
    response: Json = body["response"]
    return response


async def stop_transaction(
    cp: RawCharger,
    transaction_id: int,
    *,
    meter_stop: int,
    reason: str | None,
    id_tag: str | None = VALID_TAG,
    timestamp: str | None = None,
) -> Json:
    payload: Json = {
        "transactionId": transaction_id,
        "meterStop": meter_stop,
        "timestamp": timestamp or now_iso(),
    }
    if reason is not None:
        payload["reason"] = reason
    if id_tag is not None:
        payload["idTag"] = id_tag
    return await cp.call("StopTransaction", payload)


async def transaction(api: Api, transaction_id: int) -> Json:
    data: Json = await api.get(f"/api/transactions/{transaction_id}")
    assert data["transactionId"] == transaction_id
    return data


async def charger(api: Api) -> Json:
    data: Json = await api.get(f"/api/chargers/{CP}")
    return data


async def connector(api: Api, connector_id: int) -> Json:
    data = await charger(api)
    for entry in data["connectors"]:
        if entry["connectorId"] == connector_id:
            result: Json = entry
            return result
    raise AssertionError(f"connector {connector_id} not in {data['connectors']}")


async def charger_transactions(api: Api, **query: str) -> list[Json]:
    params = "&".join(f"{k}={v}" for k, v in {"chargerId": CP, **query}.items())
    data: list[Json] = await api.get(f"/api/transactions?{params}")
    return data


async def assert_running(api: Api, transaction_id: int, *, connector_id: int = 1) -> Json:
    """The CSMS shows `transaction_id` running on `connector_id`."""
    tx = await transaction(api, transaction_id)
    assert tx["active"] is True
    assert tx["chargerId"] == CP
    assert tx["connectorId"] == connector_id
    assert tx["stopTime"] is None and tx["meterStop"] is None and tx["stopReason"] is None
    state = await connector(api, connector_id)
    assert state["transactionId"] == transaction_id
    active = await charger_transactions(api, active="true")
    assert [t["transactionId"] for t in active] == [transaction_id]
    return tx


async def assert_stopped(
    api: Api, transaction_id: int, *, meter_start: int, meter_stop: int, reason: str
) -> Json:
    """The CSMS shows `transaction_id` finished with its energy and stop reason."""
    tx = await transaction(api, transaction_id)
    assert tx["active"] is False
    assert tx["meterStart"] == meter_start
    assert tx["meterStop"] == meter_stop
    assert tx["energyWh"] == meter_stop - meter_start
    assert tx["stopReason"] == reason
    assert tx["stopTime"] is not None
    assert await charger_transactions(api, active="true") == []
    return tx


async def assert_no_transaction(api: Api) -> None:
    assert await charger_transactions(api) == []
    for state in (await charger(api))["connectors"]:
        assert state["transactionId"] is None


# --- TC_001 .. TC_007: boot and local charging sessions -----------------------------------


async def test_tc_001_cold_boot(app: App, api: Api) -> None:
    """A cold-booting charger is Accepted with a heartbeat interval, and its statuses and heartbeats
    are answered.
    """
    async with RawCharger.connect(ocpp_url(app, CP)) as cp:
        conf = await cp.call(
            "BootNotification",
            {
                "chargePointVendor": "OCTT",
                "chargePointModel": "Tool",
                "firmwareVersion": "1.0.0",
            },
        )
        assert conf["status"] == "Accepted"
        assert conf["interval"] == app.config.ocpp.heartbeat_interval
        assert datetime.fromisoformat(conf["currentTime"]).tzinfo is not None
        for connector_id in CONNECTOR_IDS:
            assert await cp.status(connector_id, "Available") == {}
        beat = await cp.call("Heartbeat", {})
        assert set(beat) == {"currentTime"}
        assert abs(datetime.fromisoformat(beat["currentTime"]) - datetime.now(UTC)) < timedelta(
            seconds=60
        )
        data = await charger(api)
        assert data["connected"] is True
        assert data["registration"] == "Accepted"
        assert (data["vendor"], data["model"], data["firmwareVersion"]) == (
            "OCTT",
            "Tool",
            "1.0.0",
        )
        assert [(c["connectorId"], c["status"], c["errorCode"]) for c in data["connectors"]] == [
            (n, "Available", "NoError") for n in CONNECTOR_IDS
        ]
        # Quiet mode: the CSMS sent nothing the scenario does not ask for.
        assert cp.received_calls == []


async def test_tc_003_regular_charging_session_plugin_first(app: App, api: Api) -> None:
    """Plug-in first: Authorize and StartTransaction are Accepted and a transaction id is issued and
    recorded.
    """
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        assert await cp.status(1, "Preparing") == {}
        assert (await connector(api, 1))["status"] == "Preparing"
        assert await authorize(cp, VALID_TAG) == "Accepted"
        started = now_iso()
        tx_id = await start_transaction(cp, VALID_TAG, meter_start=2500, timestamp=started)
        assert await cp.status(1, "Charging") == {}
        tx = await assert_running(api, tx_id)
        assert tx["idTag"] == VALID_TAG
        assert tx["meterStart"] == 2500
        assert same_instant(tx["startTime"], started)
        assert (await connector(api, 1))["status"] == "Charging"
        assert cp.received_calls == []


async def test_tc_004_1_regular_charging_session_identification_first(app: App, api: Api) -> None:
    """Identification first (state Charging): Authorize then StartTransaction are Accepted and the
    transaction runs.
    """
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        tx_id = await charging(cp, VALID_TAG, connector_id=2, meter_start=0)
        tx = await assert_running(api, tx_id, connector_id=2)
        assert tx["idTag"] == VALID_TAG and tx["meterStart"] == 0
        assert (await connector(api, 2))["status"] == "Charging"
        assert (await connector(api, 1))["status"] == "Available"


async def test_tc_004_2_identification_first_connection_timeout(app: App, api: Api) -> None:
    """An authorization that never becomes a transaction leaves no transaction and an Available
    connector.
    """
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        assert await authorize(cp, VALID_TAG) == "Accepted"
        assert await cp.status(1, "Preparing") == {}
        # ConnectionTimeOut expires on the charger: no cable was plugged in.
        assert await cp.status(1, "Available") == {}
        state = await connector(api, 1)
        assert (state["status"], state["transactionId"]) == ("Available", None)
        await assert_no_transaction(api)


async def test_tc_005_1_ev_side_disconnected(app: App, api: Api) -> None:
    """A stop with reason EVDisconnected is accepted and the transaction recorded as finished with
    its energy.
    """
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        tx_id = await charging(cp, VALID_TAG, meter_start=1000)
        assert await cp.status(1, "SuspendedEV") == {}
        await assert_running(api, tx_id)
        conf = await stop_transaction(cp, tx_id, meter_stop=4200, reason="EVDisconnected")
        assert conf.get("idTagInfo", {}).get("status", "Accepted") == "Accepted"
        assert await cp.status(1, "Finishing") == {}
        assert await cp.status(1, "Available") == {}
        tx = await assert_stopped(
            api, tx_id, meter_start=1000, meter_stop=4200, reason="EVDisconnected"
        )
        assert tx["idTag"] == VALID_TAG
        state = await connector(api, 1)
        assert (state["status"], state["transactionId"]) == ("Available", None)


async def test_tc_007_regular_start_charging_session_cached_id(app: App, api: Api) -> None:
    """A StartTransaction without a preceding Authorize is validated by the CSMS itself and
    Accepted.
    """
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        assert await cp.status(1, "Preparing") == {}
        tx_id = await start_transaction(cp, VALID_TAG, meter_start=300)
        assert await cp.status(1, "Charging") == {}
        tx = await assert_running(api, tx_id)
        assert (tx["idTag"], tx["meterStart"]) == (VALID_TAG, 300)


async def test_tc_061_clear_authorization_data_in_cache(app: App, api: Api) -> None:
    """The operator sends ClearCache with an empty payload and gets the charger's Accepted back."""
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        cp.answers["ClearCache"] = {"status": "Accepted"}
        assert await operate(api, "ClearCache", {}) == {"status": "Accepted"}
        assert cp.received_calls == [("ClearCache", {})]


# --- TC_010 .. TC_012: remote start and stop ---------------------------------------------


async def test_tc_010_remote_start_cable_plugged_in_first(app: App, api: Api) -> None:
    """RemoteStartTransaction carries the operator's idTag and connector; the session that follows
    is Accepted.
    """
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        assert await cp.status(1, "Preparing") == {}
        cp.answers["RemoteStartTransaction"] = {"status": "Accepted"}
        request = {"connectorId": 1, "idTag": VALID_TAG}
        assert await operate(api, "RemoteStartTransaction", request) == {"status": "Accepted"}
        assert cp.received_calls == [("RemoteStartTransaction", request)]
        assert await authorize(cp, VALID_TAG) == "Accepted"
        tx_id = await start_transaction(cp, VALID_TAG, meter_start=1000)
        assert await cp.status(1, "Charging") == {}
        tx = await assert_running(api, tx_id)
        assert tx["idTag"] == VALID_TAG


async def test_tc_011_1_remote_start_remote_start_first(app: App, api: Api) -> None:
    """Remote start before plug-in: Authorize and StartTransaction are Accepted and the transaction
    runs.
    """
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        cp.answers["RemoteStartTransaction"] = {"status": "Accepted"}
        request = {"connectorId": 1, "idTag": VALID_TAG}
        assert await operate(api, "RemoteStartTransaction", request) == {"status": "Accepted"}
        assert cp.received_calls == [("RemoteStartTransaction", request)]
        assert await authorize(cp, VALID_TAG) == "Accepted"
        assert await cp.status(1, "Preparing") == {}
        tx_id = await start_transaction(cp, VALID_TAG, meter_start=1000)
        assert await cp.status(1, "Charging") == {}
        await assert_running(api, tx_id)


async def test_tc_011_2_remote_start_time_out(app: App, api: Api) -> None:
    """An accepted remote start that times out on the charger leaves no transaction and the CSMS
    responsive.
    """
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        cp.answers["RemoteStartTransaction"] = {"status": "Accepted"}
        request = {"connectorId": 1, "idTag": VALID_TAG}
        assert await operate(api, "RemoteStartTransaction", request) == {"status": "Accepted"}
        assert await authorize(cp, VALID_TAG) == "Accepted"
        assert await cp.status(1, "Preparing") == {}
        assert await cp.status(1, "Available") == {}
        await assert_no_transaction(api)
        assert (await connector(api, 1))["status"] == "Available"
        # The CSMS is not stuck waiting for a StartTransaction.
        assert set(await cp.call("Heartbeat", {})) == {"currentTime"}


async def test_tc_012_remote_stop_charging_session(app: App, api: Api) -> None:
    """RemoteStopTransaction carries the running transaction's id; the Remote stop that follows is
    recorded.
    """
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        tx_id = await charging(cp, VALID_TAG, meter_start=100)
        cp.answers["RemoteStopTransaction"] = {"status": "Accepted"}
        response = await operate(api, "RemoteStopTransaction", {"transactionId": tx_id})
        assert response == {"status": "Accepted"}
        assert cp.received_calls == [("RemoteStopTransaction", {"transactionId": tx_id})]
        conf = await stop_transaction(cp, tx_id, meter_stop=2100, reason="Remote")
        assert conf.get("idTagInfo", {}).get("status", "Accepted") == "Accepted"
        assert await cp.status(1, "Finishing") == {}
        assert await cp.status(1, "Available") == {}
        await assert_stopped(api, tx_id, meter_start=100, meter_stop=2100, reason="Remote")
        assert (await connector(api, 1))["transactionId"] is None


# --- TC_013 .. TC_018: reset and unlock ---------------------------------------------------


async def _reset(app: App, api: Api, reset_type: str) -> None:
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        cp.answers["Reset"] = {"status": "Accepted"}
        assert await operate(api, "Reset", {"type": reset_type}) == {"status": "Accepted"}
        assert cp.received_calls == [("Reset", {"type": reset_type})]
    # The charger reboots: a new connection, BootNotification, StatusNotification 0..n.
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        data = await charger(api)
        assert data["connected"] is True
        assert data["registration"] == "Accepted"
        assert data["lastReset"]["type"] == reset_type
        assert {c["status"] for c in data["connectors"]} == {"Available"}
        assert cp.received_calls == []


async def test_tc_013_hard_reset(app: App, api: Api) -> None:
    """The operator sends Reset Hard; the charger's BootNotification after the reset is Accepted."""
    await _reset(app, api, "Hard")


async def test_tc_014_soft_reset(app: App, api: Api) -> None:
    """The operator sends Reset Soft; the charger's BootNotification after the reset is Accepted."""
    await _reset(app, api, "Soft")


async def _unlock(app: App, api: Api, connector_id: int, answer: str) -> None:
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        cp.answers["UnlockConnector"] = {"status": answer}
        response = await operate(api, "UnlockConnector", {"connectorId": connector_id})
        assert response == {"status": answer}
        assert cp.received_calls == [("UnlockConnector", {"connectorId": connector_id})]
        await assert_no_transaction(api)


async def test_tc_017_1_unlock_connector_no_session_not_fixed_cable(app: App, api: Api) -> None:
    """The operator sends UnlockConnector for connector 1 and gets Unlocked back."""
    await _unlock(app, api, 1, "Unlocked")


async def test_tc_017_2_unlock_connector_no_session_fixed_cable(app: App, api: Api) -> None:
    """UnlockConnector answered NotSupported (fixed cable) is returned to the operator as is."""
    await _unlock(app, api, 1, "NotSupported")


async def test_tc_018_1_unlock_connector_with_charging_session(app: App, api: Api) -> None:
    """Unlocking during a session: the UnlockCommand stop that follows is accepted and recorded."""
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        tx_id = await charging(cp, VALID_TAG, meter_start=5000)
        cp.answers["UnlockConnector"] = {"status": "Unlocked"}
        assert await operate(api, "UnlockConnector", {"connectorId": 1}) == {"status": "Unlocked"}
        assert cp.received_calls == [("UnlockConnector", {"connectorId": 1})]
        assert await cp.status(1, "Finishing") == {}
        conf = await stop_transaction(cp, tx_id, meter_stop=5750, reason="UnlockCommand")
        assert conf.get("idTagInfo", {}).get("status", "Accepted") == "Accepted"
        assert await cp.status(1, "Available") == {}
        await assert_stopped(api, tx_id, meter_start=5000, meter_stop=5750, reason="UnlockCommand")
        state = await connector(api, 1)
        assert (state["status"], state["transactionId"]) == ("Available", None)


# --- TC_019 .. TC_021: configuration ----------------------------------------------------


async def test_tc_019_1_retrieve_all_configuration_keys(app: App, api: Api) -> None:
    """GetConfiguration for all keys is sent with `key` omitted; the reported keys are recorded."""
    all_keys = [
        {"key": "HeartbeatInterval", "readonly": False, "value": "60"},
        {"key": "MeterValueSampleInterval", "readonly": False, "value": "30"},
        {"key": "NumberOfConnectors", "readonly": True, "value": str(CONNECTORS)},
        {"key": "SupportedFeatureProfiles", "readonly": True, "value": "Core"},
    ]
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        cp.answers["GetConfiguration"] = {"configurationKey": all_keys}
        assert await operate(api, "GetConfiguration", {}) == {"configurationKey": all_keys}
        assert cp.received_calls == [("GetConfiguration", {})]
        configuration = (await charger(api))["configuration"]
        assert {k: (v["value"], v["readonly"]) for k, v in configuration.items()} == {
            e["key"]: (e["value"], e["readonly"]) for e in all_keys
        }


async def test_tc_019_2_retrieve_specific_configuration_key(app: App, api: Api) -> None:
    """GetConfiguration carries exactly the requested key and its reported value is recorded."""
    entry = {"key": "SupportedFeatureProfiles", "readonly": True, "value": "Core,SmartCharging"}
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        cp.answers["GetConfiguration"] = {"configurationKey": [entry]}
        request = {"key": ["SupportedFeatureProfiles"]}
        assert await operate(api, "GetConfiguration", request) == {"configurationKey": [entry]}
        assert cp.received_calls == [("GetConfiguration", request)]
        configuration = (await charger(api))["configuration"]
        recorded = configuration["SupportedFeatureProfiles"]
        assert (recorded["value"], recorded["readonly"]) == ("Core,SmartCharging", True)


async def test_tc_021_change_set_configuration(app: App, api: Api) -> None:
    """ChangeConfiguration carries the exact key and value, and the Accepted value is recorded."""
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        cp.answers["ChangeConfiguration"] = {"status": "Accepted"}
        request = {"key": "MeterValueSampleInterval", "value": "60"}
        assert await operate(api, "ChangeConfiguration", request) == {"status": "Accepted"}
        assert cp.received_calls == [("ChangeConfiguration", request)]
        configuration = (await charger(api))["configuration"]
        assert configuration["MeterValueSampleInterval"]["value"] == "60"


# --- TC_023 .. TC_031: rejections and failures --------------------------------------------


async def test_tc_023_1_authorize_invalid(app: App, api: Api) -> None:
    """An unknown idTag is answered Invalid, and StartTransaction is not needed for that."""
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        assert await authorize(cp, UNKNOWN_TAG) == "Invalid"
        await assert_no_transaction(api)


async def test_tc_023_2_authorize_expired(app: App, api: Api) -> None:
    """An idTag stored as Expired (or Accepted with a past expiry date) is answered Expired."""
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        assert await authorize(cp, EXPIRED_TAG) == "Expired"
        past = iso(datetime.now(UTC) - timedelta(days=1))
        code, _ = await api.request(
            "PUT", "/api/id-tags/PASTDUE", {"status": "Accepted", "expiryDate": past}
        )
        assert code == 201
        assert await authorize(cp, "PASTDUE") == "Expired"


async def test_tc_023_3_authorize_blocked(app: App, api: Api) -> None:
    """An idTag stored as Blocked is answered Blocked."""
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        assert await authorize(cp, BLOCKED_TAG) == "Blocked"


async def test_tc_024_start_charging_session_lock_failure(app: App, api: Api) -> None:
    """A Faulted/ConnectorLockFailure status is answered and shown on the connector."""
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        assert await authorize(cp, VALID_TAG) == "Accepted"
        assert await cp.status(1, "Preparing") == {}
        assert await cp.status(1, "Faulted", "ConnectorLockFailure") == {}
        state = await connector(api, 1)
        assert (state["status"], state["errorCode"]) == ("Faulted", "ConnectorLockFailure")
        await assert_no_transaction(api)


async def test_tc_026_remote_start_charging_session_rejected(app: App, api: Api) -> None:
    """A RemoteStartTransaction the charger Rejects is reported to the operator, starts nothing."""
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        cp.answers["RemoteStartTransaction"] = {"status": "Rejected"}
        request = {"connectorId": 1, "idTag": VALID_TAG}
        assert await operate(api, "RemoteStartTransaction", request) == {"status": "Rejected"}
        assert cp.received_calls == [("RemoteStartTransaction", request)]
        await assert_no_transaction(api)


async def test_tc_028_remote_stop_transaction_rejected(app: App, api: Api) -> None:
    """A RemoteStopTransaction with an unknown transactionId is sent as given; Rejected leaves the
    session running.
    """
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        tx_id = await charging(cp, VALID_TAG, meter_start=1000)
        unknown_id = tx_id + 1000
        cp.answers["RemoteStopTransaction"] = {"status": "Rejected"}
        response = await operate(api, "RemoteStopTransaction", {"transactionId": unknown_id})
        assert response == {"status": "Rejected"}
        assert cp.received_calls == [("RemoteStopTransaction", {"transactionId": unknown_id})]
        await assert_running(api, tx_id)


async def test_tc_030_unlock_connector_unlock_failure(app: App, api: Api) -> None:
    """UnlockConnector answered UnlockFailed is returned to the operator as is."""
    await _unlock(app, api, 1, "UnlockFailed")


async def test_tc_031_unlock_connector_unknown_connector(app: App, api: Api) -> None:
    """UnlockConnector for a connector the charger lacks is sent; NotSupported is returned."""
    await _unlock(app, api, CONNECTORS + 1, "NotSupported")


# --- TC_032 .. TC_040: power loss, offline transactions, configuration errors -------------


async def test_tc_032_1_power_failure_boot_stop_transactions(app: App, api: Api) -> None:
    """A transaction survives the charger's reboot; its PowerLoss stop afterwards is recorded with
    its energy.
    """
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        tx_id = await charging(cp, VALID_TAG, meter_start=10_000)
        conf = await cp.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": tx_id,
                "meterValue": [
                    {
                        "timestamp": now_iso(),
                        "sampledValue": [
                            {
                                "value": "10800",
                                "measurand": "Energy.Active.Import.Register",
                                "unit": "Wh",
                            }
                        ],
                    }
                ],
            },
        )
        assert conf == {}
        tx = await assert_running(api, tx_id)
        assert tx["energyWh"] == 800
        # Power cut: the TCP connection dies without a closing handshake.
        cp.ws.transport.abort()
    # Power back: the charger boots again with a transaction open.
    async with RawCharger.connect(ocpp_url(app, CP)) as cp:
        boot = await cp.boot()
        assert boot["status"] == "Accepted"
        assert await cp.status(0, "Available") == {}
        assert await cp.status(1, "Finishing") == {}
        assert await cp.status(2, "Available") == {}
        await assert_running(api, tx_id)
        conf = await stop_transaction(cp, tx_id, meter_stop=11_000, reason="PowerLoss", id_tag=None)
        assert "idTagInfo" not in conf or conf["idTagInfo"]["status"] == "Accepted"
        assert await cp.status(1, "Available") == {}
        tx = await assert_stopped(
            api, tx_id, meter_start=10_000, meter_stop=11_000, reason="PowerLoss"
        )
        assert tx["energyWh"] == 1000
        state = await connector(api, 1)
        assert (state["status"], state["transactionId"]) == ("Available", None)


async def test_tc_037_1_offline_start_transaction_valid_id_tag(app: App, api: Api) -> None:
    """A StartTransaction queued while offline, with a historical timestamp, is Accepted and dated
    as sent.
    """
    async with booted(app, CP, available=CONNECTOR_IDS):
        pass
    started = iso(datetime.now(UTC) - timedelta(hours=2))
    # Back online after a network outage: no new BootNotification.
    async with RawCharger.connect(ocpp_url(app, CP)) as cp:
        tx_id = await start_transaction(cp, VALID_TAG, meter_start=700, timestamp=started)
        assert await cp.status(1, "Charging") == {}
        tx = await assert_running(api, tx_id)
        assert (tx["idTag"], tx["meterStart"]) == (VALID_TAG, 700)
        assert same_instant(tx["startTime"], started)


async def test_tc_037_3_offline_start_transaction_invalid_id_tag(app: App, api: Api) -> None:
    """An offline start with an invalid idTag gets Invalid and still a transactionId; the
    DeAuthorized stop is recorded.
    """
    async with booted(app, CP, available=CONNECTOR_IDS):
        pass
    started = iso(datetime.now(UTC) - timedelta(minutes=30))
    async with RawCharger.connect(ocpp_url(app, CP)) as cp:
        tx_id = await start_transaction(
            cp, UNKNOWN_TAG, meter_start=0, timestamp=started, expect="Invalid"
        )
        assert await cp.status(1, "Charging") == {}
        tx = await transaction(api, tx_id)
        assert (tx["active"], tx["idTag"]) == (True, UNKNOWN_TAG)
        conf = await stop_transaction(
            cp, tx_id, meter_stop=15, reason="DeAuthorized", id_tag=UNKNOWN_TAG
        )
        assert "idTagInfo" not in conf or conf["idTagInfo"]["status"] == "Invalid"
        assert await cp.status(1, "Finishing") == {}
        tx = await assert_stopped(api, tx_id, meter_start=0, meter_stop=15, reason="DeAuthorized")
        assert same_instant(tx["startTime"], started)


async def test_tc_039_offline_transaction(app: App, api: Api) -> None:
    """A whole transaction queued offline (historical start and Local stop) is Accepted and recorded
    as it happened.
    """
    async with booted(app, CP, available=CONNECTOR_IDS):
        pass
    started = iso(datetime.now(UTC) - timedelta(hours=3))
    stopped = iso(datetime.now(UTC) - timedelta(hours=2))
    async with RawCharger.connect(ocpp_url(app, CP)) as cp:
        tx_id = await start_transaction(cp, VALID_TAG, meter_start=1234, timestamp=started)
        conf = await stop_transaction(cp, tx_id, meter_stop=9234, reason="Local", timestamp=stopped)
        assert conf.get("idTagInfo", {}).get("status", "Accepted") == "Accepted"
        tx = await assert_stopped(api, tx_id, meter_start=1234, meter_stop=9234, reason="Local")
        assert tx["idTag"] == VALID_TAG
        assert same_instant(tx["startTime"], started)
        assert same_instant(tx["stopTime"], stopped)


async def test_tc_040_1_configuration_keys_not_supported(app: App, api: Api) -> None:
    """ChangeConfiguration with a key the charger does not know is sent as given; NotSupported
    records nothing.
    """
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        cp.answers["ChangeConfiguration"] = {"status": "NotSupported"}
        request = {"key": "OcttUnknownKey", "value": "1"}
        assert await operate(api, "ChangeConfiguration", request) == {"status": "NotSupported"}
        assert cp.received_calls == [("ChangeConfiguration", request)]
        assert "OcttUnknownKey" not in (await charger(api))["configuration"]


async def test_tc_040_2_configuration_keys_invalid_value(app: App, api: Api) -> None:
    """ChangeConfiguration with value "-1" is sent as given; Rejected keeps the recorded value."""
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        cp.answers["GetConfiguration"] = {
            "configurationKey": [
                {"key": "MeterValueSampleInterval", "readonly": False, "value": "60"}
            ]
        }
        await operate(api, "GetConfiguration", {"key": ["MeterValueSampleInterval"]})
        cp.answers["ChangeConfiguration"] = {"status": "Rejected"}
        request = {"key": "MeterValueSampleInterval", "value": "-1"}
        assert await operate(api, "ChangeConfiguration", request) == {"status": "Rejected"}
        assert cp.received_calls[-1] == ("ChangeConfiguration", request)
        configuration = (await charger(api))["configuration"]
        assert configuration["MeterValueSampleInterval"]["value"] == "60"


async def test_tc_064_data_transfer_to_a_central_system(app: App, api: Api) -> None:
    """A DataTransfer with a vendorId the CSMS does not know is answered UnknownVendorId without
    data.
    """
    async with booted(app, CP, available=CONNECTOR_IDS) as cp:
        conf = await cp.call(
            "DataTransfer",
            {"vendorId": "org.octt.unknown", "messageId": "TestMessage", "data": "payload"},
        )
        assert conf["status"] in ("Rejected", "UnknownMessageId", "UnknownVendorId")
        assert conf["status"] == "UnknownVendorId"
        assert "data" not in conf
