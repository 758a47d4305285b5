"""Cloud commands the edge cannot just pass on: reservations under two numberings, and a
cloud's ChargePointMaxProfile on a site whose controller owns that purpose.

- The cloud numbers its reservations, and so does the edge's operator API: toward the
  charger every reservation carries an edge id, the cloud's id is kept beside it, and the
  cloud sees its own id in CancelReservation and in the StartTransaction that uses it.
- With a grid meter, a cloud ChargePointMaxProfile becomes a cap inside the site's
  allocation (`edge.site.caps`): the charger's lease carries the lower of the cloud's
  limit and the site's share, the fuse still holds, and the site's own profiles are never
  replaced or cleared by the cloud.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.config import UpstreamConfig
from edge.sim.charger import RawCharger
from profiles.lease import LEASE_PROFILE_ID, SAFE_PROFILE_ID
from tests.conftest import TIME_SCALE, ocpp_url
from tests.helpers import eventually, now_iso
from tests.integration.test_site_balancing import charger_entry, holds, rig
from tests.upstream.cloud import Cloud
from tests.upstream.raw_cloud import RawCloud, Received, Reply
from tests.upstream.test_cloud_garbage import edge as raw_edge
from tests.upstream.test_upstream import WAIT, Sent, accept_tag, booted, edge, synced

TEST_TIMEOUT = 40 * TIME_SCALE

Payload = dict[str, Any]


def expiry(minutes: int = 30) -> str:
    moment = datetime.now(UTC) + timedelta(minutes=minutes)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def reserve_calls(cp: RawCharger, action: str = "ReserveNow") -> list[Payload]:
    return [payload for name, payload in cp.received_calls if name == action]


# (action, the cloud's payload, the charger's answer): one command of every family the
# cloud may send, each relayed as it is (no id to map) and answered with the charger's answer.
RELAYED = [
    ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "120"}, {"status": "Accepted"}),
    ("GetConfiguration", {"key": ["HeartbeatInterval"]},
     {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "120"}]}),
    ("ClearCache", {}, {"status": "Rejected"}),
    ("Reset", {"type": "Soft"}, {"status": "Accepted"}),
    ("UnlockConnector", {"connectorId": 1}, {"status": "Unlocked"}),
    ("RemoteStartTransaction", {"connectorId": 1, "idTag": "TAG1"}, {"status": "Accepted"}),
    ("DataTransfer", {"vendorId": "com.example", "messageId": "m"},
     {"status": "Accepted", "data": "x"}),
    ("UpdateFirmware", {"location": "http://example.com/fw.bin", "retrieveDate": expiry(0)}, {}),
    ("GetDiagnostics", {"location": "ftp://example.com/"}, {"fileName": "diag.zip"}),
    ("SendLocalList", {"listVersion": 3, "updateType": "Full", "localAuthorizationList": []},
     {"status": "Accepted"}),
    ("GetLocalListVersion", {}, {"listVersion": 2}),
    ("GetCompositeSchedule", {"connectorId": 1, "duration": 60}, {"status": "Rejected"}),
    ("TriggerMessage", {"requestedMessage": "Heartbeat"}, {"status": "Accepted"}),
]  # fmt: skip


@pytest.mark.parametrize(("action", "payload", "answer"), RELAYED, ids=[r[0] for r in RELAYED])
async def test_every_command_family_reaches_the_charger_and_the_cloud_gets_its_answer(
    tmp_path: Path, cloud: Cloud, action: str, payload: Payload, answer: Payload
) -> None:
    """Core, Firmware Management, Local Authorization List Management, Smart Charging and
    Remote Trigger commands from the cloud reach the charger as sent, through the same
    pipeline as the operator's (audited with origin cloud), and the cloud gets the
    charger's own answer."""
    async with (
        asyncio.timeout(TEST_TIMEOUT),
        edge(tmp_path, cloud) as (app, api),
        RawCharger.connect(ocpp_url(app, "FAM1")) as cp,
    ):
        cp.answers[action] = answer
        sent = Sent(cp)
        await booted(sent)
        await synced(cloud, "FAM1", sent.last_status(1))
        frame = await cloud.call("FAM1", action, payload)
        assert frame[0] == 3 and frame[2] == answer, frame
        assert (action, payload) in cp.received_calls

        async def audited() -> list[tuple[str, str]]:
            events = await api.get("/api/chargers/FAM1/events")
            return [
                (e["data"]["origin"], e["data"]["outcome"])
                for e in events
                if e.get("kind") == "Operation" and e["data"].get("action") == action
            ]

        assert await eventually(audited) == [("cloud", "Result")]


