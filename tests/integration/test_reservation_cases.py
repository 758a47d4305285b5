"""The Reservation CSMS test cases (certification reference §2.4), and the reservations kept.

The operator reserves through `POST /api/chargers/{id}/reservations` (or the raw
`/ocpp/ReserveNow`); the scripted charger answers as the test tool does. Besides
what the tool checks in the request, each test checks what the CSMS then believes
(`GET /api/reservations`). The App runs on a clock the tests move, so expiry
needs no waiting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path

import pytest

from edge.app import App
from edge.config import Config
from edge.sim.charger import RawCharger
from tests import helpers
from tests.conftest import Api, make_config, running
from tests.helpers import Clock, Json, charging, iso, now_iso

CP = "RS-CP"
TAG = "RSTAG01"
MEMBER = "RSTAG02"
GROUP = "RSGROUP"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def app(config: Config, clock: Clock) -> AsyncIterator[App]:
    async with App(config, clock=clock) as running:
        yield running


@pytest.fixture(autouse=True)
async def seed(api: Api) -> None:
    for tag in (TAG, MEMBER):
        code, _ = await api.request(
            "PUT", f"/api/id-tags/{tag}", {"status": "Accepted", "parentIdTag": GROUP}
        )
        assert code == 201


def booted(app: App, charger_id: str = CP) -> AbstractAsyncContextManager[RawCharger]:
    """A charger with two connectors; it accepts ReserveNow and CancelReservation."""
    return helpers.booted(
        app,
        charger_id,
        available=(0, 1, 2),
        answers={"ReserveNow": {"status": "Accepted"}, "CancelReservation": {"status": "Accepted"}},
    )


async def reserve(api: Api, body: Json, charger_id: str = CP) -> tuple[int, Json]:
    code, data = await api.request("POST", f"/api/chargers/{charger_id}/reservations", body)
    return code, data


async def listed(api: Api, query: str = "") -> list[Json]:
    data: list[Json] = await api.get(f"/api/reservations{query}")
    return data


async def test_tc_046_reservation_used_by_transaction(app: App, api: Api) -> None:
    """TC_046: ReserveNow carries the configured connector and idTag; the transaction carrying
    its reservationId marks it Used with the transaction id."""
    async with booted(app) as cp:
        code, body = await reserve(api, {"connectorId": 1, "idTag": TAG, "expiresIn": 600})
        assert code == 200, body
        assert body["response"] == {"status": "Accepted"}
        sent = await cp.wait_for_call("ReserveNow")
        reservation_id = sent["reservationId"]
        assert sent["connectorId"] == 1 and sent["idTag"] == TAG
        assert sent["parentIdTag"] == GROUP  # filled from the id-tag list
        assert body["reservation"]["status"] == "Active"
        assert body["reservation"]["expiryDate"] == sent["expiryDate"]
        await cp.status(1, "Reserved")
        transaction_id = await charging(cp, TAG, reservation_id=reservation_id)
        [entry] = await listed(api)
        assert entry["status"] == "Used"
        assert entry["transactionId"] == transaction_id
        assert entry["endReason"] == "TransactionStarted" and entry["endedAt"]
        assert set(entry) == {
            "reservationId", "chargerId", "connectorId", "idTag", "parentIdTag", "expiryDate",
            "status", "transactionId", "createdAt", "endedAt", "endReason",
        }  # fmt: skip


async def test_tc_047_reservation_expires(app: App, api: Api, clock: Clock) -> None:
    """TC_047: expiryDate is now + the configured offset; unused past it, the reservation is
    Expired (lazily on read, and on the StatusNotification Available)."""
    expiry = iso(clock.now + timedelta(seconds=30))
    async with booted(app) as cp:
        code, _ = await reserve(api, {"connectorId": 1, "idTag": TAG, "expiryDate": expiry})
        assert code == 200
        assert (await cp.wait_for_call("ReserveNow"))["expiryDate"] == expiry
        await cp.status(1, "Reserved")
        assert [e["status"] for e in await listed(api)] == ["Active"]
        clock.advance(31)
        await cp.status(1, "Available")
        charger = await api.get(f"/api/chargers/{CP}")
        [stored] = charger["reservations"]
        assert stored["status"] == "Expired"
        assert stored["endReason"] == "Expired"
        assert await listed(api, "?active=true") == []


async def test_expiry_is_evaluated_lazily_on_read(app: App, api: Api, clock: Clock) -> None:
    """Without any charger message, a reservation read after its expiryDate is Expired."""
    async with booted(app):
        code, _ = await reserve(api, {"connectorId": 2, "idTag": TAG, "expiresIn": 10})
        assert code == 200
        clock.advance(11)
        assert [e["status"] for e in await listed(api)] == ["Expired"]


@pytest.mark.parametrize("answer", ["Faulted", "Occupied", "Unavailable", "Rejected"])
async def test_tc_048_reservation_refused(app: App, api: Api, answer: str) -> None:
    """TC_048_1..4: the charger's Faulted/Occupied/Unavailable/Rejected is returned and nothing is
    recorded (048_2 after Preparing, 048_3 after ChangeAvailability Inoperative)."""
    async with booted(app) as cp:
        if answer == "Occupied":
            await cp.status(1, "Preparing")
        if answer == "Unavailable":
            cp.answers["ChangeAvailability"] = {"status": "Accepted"}
            code, body = await api.operation(
                CP, "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}
            )
            assert (code, body) == (200, {"response": {"status": "Accepted"}})
            await cp.status(1, "Unavailable")
        cp.answers["ReserveNow"] = {"status": answer}
        code, body = await reserve(api, {"connectorId": 1, "idTag": TAG, "expiresIn": 600})
        assert (code, body) == (200, {"response": {"status": answer}, "reservation": None})
        sent = await cp.wait_for_call("ReserveNow")
        assert sent["connectorId"] == 1 and sent["idTag"] == TAG
        assert await listed(api) == []


async def test_tc_049_reserve_the_charge_point(app: App, api: Api) -> None:
    """TC_049: ReserveNow with connectorId 0; a transaction carrying its id on any connector uses it
    (the charger keeps one connector free)."""
    async with booted(app) as cp:
        code, body = await reserve(api, {"connectorId": 0, "idTag": TAG, "expiresIn": 600})
        assert code == 200 and body["response"]["status"] == "Accepted"
        sent = await cp.wait_for_call("ReserveNow")
        assert sent["connectorId"] == 0 and "expiryDate" in sent and "reservationId" in sent
        await cp.status(1, "Reserved")
        transaction_id = await charging(
            cp, TAG, connector_id=2, reservation_id=sent["reservationId"]
        )
        [entry] = await listed(api)
        assert (entry["connectorId"], entry["status"]) == (0, "Used")
        assert entry["transactionId"] == transaction_id


async def test_tc_051_cancel_reservation(app: App, api: Api) -> None:
    """TC_051: CancelReservation carries the reservation's id; Accepted marks it Cancelled."""
    async with booted(app) as cp:
        _, body = await reserve(api, {"connectorId": 1, "idTag": TAG, "expiresIn": 600})
        reservation_id = body["reservation"]["reservationId"]
        await cp.status(1, "Reserved")
        code, body = await api.request(
            "DELETE", f"/api/chargers/{CP}/reservations/{reservation_id}"
        )
        assert code == 200 and body["response"] == {"status": "Accepted"}
        assert await cp.wait_for_call("CancelReservation") == {"reservationId": reservation_id}
        assert body["reservation"]["status"] == "Cancelled"
        assert body["reservation"]["endReason"] == "CancelReservation"
        await cp.status(1, "Available")
        assert [e["status"] for e in await listed(api)] == ["Cancelled"]


