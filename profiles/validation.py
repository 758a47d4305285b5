"""Checks a charging profile against OCPP 1.6 rules before the CSMS sends it.

A charger rejects (or, worse, silently misapplies) a profile that breaks a rule
of OCPP 1.6 §3.13, §5.16 and §7.8-7.14. `validate_profile` finds those rules
first and explains each broken one in words a technician can act on.

Each finding has a severity:

- ERROR: the profile breaks a SHALL / MUST / SHALL NOT of OCPP 1.6 (with its
  errata) or the JSON schema, goes beyond what the charger declares in its
  smart-charging configuration keys (§9.4), or - conservatively, where the spec
  has no such keyword - gives a value the spec assigns no meaning, so that what a
  charger does with it is unpredictable. The comment next to each rule quotes the
  clause or says which of these it is.
- WARNING: legal OCPP that is useless, surprising or likely a mistake (the spec
  says what a charger does with it, e.g. periods after `duration` are "not
  executed"). Certification tools and operators send such profiles on purpose, so
  a warning is reported, not refused.

Pure: no clock, no I/O. What is known about the charger (its configuration keys,
its running transaction) is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from profiles.model import (
    ChargingProfile,
    ChargingProfileKind,
    ChargingProfilePurpose,
    ChargingRateUnit,
    format_time,
)

__all__ = ["ProfileProblem", "Severity", "errors_in", "validate_profile", "warnings_in"]

_PERIODS = "chargingSchedule.chargingSchedulePeriod"

# ChargingScheduleAllowedChargingRateUnit names the units Current/Power (errata 3.88).
_UNIT_KEY_NAME = {ChargingRateUnit.A: "Current", ChargingRateUnit.W: "Power"}

# AC has at most three phases; more is legal but meaningless (errata 3.34).
_MAX_PHASES = 3


class Severity(StrEnum):
    """How much a ProfileProblem matters."""

    ERROR = "error"
    """Breaks a rule of OCPP 1.6 or a limit the charger declares: do not send."""
    WARNING = "warning"
    """Legal OCPP, but useless, surprising or likely a mistake: tell the operator."""


@dataclass(frozen=True, slots=True)
class ProfileProblem:
    """One finding, readable by a technician: a broken rule, or a legal oddity."""

    field: str
    """OCPP JSON path, e.g. "chargingSchedule.chargingSchedulePeriod[1].startPeriod"."""
    message: str
    """What is wrong, e.g. "must be greater than the previous period's startPeriod (60)"."""
    severity: Severity = Severity.ERROR
    """ERROR unless said otherwise, so a bare ProfileProblem(field, message) is an error."""


def errors_in(problems: Iterable[ProfileProblem]) -> list[ProfileProblem]:
    """The problems of severity ERROR, in their order: the reasons not to send a profile."""
    return [p for p in problems if p.severity is Severity.ERROR]


def warnings_in(problems: Iterable[ProfileProblem]) -> list[ProfileProblem]:
    """The problems of severity WARNING, in their order: legal, but worth showing."""
    return [p for p in problems if p.severity is Severity.WARNING]


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
    """Purpose versus connector and transaction (1.6 §3.13.1, §5.16.2, §6.33, §7.8; errata 3.39).

    Every rule here is an ERROR.
    """
    problems: list[ProfileProblem] = []
    purpose = profile.purpose
    if connector_id < 0:
        # Errata 3.39: "If an invalid value for connectorId is used in SetChargingProfile.req,
        # then the Charge Point SHALL respond with ... CALLERROR: PropertyConstraintViolation";
        # in RemoteStartTransaction §6.33: "connectorId SHALL be > 0".
        problems.append(ProfileProblem("connectorId", f"must be 0 or more, not {connector_id}"))

    if in_remote_start:
        # §5.16.2 (errata 3.41): "If the Central System includes a ChargingProfile, the
        # ChargingProfilePurpose MUST be set to TxProfile and the transactionId SHALL NOT be
        # set" (the transaction does not exist yet); likewise §5.11 and §6.33.
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
        # §3.13.1, a normative section: "ChargePointMaxProfile can only be set at Charge
        # Point ConnectorId 0." ("can only" rather than SHALL, but a prohibition all the same;
        # errata 3.53 likewise reads connectorId 0 + ChargePointMaxProfile as the overall limit)
        problems.append(
            ProfileProblem(
                "connectorId",
                "a ChargePointMaxProfile limits the whole charge point and can only be set on "
                f"connector 0, not connector {connector_id}",
            )
        )
    elif purpose is ChargingProfilePurpose.TX:
        if connector_id == 0:
            # §3.13.1: "TxProfile SHALL only be set at Charge Point ConnectorId >0."
            problems.append(
                ProfileProblem(
                    "connectorId",
                    "a TxProfile applies to one transaction and must be set on a connector "
                    "(1 or higher), not connector 0",
                )
            )
        elif active_transaction_id is None:
            # §3.13.1: "If there is no transaction active on the connector specified in a
            # charging profile of type TxProfile, then the Charge Point SHALL discard it and
            # return an error status in SetChargingProfile.conf." (also §5.16.4)
            problems.append(
                ProfileProblem(
                    "chargingProfilePurpose",
                    f"no transaction is running on connector {connector_id}; a TxProfile can "
                    "only be set during a transaction (or inside RemoteStartTransaction)",
                )
            )
        elif profile.transaction_id is not None and profile.transaction_id != active_transaction_id:
            # §7.8: the transactionId is there "to match the profile to a specific transaction";
            # the transaction it names is not active on this connector, so by the §3.13.1 rule
            # above the Charge Point SHALL discard it (and §7.10: a TxProfile "SHALL cease to
            # be valid when the transaction terminates"). Inferred, not a literal clause.
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


def _check_identity(
    profile: ChargingProfile, *, max_stack_level: int | None
) -> list[ProfileProblem]:
    """chargingProfileId, stackLevel, validFrom/validTo (1.6 §3.13.2, §7.8, §9.4.1)."""
    problems: list[ProfileProblem] = []
    if profile.charging_profile_id < 0:
        # WARNING: the schema allows any integer and §7.8 asks only for a "Unique identifier
        # for this profile"; a negative id identifies a profile as well as any other, it is
        # just unusual enough to be a slip.
        problems.append(
            ProfileProblem(
                "chargingProfileId",
                f"is negative ({profile.charging_profile_id}); OCPP allows it, but it is unusual",
                Severity.WARNING,
            )
        )
    if profile.stack_level < 0:
        # §7.8 stackLevel: field type "integer >=0"; "Lowest level is 0."
        problems.append(
            ProfileProblem("stackLevel", f"must be 0 or more, not {profile.stack_level}")
        )
    elif max_stack_level is not None and profile.stack_level > max_stack_level:
        # §9.4.1 ChargeProfileMaxStackLevel: "Max StackLevel of a ChargingProfile".
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
        # WARNING: no rule orders validFrom and validTo (§7.8); such a profile is simply never
        # valid. It is not harmless, though: the charger still installs it, and by §3.13.2 it
        # "SHALL replace" an installed profile with the same stackLevel and purpose.
        problems.append(
            ProfileProblem(
                "validTo",
                f"is not later than validFrom ({format_time(profile.valid_from)}); got "
                f"{format_time(profile.valid_to)}, so the profile is never valid (it still "
                "replaces an installed profile with the same stackLevel and purpose)",
                Severity.WARNING,
            )
        )
    return problems


def _check_kind(profile: ChargingProfile) -> list[ProfileProblem]:
    """Kind versus startSchedule and recurrencyKind (1.6 §7.9, §7.13; errata 3.56, 3.79)."""
    problems: list[ProfileProblem] = []
    kind = profile.kind
    has_start = profile.schedule.start_schedule is not None
    if kind is ChargingProfileKind.ABSOLUTE and not has_start:
        # ERROR, conservatively (no SHALL keyword): §7.9 Absolute: "Schedule periods are
        # relative to a fixed point in time defined in the schedule" - without startSchedule
        # there is no such point. Chargers refuse it (EVerest libocpp does by default).
        problems.append(
            ProfileProblem(
                "chargingSchedule.startSchedule",
                "is required for an Absolute profile: its periods count from this time",
            )
        )
    elif kind is ChargingProfileKind.RELATIVE and has_start:
        # WARNING: no rule forbids it; startSchedule is "Optional. Starting point of an
        # absolute schedule" (§7.13) and a Relative profile's start point "is determined by
        # the charge point" (§7.9), so the field only contradicts the kind. OCTT's 2025-11
        # TC_057/TC_059 do expect it left out of a Relative profile.
        problems.append(
            ProfileProblem(
                "chargingSchedule.startSchedule",
                "does not belong on a Relative profile: its periods count from the start of "
                "the transaction, which the charger determines; leave it out",
                Severity.WARNING,
            )
        )
    elif kind is ChargingProfileKind.RECURRING:
        if profile.recurrency_kind is None:
            # ERROR, conservatively (no SHALL keyword): §7.9 Recurring: "The schedule restarts
            # periodically"; only recurrencyKind (Daily or Weekly, §7.37) says how often.
            problems.append(
                ProfileProblem(
                    "recurrencyKind",
                    "is required for a Recurring profile (Daily or Weekly)",
                )
            )
        if not has_start:
            # ERROR, conservatively (no SHALL keyword): errata 3.79 defines Daily as "restarts
            # every 24 hours, at the same time as in the startSchedule" and Weekly likewise;
            # without startSchedule there is no such time.
            problems.append(
                ProfileProblem(
                    "chargingSchedule.startSchedule",
                    "is required for a Recurring profile: each day or week restarts from this time",
                )
            )
    if kind is not ChargingProfileKind.RECURRING and profile.recurrency_kind is not None:
        # Errata 3.56, §7.8 recurrencyKind: "SHALL only be used when the field:
        # concurrencyKind [sic: chargingProfileKind] is set to: Recurring."
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
    """The schedule and its periods (1.6 §5.16.4, §7.13, §7.14, §9.4; errata 3.34, 3.88)."""
    problems: list[ProfileProblem] = []
    schedule = profile.schedule
    unit = schedule.charging_rate_unit
    duration = schedule.duration

    if allowed_units is not None and unit not in allowed_units:
        # §9.4.2 ChargingScheduleAllowedChargingRateUnit, errata 3.88: "'Current' means only
        # ChargingSchedules with ChargingRateUnit: 'A' allowed; 'Power' means only
        # ChargingSchedules with ChargingRateUnit: 'W' allowed".
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
        # WARNING: the schema allows any integer and no rule bounds it; every period then
        # starts after the duration, and §5.16.4 says such periods "SHALL not be executed":
        # the schedule does nothing, which is useless but well defined.
        problems.append(
            ProfileProblem(
                "chargingSchedule.duration",
                f"is negative ({duration} s), so no period of the schedule is ever executed",
                Severity.WARNING,
            )
        )
    if schedule.min_charging_rate is not None:
        rate = schedule.min_charging_rate
        if rate < 0:
            # WARNING: the schema has no minimum, and minChargingRate is only a hint for a
            # local smart charging algorithm (§7.13); a negative minimum rules nothing out.
            problems.append(
                ProfileProblem(
                    "chargingSchedule.minChargingRate",
                    f"is negative ({_number(rate)}); as a minimum it rules nothing out",
                    Severity.WARNING,
                )
            )
        elif _has_more_than_one_decimal(rate):
            # Schema: "multipleOf": 0.1; §7.13: "Accepts at most one digit fraction (e.g. 8.1)".
            problems.append(
                ProfileProblem(
                    "chargingSchedule.minChargingRate",
                    f"may have at most one decimal, not {rate!r}",
                )
            )

    periods = schedule.periods
    if not periods:
        # §7.13 chargingSchedulePeriod: cardinality 1..*, "Required."
        problems.append(ProfileProblem(_PERIODS, "must contain at least one period"))
        return problems
    if max_periods is not None and len(periods) > max_periods:
        # §9.4.3 ChargingScheduleMaxPeriods: "Maximum number of periods that may be defined
        # per ChargingSchedule."
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
            # §5.16.4 (errata 3.45, 4.13) and §7.13 (errata 3.70, 4.17): "The startPeriod of
            # the first ChargingSchedulePeriod SHALL always be 0."
            problems.append(
                ProfileProblem(
                    f"{path}.startPeriod",
                    f"the first period must start at 0, not {start}",
                )
            )
        elif start < 0:
            # ERROR, conservatively (no SHALL keyword): §7.14 startPeriod is the "Start of the
            # period, in seconds from the start of schedule"; a negative one starts before the
            # schedule does, which has no meaning.
            problems.append(
                ProfileProblem(f"{path}.startPeriod", f"must be 0 or more seconds, not {start}")
            )
        elif previous is not None and start <= previous:
            # ERROR, conservatively (no SHALL keyword): §7.14: "The value of StartPeriod also
            # defines the stop time of the previous period", so out of order the previous
            # period would stop before it starts; chargers differ in which limit they apply.
            problems.append(
                ProfileProblem(
                    f"{path}.startPeriod",
                    f"must be greater than the previous period's startPeriod ({previous})",
                )
            )
        elif duration is not None and duration >= 0 and start >= duration:
            # WARNING: legal; §5.16.4: "If the chargingSchedulePeriod is longer than duration,
            # the remainder periods SHALL not be executed." The charger accepts the profile and
            # skips the period; certification tools and operators send such schedules.
            problems.append(
                ProfileProblem(
                    f"{path}.startPeriod",
                    f"starts at {start} s, at or after the schedule's duration ({duration} s), "
                    "so it is never executed",
                    Severity.WARNING,
                )
            )
        previous = start

        if period.limit < 0:
            # ERROR, conservatively (no SHALL keyword, no schema minimum): a limit is the
            # "maximum power or current" of the period (§7.13, §7.14) and OCPP 1.6 has no
            # discharging, so a negative limit has no meaning (EVerest libocpp refuses it).
            problems.append(
                ProfileProblem(f"{path}.limit", f"must be 0 or more, not {_number(period.limit)}")
            )
        elif _has_more_than_one_decimal(period.limit):
            # Schema: "multipleOf": 0.1; §7.14 limit: "Accepts at most one digit fraction".
            problems.append(
                ProfileProblem(
                    f"{path}.limit",
                    f"may have at most one decimal (e.g. 6.0 or 6.5), not {period.limit!r}",
                )
            )
        phases = period.number_phases
        if phases is not None and phases < 1:
            # ERROR, conservatively (no SHALL keyword): §7.14 numberPhases is "The number of
            # phases that can be used for charging"; with none, a W limit cannot be turned
            # into a phase current (§7.12 divides by numberPhases).
            problems.append(
                ProfileProblem(f"{path}.numberPhases", f"must be 1, 2 or 3, not {phases}")
            )
        elif phases is not None and phases > _MAX_PHASES:
            # WARNING: errata 3.34 defines it: with numberPhases above what the charger can use
            # it "SHALL use the 'limit' as is given, for the amount of phases that are/can be
            # used" and "SHALL NOT calculate a new 'limit'".
            problems.append(
                ProfileProblem(
                    f"{path}.numberPhases",
                    f"is {phases}, more than the {_MAX_PHASES} phases of AC; the charger applies "
                    "the limit as given to the phases it can use (errata 3.34)",
                    Severity.WARNING,
                )
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
    """Every OCPP 1.6 rule `profile` breaks when set on `connector_id`, and every legal oddity.

    Args:
        profile: the profile to send.
        connector_id: the connectorId of SetChargingProfile; in RemoteStartTransaction
            its connectorId (0 when it is left out).
        active_transaction_id: the transaction running on that connector, if any.
        in_remote_start: the profile goes inside RemoteStartTransaction, where "the
            ChargingProfilePurpose MUST be set to TxProfile and the transactionId SHALL
            NOT be set" (1.6 §5.16.2). No transaction is running yet: the TxProfile is
            for "a new transaction when this is started via a RemoteStartTransaction.req"
            (§7.10).
        max_stack_level: ChargeProfileMaxStackLevel, when known.
        max_periods: ChargingScheduleMaxPeriods, when known.
        allowed_units: ChargingScheduleAllowedChargingRateUnit, when known.

    Returns:
        The problems, empty if none. Refuse to send only for `errors_in(...)`; show
        `warnings_in(...)` to the operator and send anyway.

    Problems come in a fixed order: placement, identity, kind, schedule, periods.
    """
    problems = _check_placement(
        profile,
        connector_id=connector_id,
        active_transaction_id=active_transaction_id,
        in_remote_start=in_remote_start,
    )
    problems += _check_identity(profile, max_stack_level=max_stack_level)
    problems += _check_kind(profile)
    problems += _check_schedule(profile, max_periods=max_periods, allowed_units=allowed_units)
    return problems