async def test_a_cloud_tx_profile_names_the_clouds_transaction_and_reaches_the_edges(
    tmp_path: Path, cloud: Cloud
) -> None:
    """A TxProfile from the cloud names the cloud's transaction id; the charger gets the
    edge's. One naming a transaction the edge does not know is Rejected, not sent."""
    async with asyncio.timeout(TEST_TIMEOUT), edge(tmp_path, cloud) as (app, api):
        await accept_tag(api, "TAG1")
        async with RawCharger.connect(ocpp_url(app, "TXP1")) as cp:
            cp.answers["SetChargingProfile"] = {"status": "Accepted"}
            sent = Sent(cp)
            await booted(sent)
            start = {"connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": now_iso()}
            edge_tx = (await sent.send("StartTransaction", start))["transactionId"]
            started = await cloud.wait_for(
                "TXP1", "StartTransaction", lambda c: c.accepted, timeout=WAIT
            )
            assert started[-1].answer is not None
            cloud_tx = started[-1].answer[2]["transactionId"]
            profile = {
                "chargingProfileId": 11,
                "transactionId": cloud_tx,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxProfile",
                "chargingProfileKind": "Relative",
                "chargingSchedule": {
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.0}],
                },
            }
            request = {"connectorId": 1, "csChargingProfiles": profile}
            frame = await cloud.call("TXP1", "SetChargingProfile", request)
            assert frame[2] == {"status": "Accepted"}, frame
            relayed = [p for a, p in cp.received_calls if a == "SetChargingProfile"]
            assert relayed[-1]["csChargingProfiles"]["transactionId"] == edge_tx
            unknown = {**request, "csChargingProfiles": {**profile, "transactionId": 987654}}
            frame = await cloud.call("TXP1", "SetChargingProfile", unknown)
            assert frame[2] == {"status": "Rejected"}, frame
            assert len([a for a, _ in cp.received_calls if a == "SetChargingProfile"]) == 1


async def test_cloud_reservations_keep_the_clouds_ids_and_never_collide_with_the_edges(
    tmp_path: Path, cloud: Cloud
) -> None:
    """A cloud reservation goes to the charger under an edge id (the operator's next one
    differs); the cloud's ReserveNow with the same id replaces it under the same edge id;
    CancelReservation of an id the cloud never reserved is Rejected without reaching the
    charger; the StartTransaction that uses it reaches the cloud with the cloud's id, and
    one using the operator's reservation reaches it without a reservationId."""
    async with asyncio.timeout(TEST_TIMEOUT), edge(tmp_path, cloud) as (app, api):
        await accept_tag(api, "TAG1")
        async with RawCharger.connect(ocpp_url(app, "RES1")) as cp:
            cp.answers.update({"ReserveNow": {"status": "Accepted"}})
            cp.answers.update({"CancelReservation": {"status": "Accepted"}})
            sent = Sent(cp)
            await booted(sent, connectors=(0, 1, 2))
            await synced(cloud, "RES1", sent.last_status(2))

            reserve = {"connectorId": 1, "expiryDate": expiry(), "idTag": "TAG1"}
            frame = await cloud.call("RES1", "ReserveNow", {**reserve, "reservationId": 7})
            assert frame[0] == 3 and frame[2] == {"status": "Accepted"}, frame
            edge_id = reserve_calls(cp)[-1]["reservationId"]
            assert reserve_calls(cp)[-1] == {**reserve, "reservationId": edge_id}

            # The operator's reservation on the other connector gets an id of its own.
            status, body = await api.request(
                "POST",
                "/api/chargers/RES1/reservations",
                {"connectorId": 2, "idTag": "TAG1", "expiresIn": 1800},
            )
            assert status == 200, body
            operator_id = reserve_calls(cp)[-1]["reservationId"]
            assert operator_id != edge_id

            # The cloud replaces its reservation: the same edge id again.
            frame = await cloud.call("RES1", "ReserveNow", {**reserve, "reservationId": 7})
            assert frame[2] == {"status": "Accepted"}, frame
            assert reserve_calls(cp)[-1]["reservationId"] == edge_id

            # An id the cloud never reserved here (the operator's included) is not known.
            for unknown in (99, operator_id):
                frame = await cloud.call("RES1", "CancelReservation", {"reservationId": unknown})
                assert frame[0] == 3 and frame[2] == {"status": "Rejected"}, frame
            assert reserve_calls(cp, "CancelReservation") == []

            for connector_id, reservation_id in ((1, edge_id), (2, operator_id)):
                await sent.send(
                    "StartTransaction",
                    {
                        "connectorId": connector_id,
                        "idTag": "TAG1",
                        "meterStart": 0,
                        "timestamp": now_iso(),
                        "reservationId": reservation_id,
                    },
                )
            starts = await cloud.wait_for("RES1", "StartTransaction", count=2, timeout=WAIT)
            by_connector = {c.payload["connectorId"]: c.payload for c in starts}
            assert by_connector[1]["reservationId"] == 7
            assert "reservationId" not in by_connector[2]

            # A new cloud reservation, cancelled by the cloud: the charger gets its edge id.
            frame = await cloud.call("RES1", "ReserveNow", {**reserve, "reservationId": 8})
            assert frame[2] == {"status": "Accepted"}, frame
            second = reserve_calls(cp)[-1]["reservationId"]
            assert second not in (edge_id, operator_id)
            frame = await cloud.call("RES1", "CancelReservation", {"reservationId": 8})
            assert frame[2] == {"status": "Accepted"}, frame
            assert reserve_calls(cp, "CancelReservation") == [{"reservationId": second}]