async def test_tc_052_cancel_unknown_reservation(app: App, api: Api) -> None:
    """TC_052: a CancelReservation with an unknown id is sent as given; Rejected changes nothing."""
    async with booted(app) as cp:
        _, body = await reserve(api, {"connectorId": 1, "idTag": TAG, "expiresIn": 600})
        reservation_id = body["reservation"]["reservationId"]
        await cp.status(1, "Reserved")
        cp.answers["CancelReservation"] = {"status": "Rejected"}
        unknown = reservation_id + 1000
        code, body = await api.operation(CP, "CancelReservation", {"reservationId": unknown})
        assert (code, body) == (200, {"response": {"status": "Rejected"}})
        assert await cp.wait_for_call("CancelReservation") == {"reservationId": unknown}
        assert [e["status"] for e in await listed(api)] == ["Active"]


async def test_tc_053_reserved_connector_used_by_group_member(app: App, api: Api) -> None:
    """TC_053: ReserveNow carries parentIdTag; another tag of the group is Authorized with the
    same parentIdTag, and may stop the transaction."""
    async with booted(app) as cp:
        code, _ = await reserve(
            api, {"connectorId": 1, "idTag": TAG, "parentIdTag": GROUP, "expiresIn": 600}
        )
        assert code == 200
        sent = await cp.wait_for_call("ReserveNow")
        assert sent["parentIdTag"] == GROUP
        await cp.status(1, "Reserved")
        transaction_id = await charging(cp, TAG, reservation_id=sent["reservationId"])
        info = (await cp.call("Authorize", {"idTag": MEMBER}))["idTagInfo"]
        assert info == {"status": "Accepted", "parentIdTag": GROUP}
        stop = await cp.call(
            "StopTransaction",
            {
                "transactionId": transaction_id,
                "idTag": MEMBER,
                "meterStop": 100,
                "timestamp": now_iso(),
            },
        )
        assert stop["idTagInfo"] == {"status": "Accepted", "parentIdTag": GROUP}
        await cp.status(1, "Finishing")
        [entry] = await listed(api)
        assert entry["status"] == "Used" and entry["parentIdTag"] == GROUP


