"""The believed local list and the SendLocalList updates planned from it (edge.local_list)."""

from __future__ import annotations

import pytest

from edge.features.local_auth_list import (
    ListTooLong,
    LocalListState,
    apply_get_version,
    apply_send_local_list,
    plan_updates,
    send_local_list_problems,
)

OK = {"status": "Accepted"}
AT = "2025-01-01T00:00:00.000Z"


def installed(entries: dict[str, str], version: int = 3) -> LocalListState:
    state = LocalListState()
    req = {
        "listVersion": version,
        "updateType": "Full",
        "localAuthorizationList": [
            {"idTag": t, "idTagInfo": {"status": s}} for t, s in entries.items()
        ],
    }
    return apply_send_local_list(state, req, OK, AT)


def test_unknown_state_plans_one_full_list() -> None:
    """With nothing known, the whole list goes as one Full update with version 1."""
    [update] = plan_updates(LocalListState(), {"A": {"status": "Accepted"}})
    assert update == {
        "listVersion": 1,
        "updateType": "Full",
        "localAuthorizationList": [{"idTag": "A", "idTagInfo": {"status": "Accepted"}}],
    }


def test_differential_carries_only_changes() -> None:
    """A known list gets adds, changes and deletions (no idTagInfo) at a higher version."""
    state = installed({"A": "Accepted", "B": "Accepted", "C": "Accepted"})
    desired = {"a": {"status": "Accepted"}, "B": {"status": "Blocked"}, "D": {"status": "Accepted"}}
    [update] = plan_updates(state, desired)
    assert update["updateType"] == "Differential"
    assert update["listVersion"] == 4
    assert update["localAuthorizationList"] == [
        {"idTag": "a", "idTagInfo": {"status": "Accepted"}},
        {"idTag": "B", "idTagInfo": {"status": "Blocked"}},
        {"idTag": "D", "idTagInfo": {"status": "Accepted"}},
        {"idTag": "C"},
    ]


def test_nothing_changed_plans_nothing() -> None:
    """An up-to-date list needs no update."""
    assert plan_updates(installed({"A": "Accepted"}), {"A": {"status": "Accepted"}}) == []


def test_chunks_full_then_differential() -> None:
    """Above SendLocalListMaxLength: a Full first chunk, then Differential chunks, versions up."""
    desired = {f"T{i}": {"status": "Accepted"} for i in range(5)}
    updates = plan_updates(LocalListState(), desired, send_max=2)
    shape = [(u["updateType"], u["listVersion"], len(u["localAuthorizationList"])) for u in updates]
    assert shape == [("Full", 1, 2), ("Differential", 2, 2), ("Differential", 3, 1)]


def test_list_too_long_is_refused() -> None:
    """A list above LocalAuthListMaxLength is refused, not cut."""
    with pytest.raises(ListTooLong):
        plan_updates(LocalListState(), {"A": {"status": "Accepted"}, "B": {}}, list_max=1)


def test_version_mismatch_forces_full_and_versions_keep_rising() -> None:
    """After VersionMismatch the next plan is Full and above every version sent."""
    state = installed({"A": "Accepted"}, version=3)
    diff = {"listVersion": 4, "updateType": "Differential", "localAuthorizationList": []}
    apply_send_local_list(state, diff, {"status": "VersionMismatch"}, AT)
    [update] = plan_updates(state, {"A": {"status": "Accepted"}})
    assert (update["updateType"], update["listVersion"]) == ("Full", 5)


def test_get_version_answers() -> None:
    """-1 marks the list unsupported, 0 empty and known, another version unknown content."""
    state = apply_get_version(LocalListState(), -1, AT)
    assert state.supported is False
    state = apply_get_version(installed({"A": "Accepted"}), 0, AT)
    assert (state.version, state.entries, state.content_known) == (0, {}, True)
    state = apply_get_version(installed({"A": "Accepted"}, version=3), 7, AT)
    assert (state.version, state.content_known) == (7, False)
    assert plan_updates(state, {})[0]["listVersion"] == 8


def test_differential_accepted_updates_and_deletes_case_insensitively() -> None:
    """An Accepted Differential replaces a tag spelled differently and deletes without info."""
    state = installed({"A": "Accepted", "B": "Accepted"})
    req = {
        "listVersion": 4,
        "updateType": "Differential",
        "localAuthorizationList": [
            {"idTag": "a", "idTagInfo": {"status": "Blocked"}},
            {"idTag": "b"},
        ],
    }
    apply_send_local_list(state, req, OK, AT)
    assert state.entries == {"a": {"status": "Blocked"}}
    assert state.version == 4


def test_problems() -> None:
    """Version 0/-1, duplicates, Full without idTagInfo and too many entries are reported."""
    req = {
        "listVersion": 0,
        "updateType": "Full",
        "localAuthorizationList": [
            {"idTag": "A"},
            {"idTag": "a", "idTagInfo": {"status": "Accepted"}},
        ],
    }
    fields = [p["field"] for p in send_local_list_problems(LocalListState(), req, send_max=1)]
    assert fields == [
        "listVersion",
        "localAuthorizationList[0].idTagInfo",
        "localAuthorizationList[1].idTag",
        "localAuthorizationList",
    ]
    diff = {"listVersion": 3, "updateType": "Differential", "localAuthorizationList": []}
    assert send_local_list_problems(installed({}, version=3), diff)
