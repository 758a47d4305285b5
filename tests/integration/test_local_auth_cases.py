"""The Local Auth List Management CSMS test cases (certification reference §2.2) and the sync.

The operator sends GetLocalListVersion / SendLocalList through
`POST /api/chargers/{id}/ocpp/{Action}` or syncs the id-tag list with
`POST /api/chargers/{id}/local-list/sync`; the scripted charger answers as the test
tool (or a charger keeping a real list) does. Each test also checks what the CSMS
then believes the charger holds (`GET /api/chargers/{id}/local-list`).
"""

from __future__ import annotations

from edge.app import App
from edge.sim.charger import RawCharger
from tests.conftest import Api
from tests.helpers import Json, booted

CP = "LAL-CP"
LIST = f"/api/chargers/{CP}/local-list"


class ListCharger:
    """A charger's local list: applies SendLocalList as OCPP 1.6 §5.15 says, or answers `forced`."""

    def __init__(self) -> None:
        self.version = 0
        self.entries: dict[str, Json] = {}
        self.forced: list[str] = []

    def __call__(self, req: Json) -> Json:
        if self.forced:
            return {"status": self.forced.pop(0)}
        entries = req.get("localAuthorizationList", [])
        if req["updateType"] == "Full":
            self.entries = {e["idTag"]: e["idTagInfo"] for e in entries}
        elif req["listVersion"] <= self.version:
            return {"status": "VersionMismatch"}
        else:
            for entry in entries:
                if "idTagInfo" in entry:
                    self.entries[entry["idTag"]] = entry["idTagInfo"]
                else:
                    self.entries.pop(entry["idTag"], None)
        self.version = req["listVersion"]
        return {"status": "Accepted"}


def sent(cp: RawCharger) -> list[Json]:
    return [payload for action, payload in cp.received_calls if action == "SendLocalList"]


async def put_tags(api: Api, tags: dict[str, str]) -> None:
    for tag, status in tags.items():
        code, _ = await api.request("PUT", f"/api/id-tags/{tag}", {"status": status})
        assert code in (200, 201)


async def sync(api: Api, query: str = "") -> tuple[int, Json]:
    code, body = await api.request("POST", f"{LIST}/sync{query}")
    return code, body


async def set_max_lengths(api: Api, cp: RawCharger, send_max: int, list_max: int) -> None:
    cp.answers["GetConfiguration"] = {
        "configurationKey": [
            {"key": "SendLocalListMaxLength", "readonly": True, "value": str(send_max)},
            {"key": "LocalAuthListMaxLength", "readonly": True, "value": str(list_max)},
        ]
    }
    code, _ = await api.operation(CP, "GetConfiguration", {})
    assert code == 200


# --- certification cases ----------------------------------------------------------------


async def test_tc_042_1_get_local_list_version_not_supported(app: App, api: Api) -> None:
    """TC_042_1: listVersion -1 is accepted, recorded as unsupported, and a sync is refused."""
    async with booted(app, CP) as cp:
        cp.answers["GetLocalListVersion"] = {"listVersion": -1}
        code, body = await api.operation(CP, "GetLocalListVersion", {})
        assert (code, body) == (200, {"response": {"listVersion": -1}})
        assert await cp.wait_for_call("GetLocalListVersion") == {}
        state = await api.get(LIST)
        assert (state["listVersion"], state["supported"]) == (-1, False)
        assert (await api.get(f"/api/chargers/{CP}"))["localListVersion"] == -1
        code, body = await sync(api)
        assert code == 409 and body["error"] == "local_list_not_supported"
        assert "listVersion -1" in body["detail"]
        assert sent(cp) == []


async def test_tc_042_2_get_local_list_version_empty(app: App, api: Api) -> None:
    """TC_042_2: listVersion 0 is recorded as an empty, supported list."""
    async with booted(app, CP) as cp:
        cp.answers["GetLocalListVersion"] = {"listVersion": 0}
        code, body = await api.operation(CP, "GetLocalListVersion", {})
        assert (code, body) == (200, {"response": {"listVersion": 0}})
        state = await api.get(LIST)
        assert (state["listVersion"], state["supported"], state["entries"]) == (0, True, [])


async def test_tc_043_1_send_local_list_not_supported(app: App, api: Api) -> None:
    """TC_043_1: a Full list answered NotSupported is recorded as unsupported, not installed."""
    request = {
        "listVersion": 1,
        "updateType": "Full",
        "localAuthorizationList": [{"idTag": "TAG1", "idTagInfo": {"status": "Accepted"}}],
    }
    async with booted(app, CP) as cp:
        cp.answers["SendLocalList"] = {"status": "NotSupported"}
        code, body = await api.operation(CP, "SendLocalList", request)
        assert (code, body) == (200, {"response": {"status": "NotSupported"}})
        assert await cp.wait_for_call("SendLocalList") == request
        state = await api.get(LIST)
        assert state["supported"] is False and state["entries"] == []
        assert state["lastResult"]["status"] == "NotSupported"


