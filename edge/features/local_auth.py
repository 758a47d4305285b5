"""OCPP 1.6 Local Authorization List Management profile.

CSMS → charger (through the API): GetLocalListVersion, SendLocalList; the
operator's "sync" (`edge.web.local_lists`) builds SendLocalList updates from the
CSMS id-tag list.

The CSMS mirrors each charger's local list (`edge.local_list.LocalListState`, kept as
`localList` in the charger document, its version also as `localListVersion`) from
the answers the charger gives: an Accepted SendLocalList applies its update, Failed or
VersionMismatch make the content unknown (the next sync sends a Full list),
NotSupported or listVersion -1 mark the list unsupported. A StatusNotification on
connector 0 with errorCode LocalListConflict also makes the content unknown.
"""

from __future__ import annotations

from edge.chargers import Charger
from edge.features.base import Check, Handler, Payload, Recorder
from edge.id_tags import id_tag_info
from edge.local_list import (
    Entries,
    LocalListState,
    apply_get_version,
    apply_send_local_list,
    send_local_list_problems,
)
from edge.services import ChargerEvent, Services

__all__ = [
    "CHECKS",
    "HANDLERS",
    "RECORDERS",
    "configured_max",
    "desired_entries",
    "local_list_state",
    "save_state",
    "subscribe",
]


def local_list_state(charger: Charger) -> LocalListState:
    """What the CSMS believes `charger`'s local list is."""
    return LocalListState.from_json(charger.doc.get("localList"))


def save_state(svc: Services, charger: Charger, state: LocalListState) -> None:
    svc.chargers.update(charger, localList=state.to_json(), localListVersion=state.version)


def configured_max(charger: Charger, key: str) -> int | None:
    """An integer configuration key the charger reported (GetConfiguration), if known."""
    return charger.reported_int(key)


def desired_entries(svc: Services) -> Entries:
    """The local list the CSMS wants on every charger: every id tag with its IdTagInfo.

    Blocked, Expired and Invalid tags are included with their status: that is what lets
    a charger refuse them while offline instead of falling back to its cache or to
    accepting unknown tags (LocalAuthorizeOffline / AllowOfflineTxForUnknownId).
    """
    now = svc.now()
    return {tag.id_tag: id_tag_info(tag, now) for tag in svc.id_tags}


# --- checks before sending --------------------------------------------------------------


def check_send_local_list(svc: Services, charger: Charger, req: Payload) -> list[dict[str, str]]:
    return send_local_list_problems(
        local_list_state(charger), req, send_max=configured_max(charger, "SendLocalListMaxLength")
    )


# --- recording results ------------------------------------------------------------------


def record_send_local_list(svc: Services, charger: Charger, req: Payload, res: Payload) -> None:
    state = apply_send_local_list(local_list_state(charger), req, res, svc.now_text())
    save_state(svc, charger, state)


def record_get_local_list_version(
    svc: Services, charger: Charger, req: Payload, res: Payload
) -> None:
    state = apply_get_version(local_list_state(charger), int(res["listVersion"]), svc.now_text())
    save_state(svc, charger, state)


HANDLERS: dict[str, Handler] = {}
RECORDERS: dict[str, Recorder] = {
    "GetLocalListVersion": record_get_local_list_version,
    "SendLocalList": record_send_local_list,
}
CHECKS: dict[str, Check] = {"SendLocalList": check_send_local_list}


def _on_event(svc: Services, event: ChargerEvent) -> None:
    data = event.data
    if not (
        event.kind == "StatusChanged"
        and data.get("connectorId") == 0
        and data.get("errorCode") == "LocalListConflict"
    ):
        return
    charger = svc.chargers.get(event.charger_id)
    if charger is None:
        return
    # "conflicts ... SHALL be reported as StatusNotification on connectorId 0 with
    # errorCode LocalListConflict" (1.6 §3.5.2): the list we believe in is wrong.
    state = local_list_state(charger)
    if state.content_known:
        state.content_known = False
        save_state(svc, charger, state)


def subscribe(svc: Services) -> None:
    """Follow LocalListConflict reports: they make the believed list content unknown."""
    svc.events.subscribe(lambda event: _on_event(svc, event))
