"""The Local Authorization List a charger holds, as the CSMS believes it, and how to sync it.

Pure functions over plain JSON (the charger document keeps it): no I/O, no clock.

State (`LocalListState`, stored as `charger.doc["localList"]`; the version is also
kept as `charger.doc["localListVersion"]`, which the charger view shows):

    {"version": int | None,      # believed installed version; None = unknown, -1 = unsupported
     "supported": bool | None,   # False after listVersion -1 or a NotSupported answer
     "contentKnown": bool,       # False: the next sync must send a Full list
     "entries": {idTag: idTagInfo},
     "lastSentVersion": int,     # highest listVersion ever sent: versions only increase
     "lastResult": {...} | None}

OCPP 1.6 §5.15/§6.41: a Full update replaces the list (every entry carries idTagInfo);
a Differential one adds/updates entries with idTagInfo and deletes those without.
listVersion SHALL NOT be 0 or -1 (errata 3.52).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge.operations import Problem

__all__ = [
    "ListTooLong",
    "LocalListState",
    "apply_get_version",
    "apply_send_local_list",
    "next_version",
    "plan_updates",
    "send_local_list_problems",
]

Json = dict[str, Any]
# idTag (spelling as sent) → idTagInfo
Entries = dict[str, Json]


class ListTooLong(ValueError):
    """The list exceeds what the charger can hold (LocalAuthListMaxLength)."""


@dataclass(slots=True, kw_only=True)
class LocalListState:
    """What the CSMS believes one charger's local list is."""

    version: int | None = None
    supported: bool | None = None
    content_known: bool = False
    entries: Entries = field(default_factory=dict)
    last_sent_version: int = 0
    last_result: Json | None = None

    @classmethod
    def from_json(cls, data: Json | None) -> LocalListState:
        if not data:
            return cls()
        return cls(
            version=data.get("version"),
            supported=data.get("supported"),
            content_known=bool(data.get("contentKnown", False)),
            entries=dict(data.get("entries", {})),
            last_sent_version=int(data.get("lastSentVersion", 0)),
            last_result=data.get("lastResult"),
        )

    def to_json(self) -> Json:
        return {
            "version": self.version,
            "supported": self.supported,
            "contentKnown": self.content_known,
            "entries": dict(self.entries),
            "lastSentVersion": self.last_sent_version,
            "lastResult": self.last_result,
        }

    @property
    def needs_full(self) -> bool:
        """A Full list is due: the content or version is not known (or is empty: version 0)."""
        return not self.content_known or self.version is None or self.version <= 0


def _key(id_tag: str) -> str:
    # IdToken is a CiString20: compared case-insensitively (OCPP 1.6 §3.9).
    return id_tag.casefold()


def next_version(state: LocalListState) -> int:
    """The next listVersion: above both the installed one and any sent before; never 0 or -1."""
    return max(state.version or 0, state.last_sent_version, 0) + 1


def apply_send_local_list(state: LocalListState, req: Json, res: Json, at: str) -> LocalListState:
    """The state after the charger answered SendLocalList `req` with `res`."""
    status = res.get("status")
    update_type = req.get("updateType")
    version = req.get("listVersion")
    state.last_result = {
        "status": status, "updateType": update_type, "listVersion": version, "at": at,
    }  # fmt: skip
    if isinstance(version, int):
        state.last_sent_version = max(state.last_sent_version, version)
    entries = req.get("localAuthorizationList") or []
    if status == "Accepted":
        state.supported = True
        state.version = version
        if update_type == "Full":
            state.entries = {e["idTag"]: e["idTagInfo"] for e in entries if "idTagInfo" in e}
            state.content_known = True
        else:
            by_key = {_key(tag): tag for tag in state.entries}
            for entry in entries:
                old = by_key.pop(_key(entry["idTag"]), None)
                if old is not None:
                    del state.entries[old]
                if "idTagInfo" in entry:
                    state.entries[entry["idTag"]] = entry["idTagInfo"]
                    by_key[_key(entry["idTag"])] = entry["idTag"]
    elif status == "NotSupported":
        state.supported = False
    else:
        # Failed / VersionMismatch: what the charger holds is no longer certain, so the
        # next update is a Full list (OCPP 1.6 §5.15: "the Central System SHOULD send
        # the full list").
        state.content_known = False
    return state


