"""The Smart Charging CSMS test cases (certification reference §2.6), and the state kept.

The operator sends the profiles through `POST /api/chargers/{id}/ocpp/{Action}`; the
scripted charger answers as the test tool does. Besides what the tool checks in the
request, each test checks what the CSMS then believes the charger holds
(`chargingProfiles` of `GET /api/chargers/{id}`) and the composite schedule it predicts
(`GET /api/chargers/{id}/schedule`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from edge.app import App
from edge.config import ChargerSettings, Config
from edge.sim.charger import RawCharger
from tests import helpers
from tests.conftest import Api, make_config, running
from tests.helpers import Json, charging, eventually, iso, now_iso

CP = "SC-CP"
TAG = "SCTAG01"
ACCEPTING = {
    "SetChargingProfile": {"status": "Accepted"},
    "ClearChargingProfile": {"status": "Accepted"},
}


def profile(
    profile_id: int,
    purpose: str,
    periods: list[tuple[int, float]],
    *,
    stack_level: int = 0,
    kind: str = "Absolute",
    start: datetime | None = None,
    duration: int | None = None,
    unit: str = "A",
    transaction_id: int | None = None,
    valid: tuple[datetime, datetime] | None = None,
) -> Json:
    schedule: Json = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [{"startPeriod": s, "limit": v} for s, v in periods],
    }
    if duration is not None:
        schedule["duration"] = duration
    if start is not None:
        schedule["startSchedule"] = iso(start)
    data: Json = {
        "chargingProfileId": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
    }
    if transaction_id is not None:
        data["transactionId"] = transaction_id
    if valid is not None:
        data["validFrom"], data["validTo"] = iso(valid[0]), iso(valid[1])
    return data


@pytest.fixture(autouse=True)
async def seed(api: Api) -> None:
    code, _ = await api.request("PUT", f"/api/id-tags/{TAG}", {"status": "Accepted"})
    assert code == 201


def booted(app: App) -> AbstractAsyncContextManager[RawCharger]:
    """The charger of these cases: two connectors; accepts Set- and ClearChargingProfile."""
    return helpers.booted(app, CP, available=(0, 1, 2), answers=ACCEPTING)


async def installed(api: Api) -> list[Json]:
    charger = await api.get(f"/api/chargers/{CP}")
    profiles: list[Json] = charger["chargingProfiles"]
    return profiles


def installed_ids(profiles: list[Json]) -> set[int]:
    return {p["chargingProfile"]["chargingProfileId"] for p in profiles}


async def test_tc_056_tx_default_profile(app: App, api: Api) -> None:
    """TC_056: the operator's TxDefaultProfile is sent exactly and recorded once Accepted."""
    now = datetime.now(UTC).replace(microsecond=0)
    sent = profile(
        11, "TxDefaultProfile", [(0, 6.0)], stack_level=3, start=now, duration=3600,
        valid=(now, now + timedelta(days=1)),
    )  # fmt: skip
    async with booted(app) as cp:
        code, body = await api.operation(
            CP, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": sent}
        )
        assert (code, body) == (200, {"response": {"status": "Accepted"}})
        request = await cp.wait_for_call("SetChargingProfile")
        assert request == {"connectorId": 1, "csChargingProfiles": sent}
        assert "transactionId" not in request["csChargingProfiles"]
        assert "recurrencyKind" not in request["csChargingProfiles"]
        [recorded] = await installed(api)
        assert recorded == {"connectorId": 1, "chargingProfile": sent}


async def test_rejected_profile_is_not_recorded(app: App, api: Api) -> None:
    """A profile the charger rejects is not believed installed."""
    async with booted(app) as cp:
        cp.answers["SetChargingProfile"] = {"status": "Rejected"}
        sent = profile(12, "TxDefaultProfile", [(0, 10.0)], kind="Relative")
        code, body = await api.operation(
            CP, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": sent}
        )
        assert (code, body) == (200, {"response": {"status": "Rejected"}})
        assert await installed(api) == []


