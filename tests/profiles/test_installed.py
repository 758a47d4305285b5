"""InstalledProfiles: a charger's installed profiles, replaced and cleared as OCPP 1.6 says."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from profiles.installed import InstalledProfile, InstalledProfiles
from profiles.model import (
    ChargingProfile,
    ChargingProfileKind,
    ChargingProfilePurpose,
    ChargingRateUnit,
    ChargingSchedule,
    ChargingSchedulePeriod,
    ProfileFormatError,
    RecurrencyKind,
)

Purpose = ChargingProfilePurpose
T0 = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)


def profile(
    profile_id: int,
    purpose: ChargingProfilePurpose = Purpose.TX_DEFAULT,
    stack_level: int = 0,
    transaction_id: int | None = None,
    limit: float = 16.0,
) -> ChargingProfile:
    """A Relative profile with one period at `limit` A."""
    return ChargingProfile(
        charging_profile_id=profile_id,
        stack_level=stack_level,
        purpose=purpose,
        kind=ChargingProfileKind.RELATIVE,
        schedule=ChargingSchedule(
            charging_rate_unit=ChargingRateUnit.A,
            periods=(ChargingSchedulePeriod(start_period=0, limit=limit),),
        ),
        transaction_id=transaction_id,
    )


def ids(installed: InstalledProfiles | list[InstalledProfile]) -> list[int]:
    """The chargingProfileIds, in order."""
    return [item.profile.charging_profile_id for item in installed]


def test_empty() -> None:
    """A new set holds nothing and applies nothing."""
    empty = InstalledProfiles()
    assert empty.all() == [] and len(empty) == 0 and empty.for_connector(1) == []


def test_set_is_immutable() -> None:
    """set returns a new value and leaves the old one unchanged."""
    empty = InstalledProfiles()
    one = empty.set(1, profile(1))
    assert len(empty) == 0
    assert one.all() == [InstalledProfile(1, profile(1))]


def test_same_id_replaces_across_connectors() -> None:
    """A profile with an installed id replaces it, even on another connector (§5.16.3)."""
    installed = InstalledProfiles().set(1, profile(7, stack_level=0)).set(2, profile(8))
    installed = installed.set(2, profile(7, stack_level=3, limit=6.0))
    assert [(i.connector_id, i.profile.charging_profile_id) for i in installed] == [(2, 8), (2, 7)]
    assert installed.all()[1].profile.schedule.periods[0].limit == 6.0


def test_same_purpose_and_stack_replaces_on_same_connector() -> None:
    """Same purpose and stackLevel on the same connector replaces, whatever the id."""
    installed = (
        InstalledProfiles().set(1, profile(1, stack_level=2)).set(1, profile(2, stack_level=2))
    )
    assert ids(installed) == [2]


def test_same_purpose_and_stack_on_other_connector_kept() -> None:
    """Same purpose and stackLevel on a different connector (or connector 0) does not replace."""
    installed = (
        InstalledProfiles()
        .set(0, profile(1, stack_level=2))
        .set(1, profile(2, stack_level=2))
        .set(2, profile(3, stack_level=2))
    )
    assert ids(installed) == [1, 2, 3]


def test_different_purpose_or_stack_kept() -> None:
    """Another purpose at the same stackLevel, or another stackLevel, is kept alongside."""
    installed = (
        InstalledProfiles()
        .set(1, profile(1, Purpose.TX_DEFAULT, stack_level=0))
        .set(1, profile(2, Purpose.TX, stack_level=0, transaction_id=5))
        .set(1, profile(3, Purpose.TX_DEFAULT, stack_level=1))
    )
    assert ids(installed) == [1, 2, 3]


def test_for_connector_includes_connector_0() -> None:
    """A connector sees its own profiles and connector 0's; connector 0 sees only its own."""
    installed = (
        InstalledProfiles()
        .set(0, profile(1, Purpose.CHARGE_POINT_MAX))
        .set(1, profile(2))
        .set(2, profile(3))
    )
    assert ids(installed.for_connector(1)) == [1, 2]
    assert ids(installed.for_connector(2)) == [1, 3]
    assert ids(installed.for_connector(0)) == [1]