async def test_tc_043_3_send_local_list_failed(app: App, api: Api) -> None:
    """TC_043_3: a Full list answered Failed leaves the content unknown, so a Full follows."""
    request = {
        "listVersion": 1,
        "updateType": "Full",
        "localAuthorizationList": [{"idTag": "TAG1", "idTagInfo": {"status": "Accepted"}}],
    }
    async with booted(app, CP) as cp:
        cp.answers["SendLocalList"] = {"status": "Failed"}
        code, body = await api.operation(CP, "SendLocalList", request)
        assert (code, body) == (200, {"response": {"status": "Failed"}})
        assert (await cp.wait_for_call("SendLocalList"))["updateType"] == "Full"
        state = await api.get(LIST)
        assert state["contentKnown"] is False and state["lastResult"]["status"] == "Failed"


async def test_tc_043_4_send_local_list_full(app: App, api: Api) -> None:
    """TC_043_4: a Full list with idTagInfo on every entry, Accepted, is believed installed."""
    entries = [
        {"idTag": "TAG1", "idTagInfo": {"status": "Accepted"}},
        {"idTag": "TAG2", "idTagInfo": {"status": "Blocked"}},
    ]
    request = {"listVersion": 1, "updateType": "Full", "localAuthorizationList": entries}
    async with booted(app, CP) as cp:
        cp.answers["SendLocalList"] = {"status": "Accepted"}
        code, body = await api.operation(CP, "SendLocalList", request)
        assert (code, body) == (200, {"response": {"status": "Accepted"}})
        received = await cp.wait_for_call("SendLocalList")
        assert received["updateType"] == "Full"
        assert all("idTagInfo" in e for e in received["localAuthorizationList"])
        state = await api.get(LIST)
        assert (state["listVersion"], state["entries"]) == (1, entries)
        assert (await api.get(f"/api/chargers/{CP}"))["localListVersion"] == 1


async def test_tc_043_5_send_local_list_differential(app: App, api: Api) -> None:
    """TC_043_5: with a Full list installed, a Differential with only the new tag and a higher
    version is sent and recorded."""
    async with booted(app, CP) as cp:
        charger = ListCharger()
        cp.answers["SendLocalList"] = charger
        full = {
            "listVersion": 1,
            "updateType": "Full",
            "localAuthorizationList": [{"idTag": "TAG1", "idTagInfo": {"status": "Accepted"}}],
        }
        assert (await api.operation(CP, "SendLocalList", full))[0] == 200
        cp.answers["GetLocalListVersion"] = lambda _: {"listVersion": charger.version}
        assert (await api.operation(CP, "GetLocalListVersion", {}))[1]["response"] == {
            "listVersion": 1
        }
        diff = {
            "listVersion": 2,
            "updateType": "Differential",
            "localAuthorizationList": [{"idTag": "TAG2", "idTagInfo": {"status": "Accepted"}}],
        }
        code, body = await api.operation(CP, "SendLocalList", diff)
        assert (code, body) == (200, {"response": {"status": "Accepted"}})
        assert sent(cp)[-1] == diff
        state = await api.get(LIST)
        assert state["listVersion"] == 2
        assert [e["idTag"] for e in state["entries"]] == ["TAG1", "TAG2"]


# --- checks -------------------------------------------------------------------------------


async def test_checks_refuse_reserved_versions_duplicates_and_bare_full_entries(
    app: App, api: Api
) -> None:
    """Version 0/-1, duplicate idTags and bare Full entries are refused unless forced."""
    async with booted(app, CP) as cp:
        cp.answers["SendLocalList"] = {"status": "Accepted"}
        for version in (0, -1):
            code, body = await api.operation(
                CP, "SendLocalList", {"listVersion": version, "updateType": "Full"}
            )
            assert code == 400 and body["detail"][0]["field"] == "listVersion"
        bad = {
            "listVersion": 5,
            "updateType": "Full",
            "localAuthorizationList": [
                {"idTag": "X"},
                {"idTag": "x", "idTagInfo": {"status": "Accepted"}},
            ],
        }
        code, body = await api.operation(CP, "SendLocalList", bad)
        assert code == 400
        assert {p["field"] for p in body["detail"]} == {
            "localAuthorizationList[0].idTagInfo",
            "localAuthorizationList[1].idTag",
        }
        assert sent(cp) == []
        code, _ = await api.request(
            "POST", f"/api/chargers/{CP}/ocpp/SendLocalList?force=true", bad
        )
        assert code == 200 and sent(cp) == [bad]


# --- sync ---------------------------------------------------------------------------------


