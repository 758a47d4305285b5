"""The OCPP 1.6 charging-profile model: typed, immutable, parsed from and rendered to OCPP JSON.

Field names follow the spec in snake_case with explicit wire names (no case
conversion by rule). Times are aware UTC datetimes; rendering gives ISO 8601 with
milliseconds and `Z`. Limits are rendered with at most one decimal (the schemas'
`multipleOf: 0.1`), so 6 A is `6.0`, never `5.999999`.

Nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from profiles.times import format_time
from profiles.times import parse_time as _parse_time

__all__ = [
    "DEFAULT_NUMBER_PHASES",
    "ChargingProfile",
    "ChargingProfileKind",
    "ChargingProfilePurpose",
    "ChargingRateUnit",
    "ChargingSchedule",
    "ChargingSchedulePeriod",
    "ProfileFormatError",
    "RecurrencyKind",
    "format_time",
    "parse_profile",
    "parse_schedule",
    "parse_time",
    "render_limit",
    "render_profile",
    "render_schedule",
]

# numberPhases absent means 3 (OCPP 1.6 §7.13).
DEFAULT_NUMBER_PHASES = 3


class ChargingProfilePurpose(StrEnum):
    """ChargingProfilePurposeType (OCPP 1.6 §7.10)."""

    CHARGE_POINT_MAX = "ChargePointMaxProfile"
    """Limits the whole charge point; only on connectorId 0."""
    TX_DEFAULT = "TxDefaultProfile"
    """Default for new transactions; on connector 0 (all connectors) or one connector."""
    TX = "TxProfile"
    """For one running transaction; replaces TxDefaultProfile for it."""


class ChargingProfileKind(StrEnum):
    """ChargingProfileKindType (OCPP 1.6 §7.9)."""

    ABSOLUTE = "Absolute"
    """Periods are relative to startSchedule."""
    RECURRING = "Recurring"
    """The schedule restarts every day or week from startSchedule."""
    RELATIVE = "Relative"
    """Periods are relative to the start of the transaction."""


class RecurrencyKind(StrEnum):
    """RecurrencyKindType (OCPP 1.6 §7.41)."""

    DAILY = "Daily"
    WEEKLY = "Weekly"


class ChargingRateUnit(StrEnum):
    """ChargingRateUnitType (OCPP 1.6 §7.12): A is per phase, W is the total."""

    A = "A"
    W = "W"


class ProfileFormatError(ValueError):
    """OCPP JSON that does not describe a charging profile or schedule.

    Payloads are schema-validated at the edge before they get here; this is raised
    for what a schema cannot express (e.g. an unparseable time) or for data that
    bypassed validation.
    """


def parse_time(value: str) -> datetime:
    """ISO 8601 date-time to an aware UTC datetime (`profiles.times.parse_time`).

    Raises:
        ProfileFormatError: not such a date-time.
    """
    try:
        return _parse_time(value)
    except ValueError:
        raise ProfileFormatError(f"not an ISO 8601 time: {value!r}") from None


def render_limit(value: float) -> float:
    """A limit as OCPP carries it: at most one decimal (`multipleOf: 0.1`)."""
    return round(float(value), 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargingSchedulePeriod:
    """From `start_period` seconds after the schedule's start, charge at most `limit`."""

    start_period: int
    limit: float  # in the schedule's ChargingRateUnit: A per phase, or W in total
    number_phases: int | None = None  # None: absent on the wire, which means 3

    @property
    def phases(self) -> int:
        return self.number_phases if self.number_phases is not None else DEFAULT_NUMBER_PHASES


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargingSchedule:
    charging_rate_unit: ChargingRateUnit
    periods: tuple[ChargingSchedulePeriod, ...]
    duration: int | None = None  # s; None: the last period holds indefinitely
    start_schedule: datetime | None = None
    min_charging_rate: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargingProfile:
    charging_profile_id: int
    stack_level: int
    purpose: ChargingProfilePurpose
    kind: ChargingProfileKind
    schedule: ChargingSchedule
    transaction_id: int | None = None
    recurrency_kind: RecurrencyKind | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None


def _field(data: Mapping[str, Any], key: str) -> Any:
    try:
        return data[key]
    except KeyError:
        raise ProfileFormatError(f"{key}: required field missing") from None