def apply_get_version(state: LocalListState, list_version: int, at: str) -> LocalListState:
    """The state after GetLocalListVersion answered `list_version` (-1 unsupported, 0 empty)."""
    state.last_result = {"status": "Version", "listVersion": list_version, "at": at}
    if list_version == -1:
        state.supported = False
        state.version = -1
        return state
    state.supported = True
    if list_version == 0:
        state.version = 0
        state.entries = {}
        state.content_known = True
    elif list_version != state.version:
        # Someone else changed the list, or our record is stale: contents unknown.
        state.version = list_version
        state.content_known = False
    return state


def _chunks(items: list[Json], size: int | None) -> list[list[Json]]:
    if not size or size <= 0:
        return [items]
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def _entry(id_tag: str, info: Json | None) -> Json:
    return {"idTag": id_tag} if info is None else {"idTag": id_tag, "idTagInfo": info}


def plan_updates(
    state: LocalListState,
    desired: Entries,
    *,
    send_max: int | None = None,
    list_max: int | None = None,
    full: bool = False,
) -> list[Json]:
    """The SendLocalList payloads that bring the charger from `state` to `desired`.

    Full when `full` or the state needs it: the first `send_max` entries as Full, the
    rest as Differential chunks. Otherwise only the changes, as Differential chunks.
    Versions strictly increase from `next_version(state)`. An empty list when nothing
    changed. Raises ListTooLong when `desired` exceeds `list_max`.
    """
    if list_max is not None and list_max >= 0 and len(desired) > list_max:
        raise ListTooLong(
            f"{len(desired)} id tags, but the charger holds at most {list_max} "
            "(LocalAuthListMaxLength)"
        )
    version = next_version(state)
    payloads: list[Json] = []
    if full or state.needs_full:
        items = [_entry(tag, info) for tag, info in desired.items()]
        first, *rest = _chunks(items, send_max)
        payloads.append(
            {"listVersion": version, "updateType": "Full", "localAuthorizationList": first}
        )
        chunks = rest
    else:
        have = {_key(tag): (tag, info) for tag, info in state.entries.items()}
        want = {_key(tag): (tag, info) for tag, info in desired.items()}
        changes = [
            _entry(tag, info)
            for key, (tag, info) in want.items()
            if key not in have or have[key] != (tag, info)
        ]
        changes += [_entry(tag, None) for key, (tag, _) in have.items() if key not in want]
        chunks = _chunks(changes, send_max) if changes else []
    for chunk in chunks:
        version = payloads[-1]["listVersion"] + 1 if payloads else version
        payloads.append(
            {"listVersion": version, "updateType": "Differential", "localAuthorizationList": chunk}
        )
    return payloads


def send_local_list_problems(
    state: LocalListState, req: Json, *, send_max: int | None = None
) -> list[Problem]:
    """Spec rules for a SendLocalList request a schema cannot express."""
    problems: list[Problem] = []
    version = req.get("listVersion")
    entries = req.get("localAuthorizationList") or []
    if isinstance(version, int) and version < 1:
        # "listVersion SHALL NOT be 0 or -1" (1.6 errata 3.52): they mean empty / unsupported.
        problems.append(
            {"field": "listVersion", "message": "must be 1 or more (0 and -1 are reserved)"}
        )
    if (
        req.get("updateType") == "Differential"
        and isinstance(version, int)
        and state.version is not None
        and state.version >= 0
        and version <= state.version
    ):
        # Legal to send (the charger answers VersionMismatch): a warning, not a refusal.
        problems.append(
            {
                "field": "listVersion",
                "message": f"a Differential update should exceed the installed version "
                f"{state.version}; the charger will answer VersionMismatch",
                "severity": "warning",
            }
        )
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        key = _key(str(entry.get("idTag", "")))
        if key in seen:
            # No SHALL forbids it; the later entry wins on most chargers.
            problems.append(
                {
                    "field": f"localAuthorizationList[{i}].idTag",
                    "message": "duplicate idTag",
                    "severity": "warning",
                }
            )
        seen.add(key)
        if req.get("updateType") == "Full" and "idTagInfo" not in entry:
            # AuthorizationData: "in case of a full update this field SHALL be set".
            problems.append(
                {
                    "field": f"localAuthorizationList[{i}].idTagInfo",
                    "message": "every entry of a Full update needs idTagInfo",
                }
            )
    if send_max is not None and send_max >= 0 and len(entries) > send_max:
        # The charger's stated limit, not a rule for the CSMS: it will answer Failed.
        problems.append(
            {
                "field": "localAuthorizationList",
                "message": f"{len(entries)} entries, above the charger's "
                f"SendLocalListMaxLength {send_max}",
                "severity": "warning",
            }
        )
    return problems