async def test_sync_full_then_differential_add_and_delete(app: App, api: Api) -> None:
    """First sync sends every tag as Full; an added tag then goes alone as Differential with a
    higher version; a deleted tag as a Differential entry without idTagInfo."""
    await put_tags(api, {"A1": "Accepted", "B2": "Blocked", "E3": "Expired"})
    async with booted(app, CP) as cp:
        charger = ListCharger()
        cp.answers["SendLocalList"] = charger
        code, body = await sync(api)
        assert code == 200, body
        assert body["result"] == "Accepted" and body["listVersion"] == 1
        [first] = sent(cp)
        assert first == {
            "listVersion": 1,
            "updateType": "Full",
            "localAuthorizationList": [
                {"idTag": "A1", "idTagInfo": {"status": "Accepted"}},
                {"idTag": "B2", "idTagInfo": {"status": "Blocked"}},
                {"idTag": "E3", "idTagInfo": {"status": "Expired"}},
            ],
        }

        await put_tags(api, {"N4": "Accepted"})
        code, body = await sync(api)
        assert code == 200 and body["listVersion"] == 2
        assert sent(cp)[-1] == {
            "listVersion": 2,
            "updateType": "Differential",
            "localAuthorizationList": [{"idTag": "N4", "idTagInfo": {"status": "Accepted"}}],
        }

        code, _ = await api.request("DELETE", "/api/id-tags/B2")
        assert code == 204
        code, body = await sync(api)
        assert code == 200
        assert sent(cp)[-1] == {
            "listVersion": 3,
            "updateType": "Differential",
            "localAuthorizationList": [{"idTag": "B2"}],
        }
        assert sorted(charger.entries) == ["A1", "E3", "N4"]
        state = await api.get(LIST)
        assert [e["idTag"] for e in state["entries"]] == ["A1", "E3", "N4"]

        code, body = await sync(api)
        assert (code, body["result"], body["updates"]) == (200, "UpToDate", [])
        assert len(sent(cp)) == 3


async def test_sync_chunks_by_send_local_list_max_length(app: App, api: Api) -> None:
    """SendLocalListMaxLength 2 and 5 tags: a Full chunk then Differential chunks, versions up."""
    await put_tags(api, {f"T{i}": "Accepted" for i in range(5)})
    async with booted(app, CP) as cp:
        charger = ListCharger()
        cp.answers["SendLocalList"] = charger
        await set_max_lengths(api, cp, send_max=2, list_max=10)
        code, body = await sync(api)
        assert code == 200, body
        shape = [
            (p["updateType"], p["listVersion"], len(p["localAuthorizationList"])) for p in sent(cp)
        ]
        assert shape == [("Full", 1, 2), ("Differential", 2, 2), ("Differential", 3, 1)]
        assert sorted(charger.entries) == [f"T{i}" for i in range(5)]
        assert body["listVersion"] == 3 and body["entries"] == 5


async def test_sync_refuses_list_above_local_auth_list_max_length(app: App, api: Api) -> None:
    """A list longer than LocalAuthListMaxLength is refused with a clear 409, nothing sent."""
    await put_tags(api, {f"T{i}": "Accepted" for i in range(3)})
    async with booted(app, CP) as cp:
        await set_max_lengths(api, cp, send_max=10, list_max=2)
        code, body = await sync(api)
        assert code == 409 and body["error"] == "list_too_long"
        assert "LocalAuthListMaxLength" in body["detail"]
        assert sent(cp) == []


async def test_sync_version_mismatch_falls_back_to_full(app: App, api: Api) -> None:
    """VersionMismatch on a Differential is followed by a Full list at a higher version."""
    await put_tags(api, {"A1": "Accepted"})
    async with booted(app, CP) as cp:
        charger = ListCharger()
        cp.answers["SendLocalList"] = charger
        assert (await sync(api))[0] == 200
        await put_tags(api, {"N2": "Accepted"})
        charger.forced = ["VersionMismatch"]
        code, body = await sync(api)
        assert code == 200, body
        assert body["fellBackToFull"] is True and body["result"] == "Accepted"
        updates = [(u["updateType"], u["listVersion"], u["status"]) for u in body["updates"]]
        assert updates == [("Differential", 2, "VersionMismatch"), ("Full", 3, "Accepted")]
        assert sent(cp)[-1]["localAuthorizationList"] == [
            {"idTag": "A1", "idTagInfo": {"status": "Accepted"}},
            {"idTag": "N2", "idTagInfo": {"status": "Accepted"}},
        ]
        versions = [p["listVersion"] for p in sent(cp)]
        assert versions == sorted(set(versions)) and 0 not in versions and -1 not in versions


async def test_sync_after_foreign_version_sends_full(app: App, api: Api) -> None:
    """A version the CSMS did not send (GetLocalListVersion) makes the next sync Full, above it."""
    await put_tags(api, {"A1": "Accepted"})
    async with booted(app, CP) as cp:
        charger = ListCharger()
        cp.answers["SendLocalList"] = charger
        assert (await sync(api))[0] == 200
        cp.answers["GetLocalListVersion"] = {"listVersion": 41}
        assert (await api.operation(CP, "GetLocalListVersion", {}))[0] == 200
        assert (await sync(api))[0] == 200
        assert (sent(cp)[-1]["updateType"], sent(cp)[-1]["listVersion"]) == ("Full", 42)