async def test_tc_057_tx_profile_and_its_end(app: App, api: Api) -> None:
    """TC_057: a TxProfile with the CSMS transactionId is recorded; it ends with the transaction."""
    async with booted(app) as cp:
        transaction_id = await charging(cp, TAG)
        sent = profile(21, "TxProfile", [(0, 16.0)], kind="Relative", transaction_id=transaction_id)
        code, _ = await api.operation(
            CP, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": sent}
        )
        assert code == 200
        request = await cp.wait_for_call("SetChargingProfile")
        assert request["csChargingProfiles"]["transactionId"] == transaction_id
        assert installed_ids(await installed(api)) == {21}
        await cp.call(
            "StopTransaction",
            {
                "transactionId": transaction_id,
                "meterStop": 100,
                "timestamp": now_iso(),
            },
        )
        assert await installed(api) == []


async def test_tx_profile_without_transaction_is_refused(app: App, api: Api) -> None:
    """A TxProfile on a connector without a transaction breaks OCPP 1.6 §3.13: 400, nothing sent;
    `force=true` sends it anyway (certification tooling may ask for exactly that)."""
    async with booted(app) as cp:
        sent = profile(22, "TxProfile", [(0, 16.0)], kind="Relative")
        code, body = await api.operation(
            CP, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": sent}
        )
        assert code == 400 and body["error"] == "invalid_profile"
        assert any("transaction" in p["message"] for p in body["detail"])
        assert cp.received_calls == []
        code, _ = await api.request(
            "POST", f"/api/chargers/{CP}/ocpp/SetChargingProfile?force=true",
            {"connectorId": 1, "csChargingProfiles": sent},
        )  # fmt: skip
        assert code == 200
        assert [name for name, _ in cp.received_calls] == ["SetChargingProfile"]


async def test_legal_but_useless_profile_is_sent_with_warnings(app: App, api: Api) -> None:
    """A schema-valid profile whose later period starts after the schedule's duration is
    legal OCPP: it is sent and recorded, and the 200 answer lists the period as a warning."""
    now = datetime.now(UTC).replace(microsecond=0)
    sent = profile(13, "TxDefaultProfile", [(0, 16.0), (600, 8.0)], start=now, duration=300)
    async with booted(app) as cp:
        code, body = await api.operation(
            CP, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": sent}
        )
        assert code == 200 and body["response"] == {"status": "Accepted"}
        [warning] = body["warnings"]
        assert warning["severity"] == "warning"
        assert warning["field"].startswith("csChargingProfiles.chargingSchedule")
        assert await cp.wait_for_call("SetChargingProfile") == {
            "connectorId": 1, "csChargingProfiles": sent,
        }  # fmt: skip
        assert installed_ids(await installed(api)) == {13}


async def test_tc_059_remote_start_with_profile(app: App, api: Api) -> None:
    """TC_059: RemoteStart carries a TxProfile without transactionId; once the transaction starts
    the CSMS records it as installed for that transaction."""
    async with booted(app) as cp:
        cp.answers["RemoteStartTransaction"] = {"status": "Accepted"}
        tx_profile = profile(31, "TxProfile", [(0, 10.0), (60, 16.0)], kind="Relative")
        code, body = await api.operation(
            CP,
            "RemoteStartTransaction",
            {"idTag": TAG, "connectorId": 1, "chargingProfile": tx_profile},
        )
        assert (code, body) == (200, {"response": {"status": "Accepted"}})
        request = await cp.wait_for_call("RemoteStartTransaction")
        assert "transactionId" not in request["chargingProfile"]
        assert (
            request["chargingProfile"]["chargingSchedule"]["chargingSchedulePeriod"][0][
                "startPeriod"
            ]
            == 0
        )
        transaction_id = await charging(cp, TAG)
        [recorded] = await installed(api)
        assert recorded["connectorId"] == 1
        assert recorded["chargingProfile"]["chargingProfileId"] == 31
        assert recorded["chargingProfile"]["transactionId"] == transaction_id


async def test_remote_start_profile_must_be_a_tx_profile(app: App, api: Api) -> None:
    """RemoteStart's profile must be a TxProfile without transactionId (errata 3.32): 400."""
    async with booted(app) as cp:
        wrong = profile(32, "TxDefaultProfile", [(0, 10.0)], kind="Relative")
        code, body = await api.operation(
            CP, "RemoteStartTransaction", {"idTag": TAG, "connectorId": 1, "chargingProfile": wrong}
        )
        assert code == 400 and body["error"] == "invalid_profile"
        assert cp.received_calls == []