async def test_same_reservation_id_replaces(app: App, api: Api) -> None:
    """A ReserveNow with an active reservation's id replaces it (1.6 §5.13)."""
    async with booted(app):
        await reserve(api, {"connectorId": 1, "idTag": TAG, "expiresIn": 600, "reservationId": 77})
        code, _ = await reserve(
            api, {"connectorId": 2, "idTag": MEMBER, "expiresIn": 900, "reservationId": 77}
        )
        assert code == 200
        [entry] = await listed(api)
        assert (entry["reservationId"], entry["connectorId"], entry["idTag"]) == (77, 2, MEMBER)
        assert entry["status"] == "Active"


async def test_faulted_or_unavailable_connector_cancels(app: App, api: Api) -> None:
    """A reserved connector going Faulted cancels its reservation; connector 0 going Unavailable
    cancels a whole-charger reservation; other connectors' reservations stay."""
    async with booted(app) as cp:
        await reserve(api, {"connectorId": 1, "idTag": TAG, "expiresIn": 600, "reservationId": 1})
        await reserve(api, {"connectorId": 2, "idTag": TAG, "expiresIn": 600, "reservationId": 2})
        await cp.status(1, "Faulted", "GroundFailure")
        by_id = {e["reservationId"]: e for e in await listed(api)}
        assert (by_id[1]["status"], by_id[1]["endReason"]) == ("Cancelled", "Faulted")
        assert by_id[2]["status"] == "Active"
        await reserve(api, {"connectorId": 0, "idTag": TAG, "expiresIn": 600, "reservationId": 3})
        await cp.status(0, "Unavailable")
        by_id = {e["reservationId"]: e for e in await listed(api)}
        assert (by_id[3]["status"], by_id[3]["endReason"]) == ("Cancelled", "Unavailable")


async def test_list_filters_and_order(app: App, api: Api, clock: Clock) -> None:
    """GET /api/reservations lists newest first and filters by chargerId and active."""
    async with booted(app, "RS-A"), booted(app, "RS-B"):
        await reserve(api, {"connectorId": 1, "idTag": TAG, "expiresIn": 600}, "RS-A")
        clock.advance(1)
        await reserve(api, {"connectorId": 1, "idTag": TAG, "expiresIn": 600}, "RS-B")
        clock.advance(1)
        _, body = await reserve(api, {"connectorId": 2, "idTag": TAG, "expiresIn": 600}, "RS-A")
        assert body["reservation"]["reservationId"] == 3
        await api.request("DELETE", "/api/chargers/RS-A/reservations/3")
        everything = await listed(api)
        assert [(e["chargerId"], e["reservationId"]) for e in everything] == [
            ("RS-A", 3), ("RS-B", 2), ("RS-A", 1),
        ]  # fmt: skip
        assert [e["reservationId"] for e in await listed(api, "?chargerId=RS-A")] == [3, 1]
        assert [e["reservationId"] for e in await listed(api, "?active=true")] == [2, 1]
        assert [e["reservationId"] for e in await listed(api, "?active=false")] == [3]
        mine = await api.get("/api/chargers/RS-B/reservations")
        assert [e["reservationId"] for e in mine] == [2]