# --- ClearChargingProfile ----------------------------------------------------------------


def test_clear_by_id_ignores_other_criteria() -> None:
    """With an id, connectorId/purpose/stackLevel are ignored (errata 3.25-3.26)."""
    installed = InstalledProfiles().set(1, profile(1, stack_level=0)).set(2, profile(2))
    after, removed = installed.clear(
        profile_id=1, connector_id=2, purpose=Purpose.CHARGE_POINT_MAX, stack_level=9
    )
    assert ids(removed) == [1]
    assert ids(after) == [2]


def test_clear_unknown_when_nothing_matches() -> None:
    """Nothing matching removes nothing (the charger answers Unknown) and keeps the value."""
    installed = InstalledProfiles().set(1, profile(1, stack_level=0))
    for criteria in (
        {"profile_id": 99},
        {"connector_id": 2},
        {"purpose": Purpose.TX},
        {"connector_id": 1, "stack_level": 1},
    ):
        after, removed = installed.clear(**criteria)
        assert removed == [] and after == installed
    assert InstalledProfiles().clear() == (InstalledProfiles(), [])


def test_clear_connector_0_matches_only_connector_0() -> None:
    """connectorId 0 clears only the profiles installed on connector 0."""
    installed = InstalledProfiles().set(0, profile(1)).set(1, profile(2))
    after, removed = installed.clear(connector_id=0)
    assert ids(removed) == [1] and ids(after) == [2]


@pytest.mark.parametrize(
    ("criteria", "expected_removed"),
    [
        ({"connector_id": 1}, [2, 3]),
        ({"purpose": Purpose.TX_DEFAULT}, [1, 2]),
        ({"stack_level": 1}, [3]),
        ({"connector_id": 1, "purpose": Purpose.TX_DEFAULT}, [2]),
        ({"purpose": Purpose.TX_DEFAULT, "stack_level": 0}, [1, 2]),
        ({"connector_id": 0, "stack_level": 1}, []),
    ],
)
def test_clear_by_and_of_criteria(criteria: dict[str, Any], expected_removed: list[int]) -> None:
    """Without an id, only profiles matching every given criterion are removed."""
    installed = (
        InstalledProfiles()
        .set(0, profile(1, Purpose.TX_DEFAULT, stack_level=0))
        .set(1, profile(2, Purpose.TX_DEFAULT, stack_level=0))
        .set(1, profile(3, Purpose.TX, stack_level=1, transaction_id=4))
    )
    after, removed = installed.clear(**criteria)
    assert ids(removed) == expected_removed
    assert sorted(ids(after) + ids(removed)) == [1, 2, 3]


def test_tc_067_2024_04() -> None:
    """TC_067 (2024-04): three TxDefault at s, s+1, s+2; clear by id, by criteria, then all."""
    c, s = 1, 2
    installed = InstalledProfiles()
    for n in range(3):
        installed = installed.set(c, profile(n + 1, Purpose.TX_DEFAULT, stack_level=s + n))
    assert ids(installed) == [1, 2, 3]

    installed, removed = installed.clear(profile_id=1)
    assert ids(removed) == [1] and ids(installed) == [2, 3]

    installed, removed = installed.clear(
        connector_id=c, purpose=Purpose.TX_DEFAULT, stack_level=s + 1
    )
    assert ids(removed) == [2] and ids(installed) == [3]

    installed, removed = installed.clear()
    assert ids(removed) == [3] and installed.all() == []


def test_tc_067_2025_11() -> None:
    """TC_067 (2025-11): by criteria TxDefault + stack + connector leaves ChargePointMax and Tx."""
    c, s = 1, 0
    installed = (
        InstalledProfiles()
        .set(0, profile(1, Purpose.CHARGE_POINT_MAX, stack_level=s))
        .set(c, profile(2, Purpose.TX_DEFAULT, stack_level=s))
        .set(c, profile(3, Purpose.TX, stack_level=s, transaction_id=77))
    )
    assert ids(installed) == [1, 2, 3]
    installed, removed = installed.clear(connector_id=c, purpose=Purpose.TX_DEFAULT, stack_level=s)
    assert ids(removed) == [2] and ids(installed) == [1, 3]
    installed, removed = installed.clear()
    assert ids(removed) == [1, 3] and len(installed) == 0