TC_066_NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_tc_066_composite_schedule_and_prediction(app: App, api: Api) -> None:
    """TC_066: GetCompositeSchedule with the configured parameters; the charger's answer is kept
    beside the CSMS's own prediction, and the prediction reproduces the reference vector."""
    async with booted(app) as cp:
        transaction_id = await charging(cp, TAG)
        start = datetime.now(UTC).replace(microsecond=0)
        profiles = [
            (0, profile(41, "ChargePointMaxProfile", [(0, 10.0)], start=start, duration=86400)),
            (1, profile(42, "TxDefaultProfile", [(0, 6), (60, 10), (120, 8), (180, 15), (260, 8)],
                        start=start, duration=300)),
            (1, profile(43, "TxProfile", [(0, 8), (50, 11), (140, 16), (200, 6), (240, 12)],
                        start=start, duration=260, transaction_id=transaction_id)),
        ]  # fmt: skip
        for connector_id, sent in profiles:
            code, _ = await api.operation(
                CP, "SetChargingProfile", {"connectorId": connector_id, "csChargingProfiles": sent}
            )
            assert code == 200
        expected = [(0, 8.0), (50, 10.0), (200, 6.0), (240, 10.0)]
        reported_schedule = {
            "duration": 400,
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": s, "limit": v} for s, v in expected],
        }
        cp.answers["GetCompositeSchedule"] = {
            "status": "Accepted",
            "connectorId": 1,
            "scheduleStart": iso(start),
            "chargingSchedule": reported_schedule,
        }
        code, body = await api.operation(
            CP, "GetCompositeSchedule", {"connectorId": 1, "duration": 400, "chargingRateUnit": "A"}
        )
        assert code == 200 and body["response"]["status"] == "Accepted"
        assert await cp.wait_for_call("GetCompositeSchedule") == {
            "connectorId": 1, "duration": 400, "chargingRateUnit": "A"
        }  # fmt: skip
        comparison = (await api.get(f"/api/chargers/{CP}"))["compositeSchedules"]["1"]
        assert comparison["reported"]["chargingSchedule"] == reported_schedule
        assert comparison["matches"] is True
        assert comparison["differences"] == []
        # The prediction on its own, from the profiles the CSMS recorded.
        predicted = await api.get(
            f"/api/chargers/{CP}/schedule?connectorId=1&duration=400&unit=A&start={iso(start)}"
        )
        assert predicted["connectorId"] == 1
        assert predicted["scheduleStart"] == iso(start)
        periods = predicted["chargingSchedule"]["chargingSchedulePeriod"]
        assert [(p["startPeriod"], p["limit"]) for p in periods] == expected


async def test_composite_differences_are_shown(app: App, api: Api) -> None:
    """When the charger's composite differs from the prediction, the API says where."""
    async with booted(app) as cp:
        start = datetime.now(UTC).replace(microsecond=0)
        sent = profile(51, "TxDefaultProfile", [(0, 16.0)], start=start, duration=600)
        await api.operation(
            CP, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": sent}
        )
        cp.answers["GetCompositeSchedule"] = {
            "status": "Accepted",
            "connectorId": 1,
            "scheduleStart": iso(start),
            "chargingSchedule": {
                "duration": 600,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 32.0}],  # ignored the limit
            },
        }
        code, _ = await api.operation(
            CP, "GetCompositeSchedule", {"connectorId": 1, "duration": 600, "chargingRateUnit": "A"}
        )
        assert code == 200
        comparison = (await api.get(f"/api/chargers/{CP}"))["compositeSchedules"]["1"]
        assert comparison["matches"] is False
        assert comparison["differences"][0]["startPeriod"] == 0
        assert comparison["differences"][0]["predicted"] == 16.0
        assert comparison["differences"][0]["reported"] == 32.0