def _enum(cls: type[Any], data: Mapping[str, Any], key: str) -> Any:
    raw = _field(data, key)
    try:
        return cls(raw)
    except ValueError:
        raise ProfileFormatError(f"{key}: {raw!r} is not one of {[e.value for e in cls]}") from None


def _optional_time(data: Mapping[str, Any], key: str) -> datetime | None:
    raw = data.get(key)
    return None if raw is None else parse_time(raw)


def parse_schedule(data: Mapping[str, Any]) -> ChargingSchedule:
    """A ChargingSchedule from OCPP JSON."""
    raw_periods = _field(data, "chargingSchedulePeriod")
    if not isinstance(raw_periods, list):
        raise ProfileFormatError("chargingSchedulePeriod: must be a list")
    periods = tuple(
        ChargingSchedulePeriod(
            start_period=int(_field(p, "startPeriod")),
            limit=float(_field(p, "limit")),
            number_phases=p.get("numberPhases"),
        )
        for p in raw_periods
    )
    min_rate = data.get("minChargingRate")
    return ChargingSchedule(
        charging_rate_unit=_enum(ChargingRateUnit, data, "chargingRateUnit"),
        periods=periods,
        duration=data.get("duration"),
        start_schedule=_optional_time(data, "startSchedule"),
        min_charging_rate=None if min_rate is None else float(min_rate),
    )


def parse_profile(data: Mapping[str, Any]) -> ChargingProfile:
    """A ChargingProfile from OCPP JSON (`csChargingProfiles` / `chargingProfile`).

    Raises:
        ProfileFormatError: a required field is missing or a value is malformed.
    """
    recurrency = None
    if data.get("recurrencyKind") is not None:
        recurrency = _enum(RecurrencyKind, data, "recurrencyKind")
    return ChargingProfile(
        charging_profile_id=int(_field(data, "chargingProfileId")),
        stack_level=int(_field(data, "stackLevel")),
        purpose=_enum(ChargingProfilePurpose, data, "chargingProfilePurpose"),
        kind=_enum(ChargingProfileKind, data, "chargingProfileKind"),
        schedule=parse_schedule(_field(data, "chargingSchedule")),
        transaction_id=data.get("transactionId"),
        recurrency_kind=None
        if recurrency is None
        else _enum(RecurrencyKind, data, "recurrencyKind"),
        valid_from=_optional_time(data, "validFrom"),
        valid_to=_optional_time(data, "validTo"),
    )


def render_schedule(schedule: ChargingSchedule) -> dict[str, Any]:
    """OCPP JSON for a schedule; absent optional fields are omitted, not null."""
    periods = []
    for period in schedule.periods:
        item: dict[str, Any] = {
            "startPeriod": period.start_period,
            "limit": render_limit(period.limit),
        }
        if period.number_phases is not None:
            item["numberPhases"] = period.number_phases
        periods.append(item)
    data: dict[str, Any] = {}
    if schedule.duration is not None:
        data["duration"] = schedule.duration
    if schedule.start_schedule is not None:
        data["startSchedule"] = format_time(schedule.start_schedule)
    data["chargingRateUnit"] = str(schedule.charging_rate_unit)
    data["chargingSchedulePeriod"] = periods
    if schedule.min_charging_rate is not None:
        data["minChargingRate"] = render_limit(schedule.min_charging_rate)
    return data


def render_profile(profile: ChargingProfile) -> dict[str, Any]:
    """OCPP JSON for a profile, valid for SetChargingProfile's schema."""
    data: dict[str, Any] = {
        "chargingProfileId": profile.charging_profile_id,
        "stackLevel": profile.stack_level,
        "chargingProfilePurpose": str(profile.purpose),
        "chargingProfileKind": str(profile.kind),
    }
    if profile.transaction_id is not None:
        data["transactionId"] = profile.transaction_id
    if profile.recurrency_kind is not None:
        data["recurrencyKind"] = str(profile.recurrency_kind)
    if profile.valid_from is not None:
        data["validFrom"] = format_time(profile.valid_from)
    if profile.valid_to is not None:
        data["validTo"] = format_time(profile.valid_to)
    data["chargingSchedule"] = render_schedule(profile.schedule)
    return data
