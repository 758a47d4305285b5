"""Domain events: what chargers did and what the CSMS did to them, and the bus they go out on.

One frozen dataclass per event, like the OCPP core's events (`edge.ocppj.events`):
subscribers match on the type, and the fields say what each carries. Events reach
consumers (the site control loop, reservations, local lists, smart charging, the web
page) that must never block a charger's reply: subscribers are plain callables that
only record or enqueue.

Published by: `edge.server` (Connected, Disconnected), `edge.features.core` (Booted,
StatusChanged, TransactionStarted, TransactionStopped, MeterValuesReceived),
`edge.features.firmware` (FirmwareStatusChanged), `edge.security.events`
(SecurityEventReceived), `edge.operations` (OperationCompleted).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "Booted",
    "ChargerEvent",
    "ChargerRemoved",
    "Connected",
    "Disconnected",
    "EventBus",
    "FirmwareStatusChanged",
    "MeterValuesReceived",
    "OperationCompleted",
    "SecurityEventReceived",
    "StatusChanged",
    "TransactionStarted",
    "TransactionStopped",
]

log = logging.getLogger(__name__)

Json = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerEvent:
    """Something that happened to one charger, at `at` (the CSMS's clock)."""

    charger_id: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected(ChargerEvent):
    """The charger opened an OCPP connection (it replaces any older one)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected(ChargerEvent):
    """The charger's connection closed (not published for a replaced connection)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerRemoved(ChargerEvent):
    """An operator removed the charger from the registry (`DELETE /api/chargers/{id}`):
    whoever keeps something about it by identity drops it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Booted(ChargerEvent):
    """A BootNotification was answered with `registration`."""

    registration: str
    boot: Json
    """The charger document's boot fields (vendor, model, serialNumber, …)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChanged(ChargerEvent):
    """A StatusNotification for one connector (0: the charger as a whole)."""

    connector_id: int
    status: str
    previous: str
    error_code: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionStarted(ChargerEvent):
    """A StartTransaction is on disk and answered with `transaction_id`."""

    transaction_id: int
    connector_id: int
    id_tag: str
    meter_start: int
    start_time: str
    reservation_id: int | None
    status: str
    """The id tag's AuthorizationStatus in the answer."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionStopped(ChargerEvent):
    """A StopTransaction of a known transaction is on disk."""

    transaction_id: int
    connector_id: int
    meter_stop: int
    reason: str
    energy_wh: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterValuesReceived(ChargerEvent):
    """A MeterValues is on disk; `meter_value` is its list of MeterValue elements."""

    connector_id: int
    transaction_id: int | None
    meter_value: list[Json]


@dataclass(frozen=True, slots=True, kw_only=True)
class FirmwareStatusChanged(ChargerEvent):
    """A FirmwareStatusNotification or DiagnosticsStatusNotification (`action`)."""

    action: str
    status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityEventReceived(ChargerEvent):
    """A security event is journalled: a charger's SecurityEventNotification (`source`
    "charger"), or one the edge raised itself (`source` "edge"; `charger_id` "" when
    it concerns no charger). See `edge.security.events`."""

    type: str
    tech_info: str | None
    critical: bool = False
    source: str = "charger"


@dataclass(frozen=True, slots=True, kw_only=True)
class OperationCompleted(ChargerEvent):
    """A CSMS→charger call the charger answered (secrets masked)."""

    action: str
    request: Json
    response: Json
    origin: str


class EventBus:
    """Synchronous fan-out of ChargerEvents; a failing subscriber is logged, never propagated."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[ChargerEvent], None]] = []

    def subscribe(self, callback: Callable[[ChargerEvent], None]) -> Callable[[], None]:
        """Register a callback; returns a function that unsubscribes it."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscribers)

    def publish(self, event: ChargerEvent) -> None:
        for callback in tuple(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.exception("event subscriber failed on %s", type(event).__name__)
