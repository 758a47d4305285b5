"""OCPP 1.6 Local Authorization List Management profile.

CSMS → charger (through the API): GetLocalListVersion, SendLocalList; the
operator's "sync" (`sync`) builds SendLocalList updates from the CSMS id-tag list.

The CSMS mirrors each charger's local list (`edge.local_list.LocalListState`, kept as
`localList` in the charger document, its version also as `localListVersion`) from
the answers the charger gives: an Accepted SendLocalList applies its update, Failed or
VersionMismatch make the content unknown (the next sync sends a Full list),
NotSupported or listVersion -1 mark the list unsupported. A StatusNotification on
connector 0 with errorCode LocalListConflict also makes the content unknown.
"""

from __future__ import annotations

from edge.chargers import Charger
from edge.events import ChargerEvent, StatusChanged
from edge.features.base import Check, Handler, Payload, Recorder
from edge.features.local_auth_list import (
    Entries,
    ListTooLong,
    LocalListState,
    apply_get_version,
    apply_send_local_list,
    plan_updates,
    send_local_list_problems,
)
from edge.id_tags import id_tag_info
from edge.operations import Conflict, Origin, Problem, Sender
from edge.services import Services

__all__ = [
    "CHECKS",
    "HANDLERS",
    "RECORDERS",
    "configured_max",
    "desired_entries",
    "local_list_state",
    "save_state",
    "subscribe",
    "sync",
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


def check_send_local_list(svc: Services, charger: Charger, req: Payload) -> list[Problem]:
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
    if not (
        isinstance(event, StatusChanged)
        and event.connector_id == 0
        and event.error_code == "LocalListConflict"
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


# --- sync ---------------------------------------------------------------------------------
#
# A sync sends a Full list when the charger's content is unknown (never synced, a
# Failed/VersionMismatch answer, a LocalListConflict, a version we did not send) and
# otherwise a Differential one with only the changes. Lists above the charger's
# SendLocalListMaxLength go as a Full first chunk then Differential chunks, versions
# strictly increasing. A list above LocalAuthListMaxLength is refused, never cut: a
# truncated list would silently lose tags. After Failed or VersionMismatch on a
# Differential update a Full list is sent once (OCPP 1.6 §5.15: "the Central System
# SHOULD send the full list").

# (id of the Services, charger id) of syncs under way: one at a time per charger.
_syncing: set[tuple[int, str]] = set()


async def sync(
    ops: Sender, charger: Charger, *, full: bool, force: bool, origin: Origin
) -> Payload:
    """Bring the charger's local list in line with the id-tag list; a summary of what
    was sent and answered.

    Raises:
        Conflict: the charger has no local list (unless `force`), a sync of it is
            already running, or the list is longer than the charger can hold.
        OperationError: a SendLocalList failed (see `Operations.send`).
    """
    state = local_list_state(charger)
    if state.supported is False and not force:
        raise Conflict(
            "the charger reported no local list support (listVersion -1 or NotSupported); "
            "ask GetLocalListVersion again or use ?force=true",
            code="local_list_not_supported",
        )
    key = (id(ops.services), charger.id)
    if key in _syncing:
        raise Conflict("a sync of this charger is already running", code="sync_in_progress")
    _syncing.add(key)
    try:
        return await _sync(ops, charger, full=full, origin=origin)
    finally:
        _syncing.discard(key)


async def _sync(ops: Sender, charger: Charger, *, full: bool, origin: Origin) -> Payload:
    desired = desired_entries(ops.services)
    send_max = configured_max(charger, "SendLocalListMaxLength")
    list_max = configured_max(charger, "LocalAuthListMaxLength")

    def plan(full_list: bool) -> list[Payload]:
        try:
            return plan_updates(
                local_list_state(charger), desired,
                send_max=send_max, list_max=list_max, full=full_list,
            )  # fmt: skip
        except ListTooLong as exc:
            raise Conflict(str(exc), code="list_too_long") from None

    payloads = plan(full)
    updates: list[Payload] = []
    fell_back = False
    result = "UpToDate"
    index = 0
    while index < len(payloads):
        payload = payloads[index]
        outcome = await ops.send(charger, "SendLocalList", payload, origin=origin)
        result = str(outcome.response.get("status"))
        updates.append(
            {
                "updateType": payload["updateType"],
                "listVersion": payload["listVersion"],
                "entries": len(payload["localAuthorizationList"]),
                "status": result,
            }
        )
        if result == "Accepted":
            index += 1
            continue
        if (
            payload["updateType"] == "Differential"
            and result in ("Failed", "VersionMismatch")
            and not fell_back
        ):
            # "after Failed or VersionMismatch the Central System SHOULD send the full list".
            fell_back = True
            payloads, index = plan(True), 0
            continue
        break
    final = local_list_state(charger)
    return {
        "result": result,
        "updates": updates,
        "fellBackToFull": fell_back,
        "listVersion": final.version,
        "entries": len(final.entries),
    }