async def test_tc_067_clear_charging_profile_2024(app: App, api: Api) -> None:
    """TC_067 (2024-04): three TxDefault at stack s..s+2; clear by id, by criteria, then all."""
    async with booted(app) as cp:
        for profile_id, level in ((61, 2), (62, 3), (63, 4)):
            sent = profile(
                profile_id,
                "TxDefaultProfile",
                [(0, 10.0 + level)],
                stack_level=level,
                kind="Relative",
            )
            code, _ = await api.operation(
                CP, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": sent}
            )
            assert code == 200
        assert installed_ids(await installed(api)) == {61, 62, 63}
        code, _ = await api.operation(CP, "ClearChargingProfile", {"id": 61})
        assert code == 200
        assert installed_ids(await installed(api)) == {62, 63}
        criteria = {"connectorId": 1, "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 3}
        code, _ = await api.operation(CP, "ClearChargingProfile", criteria)
        assert code == 200
        assert installed_ids(await installed(api)) == {63}
        code, _ = await api.operation(CP, "ClearChargingProfile", {})
        assert code == 200
        assert await installed(api) == []
        requests = [p for name, p in cp.received_calls if name == "ClearChargingProfile"]
        assert requests == [{"id": 61}, criteria, {}]


async def test_tc_067_clear_charging_profile_2025(app: App, api: Api) -> None:
    """TC_067 (2025-11): ChargePointMax, TxDefault and TxProfile at one stack level; clearing by
    TxDefault criteria removes only the TxDefault; Unknown removes nothing."""
    async with booted(app) as cp:
        transaction_id = await charging(cp, TAG)
        for connector_id, sent in (
            (0, profile(71, "ChargePointMaxProfile", [(0, 32.0)], stack_level=1, kind="Relative")),
            (1, profile(72, "TxDefaultProfile", [(0, 16.0)], stack_level=1, kind="Relative")),
            (
                1,
                profile(
                    73,
                    "TxProfile",
                    [(0, 10.0)],
                    stack_level=1,
                    kind="Relative",
                    transaction_id=transaction_id,
                ),
            ),
        ):
            code, _ = await api.operation(
                CP, "SetChargingProfile", {"connectorId": connector_id, "csChargingProfiles": sent}
            )
            assert code == 200
        criteria = {"connectorId": 1, "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 1}
        code, _ = await api.operation(CP, "ClearChargingProfile", criteria)
        assert code == 200
        assert installed_ids(await installed(api)) == {71, 73}
        cp.answers["ClearChargingProfile"] = {"status": "Unknown"}
        code, body = await api.operation(CP, "ClearChargingProfile", {"id": 999})
        assert (code, body) == (200, {"response": {"status": "Unknown"}})
        assert installed_ids(await installed(api)) == {71, 73}


async def test_profiles_survive_a_csms_restart(config: Config) -> None:
    """What the CSMS believes a charger holds is kept across its own restart."""
    sent = profile(81, "TxDefaultProfile", [(0, 12.0)], kind="Relative")
    async with running(config) as (app, api):
        await api.request("PUT", f"/api/id-tags/{TAG}", {"status": "Accepted"})
        async with booted(app):
            code, _ = await api.operation(
                CP, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": sent}
            )
            assert code == 200
    async with running(config) as (app, api):
        assert await installed(api) == [{"connectorId": 1, "chargingProfile": sent}]


async def test_limit_a_connector_until_a_time(app: App, api: Api) -> None:
    """'Limit connector 1 to 16 A until T' sends a top-level Absolute TxDefault ending by validTo;
    the prediction follows it and nothing lingers after T."""
    async with booted(app) as cp:
        cp.answers["GetConfiguration"] = {
            "configurationKey": [
                {"key": "ChargeProfileMaxStackLevel", "readonly": True, "value": "5"}
            ]
        }
        await api.operation(CP, "GetConfiguration", {"key": ["ChargeProfileMaxStackLevel"]})
        until = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        code, body = await api.request(
            "POST",
            f"/api/chargers/{CP}/limits",
            {"connectorId": 1, "limit": 16, "until": iso(until)},
        )
        assert code == 200, body
        assert body["response"] == {"status": "Accepted"}
        sent = (await cp.wait_for_call("SetChargingProfile"))["csChargingProfiles"]
        assert sent["chargingProfilePurpose"] == "TxDefaultProfile"
        assert sent["chargingProfileKind"] == "Absolute"
        assert sent["stackLevel"] == 5
        assert sent["validTo"] == iso(until)
        assert "duration" not in sent["chargingSchedule"]
        assert sent["chargingSchedule"]["chargingSchedulePeriod"] == [
            {"startPeriod": 0, "limit": 16.0}
        ]
        assert installed_ids(await installed(api)) == {sent["chargingProfileId"]}
        schedule = await api.get(f"/api/chargers/{CP}/schedule?connectorId=1&duration=7200")
        periods = schedule["chargingSchedule"]["chargingSchedulePeriod"]
        assert periods[0]["limit"] == 16.0
        assert len(periods) == 2 and 3590 <= periods[1]["startPeriod"] <= 3600
        assert schedule["unconstrainedPeriods"] == [periods[1]["startPeriod"]]


async def test_limit_the_whole_charger_then_clear(app: App, api: Api) -> None:
    """Connector 0 gets a ChargePointMaxProfile in W; clearing removes only operator limits."""
    async with booted(app) as cp:
        other = profile(5, "TxDefaultProfile", [(0, 20.0)], kind="Relative")
        await api.operation(
            CP, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": other}
        )
        code, body = await api.request(
            "POST", f"/api/chargers/{CP}/limits", {"limit": 11000, "unit": "W"}
        )
        assert code == 200, body
        assert body["connectorId"] == 0
        limit = body["csChargingProfiles"]
        assert limit["chargingProfilePurpose"] == "ChargePointMaxProfile"
        assert limit["chargingSchedule"]["chargingRateUnit"] == "W"
        assert "validTo" not in limit  # no end given: until cleared
        assert installed_ids(await installed(api)) == {5, limit["chargingProfileId"]}
        code, body = await api.request("DELETE", f"/api/chargers/{CP}/limits")
        assert code == 200
        assert [c["chargingProfileId"] for c in body["cleared"]] == [limit["chargingProfileId"]]
        assert cp.received_calls[-1] == ("ClearChargingProfile", {"id": limit["chargingProfileId"]})
        assert installed_ids(await installed(api)) == {5}


@pytest.mark.parametrize(
    "body",
    [
        {"limit": -1},
        {"limit": "16"},
        {"limit": 16, "unit": "kW"},
        {"limit": 16, "until": "2000-01-01T00:00:00Z"},
        {"limit": 16, "connectorId": -1},
        {"limit": 16, "numberPhases": 4},
        {"limit": 16, "colour": "red"},
    ],
)
async def test_limit_requests_are_checked(app: App, api: Api, body: Json) -> None:
    """Impossible limits are answered 400 with a reason, and nothing is sent."""
    async with booted(app) as cp:
        code, answer = await api.request("POST", f"/api/chargers/{CP}/limits", body)
        assert code == 400 and answer["error"] == "invalid_request", answer
        assert cp.received_calls == []


async def test_profiles_are_reapplied_after_a_boot_when_configured(tmp_path: Any) -> None:
    """With reapply_profiles, a rebooted charger gets its ChargePointMax/TxDefault profiles again
    (not its TxProfiles); without it the CSMS stays quiet after a boot."""
    base = make_config(tmp_path / "data")
    config = dataclasses.replace(
        base, chargers={CP: ChargerSettings(reapply_profiles=True), "SC-QUIET": ChargerSettings()}
    )
    async with running(config) as (app, api):
        await api.request("PUT", f"/api/id-tags/{TAG}", {"status": "Accepted"})
        default = profile(91, "TxDefaultProfile", [(0, 10.0)], kind="Relative")
        maximum = profile(92, "ChargePointMaxProfile", [(0, 32.0)], kind="Relative")
        async with booted(app) as cp:
            transaction_id = await charging(cp, TAG)
            tx = profile(
                93, "TxProfile", [(0, 8.0)], kind="Relative", transaction_id=transaction_id
            )
            for connector_id, sent in ((1, default), (0, maximum), (1, tx)):
                code, _ = await api.operation(
                    CP,
                    "SetChargingProfile",
                    {"connectorId": connector_id, "csChargingProfiles": sent},
                )
                assert code == 200
        async with helpers.booted(app, CP, available=(), answers=ACCEPTING) as rebooted:
            await rebooted.wait_for_call("SetChargingProfile")
            await eventually(lambda: len(rebooted.received_calls) >= 2)
            resent = {
                p["csChargingProfiles"]["chargingProfileId"] for _, p in rebooted.received_calls
            }
            assert resent == {91, 92}
        async with helpers.booted(app, "SC-QUIET", available=(), answers=ACCEPTING):
            code, _ = await api.operation(
                "SC-QUIET", "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": default}
            )
            assert code == 200
        async with helpers.booted(app, "SC-QUIET", available=(0,)) as quiet:
            await asyncio.sleep(0.2)
            assert quiet.received_calls == []  # recorded, but not configured to re-apply
