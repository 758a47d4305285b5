"""ExtendedTriggerMessage through the pipeline: every requestedMessage, each answer
(Accepted, Rejected, NotImplemented) recorded, and the triggered message served."""

from __future__ import annotations

import asyncio

import pytest
from ocpp.v16 import call

from edge.app import App
from tests.conftest import Api
from tests.security.certs_charger import TIMEOUT, sec_charger

CP = "SEC-TRIG"
MESSAGES = [
    "BootNotification",
    "LogStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "SignChargePointCertificate",
    "StatusNotification",
]


@pytest.mark.parametrize("answer", ["Accepted", "Rejected", "NotImplemented"])
async def test_every_requested_message_and_answer_is_recorded(
    app: App, api: Api, answer: str
) -> None:
    """Each requestedMessage is sent as given (connectorId when given) and the charger's
    answer kept per message; BootNotification of an Accepted charger needs force (1.6
    errata 3.40), like TriggerMessage's."""
    async with sec_charger(app, CP) as cp:
        cp.answers["ExtendedTriggerMessage"] = answer
        for message in MESSAGES:
            payload: dict[str, object] = {"requestedMessage": message}
            if message in ("MeterValues", "StatusNotification"):
                payload["connectorId"] = 1
            force = "?force=true" if message == "BootNotification" else ""
            code, body = await api.request(
                "POST", f"/api/chargers/{CP}/ocpp/ExtendedTriggerMessage{force}", payload
            )
            assert (code, body) == (200, {"response": {"status": answer}}), message
        code, body = await api.operation(
            CP, "ExtendedTriggerMessage", {"requestedMessage": "BootNotification"}
        )
        assert code == 400 and body["error"] == "invalid_request"
        assert [r["requestedMessage"] for r in cp.requests["ExtendedTriggerMessage"]] == MESSAGES
    triggers = await api.get(f"/api/chargers/{CP}/triggers")
    assert set(triggers) == set(MESSAGES)
    assert {t["status"] for t in triggers.values()} == {answer}
    assert {t["action"] for t in triggers.values()} == {"ExtendedTriggerMessage"}
    assert triggers["StatusNotification"]["connectorId"] == 1


async def test_triggered_sign_certificate_is_served_before_the_boot(app: App, api: Api) -> None:
    """TC_074/077's first steps: ExtendedTriggerMessage(SignChargePointCertificate) Accepted
    lets the charger's SignCertificate through even before it is accepted, as any
    triggered message; it is answered (not refused with a CALLERROR)."""
    async with sec_charger(app, CP, boot=False) as cp:
        code, body = await api.operation(
            CP, "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}
        )
        assert (code, body) == (200, {"response": {"status": "Accepted"}})
        async with asyncio.timeout(TIMEOUT):
            result = await cp.call(
                call.SignCertificate(csr="-----BEGIN CERTIFICATE REQUEST-----\n..."),
                suppress=False,
            )
        assert result.status in ("Accepted", "Rejected")
