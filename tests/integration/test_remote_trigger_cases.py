"""The Remote Trigger CSMS test cases (certification reference §2.5) and the state kept.

The operator sends TriggerMessage through `POST /api/chargers/{id}/ocpp/TriggerMessage`;
the scripted charger answers it, then sends the requested message as the test tool
does. Each test checks the triggered message is served and stored, and the answer is
recorded per requested message (`GET /api/chargers/{id}/triggers`).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from edge.app import App
from edge.sim.charger import RawCharger
from tests import helpers
from tests.conftest import Api, ocpp_url
from tests.helpers import Json, now_iso

CP = "RT-CP"
NUMBER_OF_CONNECTORS = 2


def booted(app: App) -> AbstractAsyncContextManager[RawCharger]:
    """The charger of these cases, with NUMBER_OF_CONNECTORS connectors; accepts TriggerMessage."""
    return helpers.booted(
        app,
        CP,
        available=range(NUMBER_OF_CONNECTORS + 1),
        answers={"TriggerMessage": {"status": "Accepted"}},
    )


async def trigger(api: Api, cp: RawCharger, message: str, connector_id: int | None = None) -> Json:
    payload: Json = {"requestedMessage": message}
    if connector_id is not None:
        payload["connectorId"] = connector_id
    code, body = await api.operation(CP, "TriggerMessage", payload)
    assert code == 200, body
    assert cp.received_calls[-1] == ("TriggerMessage", payload)
    response: Json = body["response"]
    return response


async def triggers(api: Api) -> Json:
    data: Json = await api.get(f"/api/chargers/{CP}/triggers")
    return data


async def test_tc_054_trigger_message(app: App, api: Api) -> None:
    """TC_054: each requested message is sent exactly, the triggered message answered and stored."""
    async with booted(app) as cp:
        assert await trigger(api, cp, "MeterValues", 1) == {"status": "Accepted"}
        meter = {
            "connectorId": 1,
            "meterValue": [
                {
                    "timestamp": now_iso(),
                    "sampledValue": [
                        {"value": "1234", "context": "Trigger",
                         "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
                    ],
                }
            ],
        }  # fmt: skip
        assert await cp.call("MeterValues", meter) == {}
        [sample] = app.services.journal.connector_samples(CP, 1)
        assert sample.register_wh == 1234

        assert await trigger(api, cp, "Heartbeat") == {"status": "Accepted"}
        assert "currentTime" in await cp.call("Heartbeat", {})

        assert await trigger(api, cp, "StatusNotification", 1) == {"status": "Accepted"}
        assert await cp.status(1, "Available") == {}

        assert await trigger(api, cp, "DiagnosticsStatusNotification") == {"status": "Accepted"}
        assert await cp.call("DiagnosticsStatusNotification", {"status": "Idle"}) == {}

        assert await trigger(api, cp, "FirmwareStatusNotification") == {"status": "Accepted"}
        assert await cp.call("FirmwareStatusNotification", {"status": "Idle"}) == {}

        charger = await api.get(f"/api/chargers/{CP}")
        assert charger["diagnosticsStatus"]["status"] == "Idle"
        assert charger["firmwareStatus"]["status"] == "Idle"
        recorded = await triggers(api)
        assert set(recorded) == {
            "MeterValues", "Heartbeat", "StatusNotification",
            "DiagnosticsStatusNotification", "FirmwareStatusNotification",
        }  # fmt: skip
        assert recorded["MeterValues"]["connectorId"] == 1
        assert recorded["Heartbeat"]["connectorId"] is None
        assert all(r["status"] == "Accepted" for r in recorded.values())
        assert all(r["action"] == "TriggerMessage" for r in recorded.values())


async def test_tc_054_optional_connector_and_not_implemented(app: App, api: Api) -> None:
    """Every message may go with or without connectorId; NotImplemented is recorded as such."""
    async with booted(app) as cp:
        for message in ("Heartbeat", "MeterValues", "StatusNotification",
                        "DiagnosticsStatusNotification", "FirmwareStatusNotification"):  # fmt: skip
            await trigger(api, cp, message)
            await trigger(api, cp, message, 2)
        assert await cp.status(0, "Available") == {}
        cp.answers["TriggerMessage"] = {"status": "NotImplemented"}
        assert await trigger(api, cp, "FirmwareStatusNotification") == {"status": "NotImplemented"}
        recorded = await triggers(api)
        assert recorded["FirmwareStatusNotification"]["status"] == "NotImplemented"
        assert recorded["StatusNotification"]["connectorId"] == 2


async def test_tc_055_trigger_message_rejected(app: App, api: Api) -> None:
    """TC_055: MeterValues for connector NumberOfConnectors+1 is sent unchecked; Rejected kept."""
    async with booted(app) as cp:
        cp.answers["TriggerMessage"] = {"status": "Rejected"}
        response = await trigger(api, cp, "MeterValues", NUMBER_OF_CONNECTORS + 1)
        assert response == {"status": "Rejected"}
        recorded = (await triggers(api))["MeterValues"]
        assert (recorded["status"], recorded["connectorId"]) == ("Rejected", 3)


async def test_boot_notification_trigger_refused_after_accepted(app: App, api: Api) -> None:
    """TriggerMessage(BootNotification) after the charger is Accepted is refused unless forced."""
    async with booted(app) as cp:
        payload = {"requestedMessage": "BootNotification"}
        code, body = await api.operation(CP, "TriggerMessage", payload)
        assert code == 400 and body["detail"][0]["field"] == "requestedMessage"
        assert all(action != "TriggerMessage" for action, _ in cp.received_calls)
        code, body = await api.request(
            "POST", f"/api/chargers/{CP}/ocpp/TriggerMessage?force=true", payload
        )
        assert (code, body) == (200, {"response": {"status": "Accepted"}})
        assert (await cp.boot())["status"] == "Accepted"
        assert (await triggers(api))["BootNotification"]["status"] == "Accepted"


async def test_pending_charger_may_send_triggered_message(app: App, api: Api) -> None:
    """A Pending charger may boot when triggered and send a triggered StatusNotification."""
    code, _ = await api.request("PUT", f"/api/chargers/{CP}", {"registration": "Pending"})
    assert code == 201
    async with RawCharger.connect(ocpp_url(app, CP)) as cp:
        assert (await cp.boot())["status"] == "Pending"
        cp.answers["TriggerMessage"] = {"status": "Accepted"}
        assert await trigger(api, cp, "BootNotification") == {"status": "Accepted"}
        assert (await cp.boot())["status"] == "Pending"
        assert await trigger(api, cp, "StatusNotification", 1) == {"status": "Accepted"}
        assert await cp.status(1, "Available") == {}