async def test_ids_unique_across_chargers_and_restarts(tmp_path: Path) -> None:
    """Allocated ids increase across chargers and stay unique after a CSMS restart."""
    config = make_config(tmp_path / "data")
    ids: list[int] = []
    for _ in range(2):
        async with running(config) as (app, api):
            await api.request("PUT", f"/api/id-tags/{TAG}", {"status": "Accepted"})
            async with booted(app, "RS-A") as a, booted(app, "RS-B"):
                for charger_id in ("RS-A", "RS-B"):
                    _, body = await reserve(
                        api, {"connectorId": 1, "idTag": TAG, "expiresIn": 600}, charger_id
                    )
                    ids.append(body["reservation"]["reservationId"])
                # A refused reservation's id is not handed out again either.
                a.answers["ReserveNow"] = {"status": "Rejected"}
                _, body = await reserve(
                    api, {"connectorId": 2, "idTag": TAG, "expiresIn": 600}, "RS-A"
                )
                assert body["reservation"] is None
    assert ids == [1, 2, 4, 5]


async def test_past_expiry_and_unsupported_connector_zero_are_sent_with_warnings(
    app: App, api: Api, clock: Clock
) -> None:
    """An expiry in the past and connectorId 0 on a charger reporting
    ReserveConnectorZeroSupported=false are legal OCPP: they are sent, and the answer
    carries a warning for each instead of a refusal."""
    async with booted(app) as cp:
        past = iso(clock.now - timedelta(seconds=5))
        cp.answers["ReserveNow"] = {"status": "Rejected"}
        code, body = await reserve(api, {"connectorId": 1, "idTag": TAG, "expiryDate": past})
        assert code == 200 and body["response"] == {"status": "Rejected"}
        assert [w["field"] for w in body["warnings"]] == ["expiryDate"]
        assert all(w["severity"] == "warning" for w in body["warnings"])
        raw = {"connectorId": 1, "idTag": TAG, "expiryDate": past, "reservationId": 5}
        code, body = await api.operation(CP, "ReserveNow", raw)
        assert code == 200 and [w["field"] for w in body["warnings"]] == ["expiryDate"]
        cp.answers["GetConfiguration"] = {
            "configurationKey": [
                {"key": "ReserveConnectorZeroSupported", "readonly": True, "value": "false"}
            ]
        }
        await api.operation(CP, "GetConfiguration", {"key": ["ReserveConnectorZeroSupported"]})
        code, body = await reserve(api, {"connectorId": 0, "idTag": TAG, "expiresIn": 60})
        assert code == 200 and [w["field"] for w in body["warnings"]] == ["connectorId"]
        assert len([c for c, _ in cp.received_calls if c == "ReserveNow"]) == 3
        code, body = await api.request(
            "POST", f"/api/chargers/{CP}/ocpp/ReserveNow?force=true", raw
        )
        assert (code, body) == (200, {"response": {"status": "Rejected"}})


async def test_raw_reserve_now_is_recorded(app: App, api: Api, clock: Clock) -> None:
    """A ReserveNow sent through the raw ocpp route is recorded once Accepted, and the next
    allocated id is above it."""
    async with booted(app):
        expiry = iso(clock.now + timedelta(minutes=5))
        payload = {"connectorId": 2, "idTag": TAG, "expiryDate": expiry, "reservationId": 41}
        code, body = await api.operation(CP, "ReserveNow", payload)
        assert (code, body) == (200, {"response": {"status": "Accepted"}})
        [entry] = await listed(api)
        assert entry == {
            "reservationId": 41, "chargerId": CP, "connectorId": 2, "idTag": TAG,
            "parentIdTag": None, "expiryDate": expiry, "status": "Active",
            "transactionId": None, "createdAt": iso(clock.now), "endedAt": None,
            "endReason": None,
        }  # fmt: skip
        _, body = await reserve(api, {"connectorId": 1, "idTag": TAG, "expiresIn": 60})
        assert body["reservation"]["reservationId"] == 42
