"""Local Authorization List API: the list a charger is believed to hold, and syncing it.

GET  /api/chargers/{id}/local-list        the believed version and entries
POST /api/chargers/{id}/local-list/sync   send the CSMS id-tag list (?full=true: Full)
GET  /api/chargers/{id}/triggers          the last TriggerMessage answer per message

A sync sends a Full list when the charger's content is unknown (never synced, a
Failed/VersionMismatch answer, a LocalListConflict, a version we did not send) and
otherwise a Differential one with only the changes. Lists above the charger's
SendLocalListMaxLength go as a Full first chunk then Differential chunks, versions
strictly increasing. A list above LocalAuthListMaxLength is refused (409), never cut:
a truncated list would silently lose tags. After Failed or VersionMismatch on a
Differential update a Full list is sent once (OCPP 1.6 §5.15: "the Central System
SHOULD send the full list").
"""

from __future__ import annotations

from aiohttp import web

from edge.features.local_auth import (
    configured_max,
    desired_entries,
    local_list_state,
)
from edge.local_list import ListTooLong, plan_updates
from edge.web.common import (
    ApiError,
    Json,
    charger_or_404,
    json_response,
    query_bool,
    services,
)
from edge.web.operations import send_operation

__all__ = ["add_routes"]

# (id of the Services, charger id) of syncs under way: one at a time per charger.
_syncing: set[tuple[int, str]] = set()


async def get_local_list(request: web.Request) -> web.Response:
    """GET /api/chargers/{id}/local-list: the list the CSMS believes the charger holds."""
    charger = charger_or_404(services(request), request.match_info["charger_id"])
    state = local_list_state(charger)
    return json_response(
        {
            "listVersion": state.version,
            "supported": state.supported,
            "contentKnown": state.content_known,
            "entries": [
                {"idTag": tag, "idTagInfo": info}
                for tag, info in sorted(state.entries.items(), key=lambda i: i[0].casefold())
            ],
            "lastSentVersion": state.last_sent_version,
            "lastResult": state.last_result,
        }
    )


async def sync_local_list(request: web.Request) -> web.Response:
    """POST /api/chargers/{id}/local-list/sync[?full=true][&force=true]: send the id-tag list."""
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    full = bool(query_bool(request, "full"))
    force = bool(query_bool(request, "force"))
    state = local_list_state(charger)
    if state.supported is False and not force:
        raise ApiError(
            409,
            "local_list_not_supported",
            "the charger reported no local list support (listVersion -1 or NotSupported); "
            "ask GetLocalListVersion again or use ?force=true",
        )
    key = (id(svc), charger.id)
    if key in _syncing:
        raise ApiError(409, "sync_in_progress", "a sync of this charger is already running")
    _syncing.add(key)
    try:
        summary = await _sync(request, full=full)
    finally:
        _syncing.discard(key)
    return json_response(summary)


async def _sync(request: web.Request, *, full: bool) -> Json:
    svc = services(request)
    charger = charger_or_404(svc, request.match_info["charger_id"])
    desired = desired_entries(svc)
    send_max = configured_max(charger, "SendLocalListMaxLength")
    list_max = configured_max(charger, "LocalAuthListMaxLength")

    def plan(full_list: bool) -> list[Json]:
        try:
            return plan_updates(
                local_list_state(charger), desired,
                send_max=send_max, list_max=list_max, full=full_list,
            )  # fmt: skip
        except ListTooLong as exc:
            raise ApiError(409, "list_too_long", str(exc)) from None

    payloads = plan(full)
    updates: list[Json] = []
    fell_back = False
    result = "UpToDate"
    index = 0
    while index < len(payloads):
        payload = payloads[index]
        response = await send_operation(request, charger, "SendLocalList", payload)
        result = str(response.get("status"))
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


async def get_triggers(request: web.Request) -> web.Response:
    """GET /api/chargers/{id}/triggers: the last TriggerMessage answer per requested message."""
    charger = charger_or_404(services(request), request.match_info["charger_id"])
    return json_response(charger.doc.get("triggers", {}))


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this module's routes."""
    router.add_get("/api/chargers/{charger_id}/local-list", get_local_list)
    router.add_post("/api/chargers/{charger_id}/local-list/sync", sync_local_list)
    router.add_get("/api/chargers/{charger_id}/triggers", get_triggers)