def cloud_max_profile(profile_id: int, stack_level: int, limit: float, unit: str = "A") -> Payload:
    return {
        "chargingProfileId": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": "ChargePointMaxProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": unit,
            "startSchedule": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
        },
    }


async def test_a_cloud_charge_point_max_profile_is_a_cap_inside_the_site_allocation(
    tmp_path: Path, cloud: Cloud
) -> None:
    """3x32 A site, one EV alone (lease 29 A). The cloud's ChargePointMaxProfile of 10 A
    is Accepted, never installed on the charger, and the lease goes to 10 A; one at a
    higher stack level in W (4140 W on 3 phases at 230 V: 6 A) takes over; a
    ClearChargingProfile of the 10 A one leaves the 6 A; clearing by purpose removes the
    rest and the EV gets its share back. The site's profiles stay installed throughout."""
    upstream = UpstreamConfig(url=cloud.url)
    async with (
        asyncio.timeout(TEST_TIMEOUT),
        rig(tmp_path, fuse=32.0, base=(2.0, 2.0, 2.0), upstream=upstream) as r,
    ):
        sim = await r.ev("CAP1")

        def lease(state: Payload) -> float:
            value: float = charger_entry(state, "CAP1")["leaseA"] or 0.0
            return value

        await r.until(lambda s: lease(s) >= 20.0, 8, "the EV alone gets its share")
        await cloud.wait_for("CAP1", "StartTransaction", lambda c: c.accepted, timeout=WAIT)

        async def cloud_call(action: str, payload: Payload) -> Payload:
            frame = await cloud.call("CAP1", action, payload)
            assert frame[0] == 3, frame
            answer: Payload = frame[2]
            return answer

        capped = {"connectorId": 0, "csChargingProfiles": cloud_max_profile(41, 0, 10.0)}
        assert await cloud_call("SetChargingProfile", capped) == {"status": "Accepted"}
        state = await r.until(lambda s: lease(s) == 10.0, 8, "the lease carries the cloud cap")
        entry = charger_entry(state, "CAP1")
        assert entry["cloudCapA"] == 10.0 and entry["capA"] == 10.0, entry

        watts = {"connectorId": 0, "csChargingProfiles": cloud_max_profile(42, 3, 4140, "W")}
        assert await cloud_call("SetChargingProfile", watts) == {"status": "Accepted"}
        await r.until(lambda s: lease(s) == 6.0, 8, "the higher stack level wins")

        assert await cloud_call("ClearChargingProfile", {"id": 42}) == {"status": "Accepted"}
        await r.until(lambda s: lease(s) == 10.0, 8, "back to the 10 A profile")
        # Matched as a charger matches: a clear for connector 1 leaves connector 0's cap.
        on_one = {"connectorId": 1, "chargingProfilePurpose": "ChargePointMaxProfile"}
        assert await cloud_call("ClearChargingProfile", on_one) == {"status": "Unknown"}
        assert charger_entry(await r.state(), "CAP1")["cloudCapA"] == 10.0
        cleared = {"chargingProfilePurpose": "ChargePointMaxProfile"}
        assert await cloud_call("ClearChargingProfile", cleared) == {"status": "Accepted"}
        state = await r.until(lambda s: lease(s) >= 20.0, 8, "no cloud cap left")
        assert charger_entry(state, "CAP1")["cloudCapA"] is None

        # A ChargePointMaxProfile on a connector is refused, as OCPP says.
        on_connector = {"connectorId": 1, "csChargingProfiles": cloud_max_profile(43, 0, 8.0)}
        assert await cloud_call("SetChargingProfile", on_connector) == {"status": "Rejected"}

        installed = {req["csChargingProfiles"]["chargingProfileId"] for _, req, _ in sim.set_calls}
        assert installed <= {SAFE_PROFILE_ID, LEASE_PROFILE_ID}, installed
        assert holds(sim, SAFE_PROFILE_ID) and holds(sim, LEASE_PROFILE_ID)
        clears = [c for c in sim.cp.received_calls if c[0] == "ClearChargingProfile"]
        assert all(
            c[1].get("chargingProfilePurpose") in ("TxDefaultProfile", "TxProfile") for c in clears
        ), clears


