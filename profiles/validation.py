"""Checks a charging profile against OCPP 1.6 rules before the CSMS sends it.

A charger rejects (or, worse, silently misapplies) a profile that breaks a rule
of OCPP 1.6 §3.13, §5.16 and §7.8-7.14. `validate_profile` finds those rules
first and explains each broken one in words a technician can act on.

Pure: no clock, no I/O. What is known about the charger (its configuration keys,
its running transaction) is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from profiles.model import (
    ChargingProfile,
    ChargingProfileKind,
    ChargingProfilePurpose,
    ChargingRateUnit,
    format_time,
)

__all__ = ["ProfileProblem", "validate_profile"]

_PERIODS = "chargingSchedule.chargingSchedulePeriod"

# ChargingScheduleAllowedChargingRateUnit names the units Current/Power (errata 3.88).
_UNIT_KEY_NAME = {ChargingRateUnit.A: "Current", ChargingRateUnit.W: "Power"}


@dataclass(frozen=True, slots=True)
class ProfileProblem:
    """One broken rule, readable by a technician."""

    field: str
    """OCPP JSON path, e.g. "chargingSchedule.chargingSchedulePeriod[1].startPeriod"."""
    message: str
    """What is wrong, e.g. "must be greater than the previous period's startPeriod (60)"."""


def _has_more_than_one_decimal(value: float) -> bool:
    """True for 6.05; False for 6.0 and 6.1 (`multipleOf: 0.1`, tolerant of float noise)."""
    return abs(value * 10 - round(value * 10)) > 1e-6


def _number(value: float) -> str:
    """6.0 → "6", 6.5 → "6.5"; for messages."""
    return f"{value:g}"


def _check_placement(
    profile: ChargingProfile,
    *,
    connector_id: int,
    active_transaction_id: int | None,
    in_remote_start: bool,
) -> list[ProfileProblem]:
    """Purpose versus connector and transaction (1.6 §3.13.2, §5.11, §5.16.1, §7.8, §7.10)."""
    problems: list[ProfileProblem] = []
    purpose = profile.purpose
    if connector_id < 0:
        problems.append(ProfileProblem("connectorId", f"must be 0 or more, not {connector_id}"))

    if in_remote_start:
        # §5.11: "the ChargingProfilePurpose MUST be set to TxProfile" and the
        # transactionId "SHALL NOT be set" (the transaction does not exist yet).
        if purpose is not ChargingProfilePurpose.TX:
            problems.append(
                ProfileProblem(
                    "chargingProfilePurpose",
                    f"must be TxProfile in RemoteStartTransaction, not {purpose}",
                )
            )
        if profile.transaction_id is not None:
            problems.append(
                ProfileProblem(
                    "transactionId",
                    "must be left out in RemoteStartTransaction: the transaction does not exist "
                    f"yet (got {profile.transaction_id})",
                )
            )
        return problems

    if purpose is ChargingProfilePurpose.CHARGE_POINT_MAX and connector_id != 0:
        # §7.10: ChargePointMaxProfile "can only be set at Charge Point ConnectorId 0".
        problems.append(
            ProfileProblem(
                "connectorId",
                "a ChargePointMaxProfile limits the whole charge point and can only be set on "
                f"connector 0, not connector {connector_id}",
            )
        )
    elif purpose is ChargingProfilePurpose.TX:
        # §3.13.2: "TxProfile SHALL only be set at Charge Point ConnectorId >0" and
        # "only ... when a transaction is active on that connector".
        if connector_id == 0:
            problems.append(
                ProfileProblem(
                    "connectorId",
                    "a TxProfile applies to one transaction and must be set on a connector "
                    "(1 or higher), not connector 0",
                )
            )
        elif active_transaction_id is None:
            problems.append(
                ProfileProblem(
                    "chargingProfilePurpose",
                    f"no transaction is running on connector {connector_id}; a TxProfile can "
                    "only be set during a transaction (or inside RemoteStartTransaction)",
                )
            )
        elif profile.transaction_id is not None and profile.transaction_id != active_transaction_id:
            problems.append(
                ProfileProblem(
                    "transactionId",
                    f"is {profile.transaction_id}, but the transaction running on connector "
                    f"{connector_id} is {active_transaction_id}",
                )
            )

    if purpose is not ChargingProfilePurpose.TX and profile.transaction_id is not None:
        # §7.8 transactionId: "Only valid if ChargingProfilePurpose is set to TxProfile".
        problems.append(
            ProfileProblem(
                "transactionId",
                f"is only allowed on a TxProfile; leave it out of a {purpose}",
            )
        )
    return problems


def _check_kind(profile: ChargingProfile) -> list[ProfileProblem]:
    """Kind versus startSchedule and recurrencyKind (1.6 §7.9; errata 3.56)."""
    problems: list[ProfileProblem] = []
    kind = profile.kind
    has_start = profile.schedule.start_schedule is not None
    if kind is ChargingProfileKind.ABSOLUTE and not has_start:
        problems.append(
            ProfileProblem(
                "chargingSchedule.startSchedule",
                "is required for an Absolute profile: its periods count from this time",
            )
        )
    elif kind is ChargingProfileKind.RELATIVE and has_start:
        problems.append(
            ProfileProblem(
                "chargingSchedule.startSchedule",
                "must be left out of a Relative profile: its periods count from the start of "
                "the transaction",
            )
        )
    elif kind is ChargingProfileKind.RECURRING:
        if profile.recurrency_kind is None:
            problems.append(
                ProfileProblem(
                    "recurrencyKind",
                    "is required for a Recurring profile (Daily or Weekly)",
                )
            )
        if not has_start:
            problems.append(
                ProfileProblem(
                    "chargingSchedule.startSchedule",
                    "is required for a Recurring profile: each day or week restarts from this time",
                )
            )
    if kind is not ChargingProfileKind.RECURRING and profile.recurrency_kind is not None:
        problems.append(
            ProfileProblem(
                "recurrencyKind",
                f"is only allowed on a Recurring profile; leave it out of this {kind} profile",
            )
        )
    return problems


def _check_schedule(
    profile: ChargingProfile,
    *,
    max_periods: int | None,
    allowed_units: frozenset[ChargingRateUnit] | None,
) -> list[ProfileProblem]:
    """The schedule and its periods (1.6 §3.13.5, §7.13, §7.14, §9.1)."""
    problems: list[ProfileProblem] = []
    schedule = profile.schedule
    unit = schedule.charging_rate_unit
    duration = schedule.duration

    if allowed_units is not None and unit not in allowed_units:
        allowed = ", ".join(
            f"{u} ({_UNIT_KEY_NAME[u]})" for u in sorted(allowed_units, key=lambda u: u.value)
        )
        problems.append(
            ProfileProblem(
                "chargingSchedule.chargingRateUnit",
                f"this charger does not accept limits in {unit}; it accepts only "
                f"{allowed or 'no unit'} (ChargingScheduleAllowedChargingRateUnit)",
            )
        )
    if duration is not None and duration < 0:
        problems.append(
            ProfileProblem(
                "chargingSchedule.duration", f"must be 0 or more seconds, not {duration}"
            )
        )
    if schedule.min_charging_rate is not None:
        rate = schedule.min_charging_rate
        if rate < 0:
            problems.append(
                ProfileProblem(
                    "chargingSchedule.minChargingRate", f"must be 0 or more, not {_number(rate)}"
                )
            )
        elif _has_more_than_one_decimal(rate):
            problems.append(
                ProfileProblem(
                    "chargingSchedule.minChargingRate",
                    f"may have at most one decimal, not {rate!r}",
                )
            )

    periods = schedule.periods
    if not periods:
        problems.append(ProfileProblem(_PERIODS, "must contain at least one period"))
        return problems
    if max_periods is not None and len(periods) > max_periods:
        problems.append(
            ProfileProblem(
                _PERIODS,
                f"has {len(periods)} periods, but this charger accepts at most {max_periods} "
                "(ChargingScheduleMaxPeriods)",
            )
        )

    previous: int | None = None
    for index, period in enumerate(periods):
        path = f"{_PERIODS}[{index}]"
        start = period.start_period
        if index == 0 and start != 0:
            # §3.13.5 / §7.14: "The startPeriod of the first period SHALL always be 0".
            problems.append(
                ProfileProblem(
                    f"{path}.startPeriod",
                    f"the first period must start at 0, not {start}",
                )
            )
        elif start < 0:
            problems.append(
                ProfileProblem(f"{path}.startPeriod", f"must be 0 or more seconds, not {start}")
            )
        elif previous is not None and start <= previous:
            problems.append(
                ProfileProblem(
                    f"{path}.startPeriod",
                    f"must be greater than the previous period's startPeriod ({previous})",
                )
            )
        elif duration is not None and duration >= 0 and start >= duration:
            # §7.13 duration: periods starting after it are not executed.
            problems.append(
                ProfileProblem(
                    f"{path}.startPeriod",
                    f"starts at {start} s, at or after the schedule's duration ({duration} s), "
                    "so it is never executed",
                )
            )
        previous = start

        if period.limit < 0:
            problems.append(
                ProfileProblem(f"{path}.limit", f"must be 0 or more, not {_number(period.limit)}")
            )
        elif _has_more_than_one_decimal(period.limit):
            problems.append(
                ProfileProblem(
                    f"{path}.limit",
                    f"may have at most one decimal (e.g. 6.0 or 6.5), not {period.limit!r}",
                )
            )
        phases = period.number_phases
        if phases is not None and not 1 <= phases <= 3:
            problems.append(
                ProfileProblem(f"{path}.numberPhases", f"must be 1, 2 or 3, not {phases}")
            )
    return problems


def validate_profile(
    profile: ChargingProfile,
    *,
    connector_id: int,
    active_transaction_id: int | None,
    in_remote_start: bool = False,
    max_stack_level: int | None = None,
    max_periods: int | None = None,
    allowed_units: frozenset[ChargingRateUnit] | None = None,
) -> list[ProfileProblem]:
    """Every OCPP 1.6 rule `profile` breaks when set on `connector_id`; empty if none.

    Args:
        profile: the profile to send.
        connector_id: the connectorId of SetChargingProfile; in RemoteStartTransaction
            its connectorId (0 when it is left out).
        active_transaction_id: the transaction running on that connector, if any.
        in_remote_start: the profile goes inside RemoteStartTransaction, where "the
            ChargingProfilePurpose MUST be set to TxProfile" and the transactionId
            is not yet known (1.6 §5.11, §3.13.2: "not possible to set a TxProfile in
            advance of a transaction, except inside RemoteStartTransaction").
        max_stack_level: ChargeProfileMaxStackLevel, when known.
        max_periods: ChargingScheduleMaxPeriods, when known.
        allowed_units: ChargingScheduleAllowedChargingRateUnit, when known.

    Problems come in a fixed order: placement, identity, kind, schedule, periods.
    """
    problems = _check_placement(
        profile,
        connector_id=connector_id,
        active_transaction_id=active_transaction_id,
        in_remote_start=in_remote_start,
    )
    if profile.charging_profile_id < 0:
        # The schema allows any integer; a negative id is almost certainly a bug.
        problems.append(
            ProfileProblem(
                "chargingProfileId", f"must be 0 or more, not {profile.charging_profile_id}"
            )
        )
    # §7.8 stackLevel: "Value ≥ 0"; §9.1.8 ChargeProfileMaxStackLevel.
    if profile.stack_level < 0:
        problems.append(
            ProfileProblem("stackLevel", f"must be 0 or more, not {profile.stack_level}")
        )
    elif max_stack_level is not None and profile.stack_level > max_stack_level:
        problems.append(
            ProfileProblem(
                "stackLevel",
                f"is {profile.stack_level}, but this charger accepts at most {max_stack_level} "
                "(ChargeProfileMaxStackLevel)",
            )
        )
    if (
        profile.valid_from is not None
        and profile.valid_to is not None
        and profile.valid_from >= profile.valid_to
    ):
        problems.append(
            ProfileProblem(
                "validTo",
                f"must be later than validFrom ({format_time(profile.valid_from)}); "
                f"got {format_time(profile.valid_to)}",
            )
        )
    problems += _check_kind(profile)
    problems += _check_schedule(profile, max_periods=max_periods, allowed_units=allowed_units)
    return problems
