"""Helpers the test modules share."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, overload

from edge.sim.charger import Answer, Payload, RawCharger
from tests.conftest import TIME_SCALE, Api, ocpp_url

if TYPE_CHECKING:
    from edge.app import App

Json = dict[str, Any]
T = TypeVar("T")


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and Z, as chargers send it; a naive moment is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    """The current time as `iso` writes it."""
    return iso(datetime.now(UTC))


class Clock:
    """A clock the test sets or moves by hand, for an App's or a Journal's `clock`."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = datetime.now(UTC) if now is None else now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@overload
async def eventually(
    probe: Callable[[], Awaitable[T]], *, timeout: float = ..., interval: float = ...
) -> T: ...


@overload
async def eventually(
    probe: Callable[[], T], *, timeout: float = ..., interval: float = ...
) -> T: ...


async def eventually(
    probe: Callable[[], Any],
    *,
    timeout: float = 5 * TIME_SCALE,
    interval: float = 0.02,
) -> Any:
    """Call `probe` (plain or async) until it gives a true value, and return that value.

    For what a test can only look at, not wait on: what the API shows, the journal written
    behind the answer, the App's state. TimeoutError after `timeout` seconds.
    """
    async with asyncio.timeout(timeout):
        while True:
            value = probe()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(interval)


async def eventually_listed(api: Api, path: str, count: int = 1) -> list[Json]:
    """What GET `path` lists once it lists `count` items or more: for lists the App fills
    behind its answers (journal events, received files)."""

    async def enough() -> list[Json]:
        found: list[Json] = await api.get(path)
        return found if len(found) >= count else []

    return await eventually(enough)


async def authorize(cp: RawCharger, id_tag: str) -> str:
    """Authorize `id_tag`; the idTagInfo status the CSMS answers."""
    conf = await cp.call("Authorize", {"idTag": id_tag})
    assert set(conf) == {"idTagInfo"}, conf
    status: str = conf["idTagInfo"]["status"]
    return status


async def start_transaction(
    cp: RawCharger,
    id_tag: str,
    *,
    connector_id: int = 1,
    meter_start: int = 0,
    timestamp: str | None = None,
    reservation_id: int | None = None,
    expect: str = "Accepted",
) -> int:
    """StartTransaction (stamped now unless `timestamp`), answered with idTagInfo status
    `expect`; the transaction id the CSMS issued."""
    request: Json = {
        "connectorId": connector_id,
        "idTag": id_tag,
        "meterStart": meter_start,
        "timestamp": timestamp or now_iso(),
    }
    if reservation_id is not None:
        request["reservationId"] = reservation_id
    conf = await cp.call("StartTransaction", request)
    assert conf["idTagInfo"]["status"] == expect, conf
    transaction_id = conf["transactionId"]
    assert isinstance(transaction_id, int) and not isinstance(transaction_id, bool), conf
    return transaction_id


async def charging(
    cp: RawCharger,
    id_tag: str,
    *,
    connector_id: int = 1,
    meter_start: int = 0,
    reservation_id: int | None = None,
) -> int:
    """The reusable state Charging: Authorize Accepted, Preparing, StartTransaction Accepted
    (carrying `reservation_id` if given), Charging; the transaction id the CSMS issued."""
    assert await authorize(cp, id_tag) == "Accepted"
    assert await cp.status(connector_id, "Preparing") == {}
    transaction_id = await start_transaction(
        cp,
        id_tag,
        connector_id=connector_id,
        meter_start=meter_start,
        reservation_id=reservation_id,
    )
    assert await cp.status(connector_id, "Charging") == {}
    return transaction_id


@asynccontextmanager
async def booted(
    app: App,
    charger_id: str,
    *,
    available: Iterable[int] = (0, 1),
    answers: Mapping[str, Answer] | None = None,
    boot: Payload | None = None,
) -> AsyncIterator[RawCharger]:
    """A `RawCharger` connected to `app` as `charger_id`, its BootNotification Accepted, then
    each connector of `available` reported Available (none with `available=()`).

    `answers` are set before the boot, so that calls the CSMS makes after a boot find them;
    `boot` is the BootNotification payload, `RawCharger.boot`'s vendor and model by default.
    """
    async with RawCharger.connect(ocpp_url(app, charger_id)) as cp:
        cp.answers.update(answers or {})
        conf = await (cp.boot() if boot is None else cp.call("BootNotification", boot))
        assert conf["status"] == "Accepted", conf
        for connector_id in available:
            assert await cp.status(connector_id, "Available") == {}
        yield cp