async def test_a_chargers_data_transfer_gets_the_clouds_answer_while_the_link_is_up(
    tmp_path: Path, cloud: Cloud
) -> None:
    """Link up: the charger gets the cloud's own answer (Accepted, then Rejected), and the
    cloud gets each DataTransfer once. Cloud down: the edge answers UnknownVendorId at
    once and the cloud gets the message from the outbox when it is back, once."""
    async with (
        asyncio.timeout(TEST_TIMEOUT),
        edge(tmp_path, cloud) as (app, _),
        RawCharger.connect(ocpp_url(app, "DT1")) as cp,
    ):
        sent = Sent(cp)
        await booted(sent)
        await synced(cloud, "DT1", sent.last_status(1))
        first = {"vendorId": "com.example", "messageId": "tariff", "data": "{}"}
        assert await sent.send("DataTransfer", first) == {"status": "Accepted"}
        cloud.data_transfer_status = "Rejected"
        second = {"vendorId": "com.example", "messageId": "price"}
        assert await sent.send("DataTransfer", second) == {"status": "Rejected"}
        assert [c.payload for c in cloud.received("DT1", "DataTransfer")] == [first, second]

        await cloud.stop()
        offline = {"vendorId": "com.example", "messageId": "offline"}
        assert await sent.send("DataTransfer", offline) == {"status": "UnknownVendorId"}
        await cloud.start()
        await cloud.wait_for("DT1", "DataTransfer", count=3, timeout=WAIT)
        await asyncio.sleep(0.5)  # nothing more arrives
        payloads = [c.payload for c in cloud.received("DT1", "DataTransfer")]
        assert payloads == [first, second, offline], payloads


async def test_a_command_right_after_the_start_conf_finds_the_transaction_it_names(
    tmp_path: Path,
) -> None:
    """A cloud that sends RemoteStopTransaction in the same breath as its
    StartTransaction.conf (the frame right after it) names the id it has just given: the
    edge waits for that answer to be on disk instead of answering Rejected."""
    async with RawCloud() as raw:

        def start_then_stop(call: Received) -> list[Reply]:
            conf = {"transactionId": 7777, "idTagInfo": {"status": "Accepted"}}
            return [[3, call.unique_id, conf], [2, "stop-now", "RemoteStopTransaction",
                                                {"transactionId": 7777}]]  # fmt: skip

        raw.script["StartTransaction"] = start_then_stop
        async with (
            asyncio.timeout(TEST_TIMEOUT),
            raw_edge(tmp_path, raw) as (app, api),
            RawCharger.connect(ocpp_url(app, "NOW1")) as cp,
        ):
            await accept_tag(api, "TAG1")
            cp.answers["RemoteStopTransaction"] = {"status": "Accepted"}
            sent = Sent(cp)
            await booted(sent)
            start = {"connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": now_iso()}
            edge_tx = (await sent.send("StartTransaction", start))["transactionId"]
            assert await cp.wait_for_call("RemoteStopTransaction") == {"transactionId": edge_tx}

            def answered() -> list[Any]:
                session = raw._sessions.get("NOW1")
                return [f for f in session.unmatched if f[1] == "stop-now"] if session else []

            assert await eventually(answered) == [[3, "stop-now", {"status": "Accepted"}]]