# --- transaction end ----------------------------------------------------------------------


def test_transaction_end_removes_its_tx_profiles_only() -> None:
    """The ended transaction's TxProfiles (and id-less ones on its connector) go; the rest stay."""
    installed = (
        InstalledProfiles()
        .set(0, profile(1, Purpose.CHARGE_POINT_MAX))
        .set(1, profile(2, Purpose.TX_DEFAULT))
        .set(1, profile(3, Purpose.TX, stack_level=0, transaction_id=10))
        .set(1, profile(4, Purpose.TX, stack_level=1))  # set in RemoteStart: no transactionId
        .set(2, profile(5, Purpose.TX, stack_level=0, transaction_id=20))
    )
    after, removed = installed.transaction_ended(1, 10)
    assert ids(removed) == [3, 4]
    assert ids(after) == [1, 2, 5]


def test_transaction_end_keeps_other_transactions_profile() -> None:
    """A TxProfile of another transaction on the same connector stays."""
    installed = InstalledProfiles().set(1, profile(3, Purpose.TX, transaction_id=11))
    after, removed = installed.transaction_ended(1, 10)
    assert removed == [] and after == installed


def test_transaction_end_unknown_id_removes_all_tx_profiles_on_connector() -> None:
    """Without a transaction id every TxProfile on that connector ends."""
    installed = (
        InstalledProfiles()
        .set(1, profile(3, Purpose.TX, transaction_id=11))
        .set(1, profile(4, Purpose.TX_DEFAULT))
    )
    after, removed = installed.transaction_ended(1, None)
    assert ids(removed) == [3] and ids(after) == [4]


# --- persistence --------------------------------------------------------------------------


def test_json_round_trip() -> None:
    """to_json/from_json keep connectors, order and every profile field (via orjson bytes)."""
    full = ChargingProfile(
        charging_profile_id=9,
        stack_level=3,
        purpose=Purpose.TX_DEFAULT,
        kind=ChargingProfileKind.RECURRING,
        recurrency_kind=RecurrencyKind.WEEKLY,
        valid_from=T0,
        valid_to=T0.replace(day=2),
        schedule=ChargingSchedule(
            charging_rate_unit=ChargingRateUnit.W,
            periods=(
                ChargingSchedulePeriod(start_period=0, limit=11000.0, number_phases=3),
                ChargingSchedulePeriod(start_period=3600, limit=4200.5, number_phases=1),
            ),
            duration=7200,
            start_schedule=T0,
            min_charging_rate=1400.0,
        ),
    )
    installed = (
        InstalledProfiles()
        .set(0, profile(1, Purpose.CHARGE_POINT_MAX))
        .set(2, full)
        .set(1, profile(3, Purpose.TX, transaction_id=5))
    )
    data = installed.to_json()
    assert data[1]["connectorId"] == 2
    assert data[1]["chargingProfile"]["validFrom"] == "2024-05-01T12:00:00.123Z"
    assert InstalledProfiles.from_json(orjson.loads(orjson.dumps(data))) == installed
    assert InstalledProfiles.from_json([]) == InstalledProfiles()


@pytest.mark.parametrize(
    "bad",
    [
        [{"chargingProfile": {}}],
        [{"connectorId": "1", "chargingProfile": {}}],
        [{"connectorId": 1, "chargingProfile": {"chargingProfileId": 1}}],
        ["not an object"],
    ],
)
def test_from_json_rejects_malformed(bad: list[object]) -> None:
    """Malformed persisted data raises ProfileFormatError."""
    with pytest.raises(ProfileFormatError):
        InstalledProfiles.from_json(bad)
