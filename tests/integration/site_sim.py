"""A simulated site for load-balancing tests: chargers with EVs behind a real Modbus grid meter.

`SimCharger` is a `RawCharger` on a real WebSocket to the CSMS that keeps its charging
profiles as a charger does (`InstalledProfiles`), answers Set/Clear/GetCompositeSchedule,
and draws what its composite limit, its EV and its rating allow, on the physical phases
its wiring and the EV use. `SimSite` serves an SDM630 over Modbus TCP showing base load
plus every charger's draw, and records a timeline of grid current against the fuse.

Time is wall clock (`datetime.now(UTC)`), since the CSMS stamps profiles with it; only
the tick interval is configurable.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from drivers import KNOWN_MODELS, MeterServer, RegisterMap, serve_meter
from profiles.allocation import parse_wiring
from profiles.composite import composite_schedule, to_charging_schedule
from profiles.installed import InstalledProfiles
from profiles.model import (
    ChargingProfilePurpose,
    ChargingRateUnit,
    ProfileFormatError,
    format_time,
    parse_profile,
    render_schedule,
)
from tests.integration.charger import Payload, RawCharger

Phases = tuple[float, float, float]
Clock = Callable[[], datetime]
ZERO: Phases = (0.0, 0.0, 0.0)
MIN_CHARGE_A = 6.0  # IEC 61851: an EV cannot charge below 6 A
VOLTAGE_V = 230.0


def utc_now() -> datetime:
    """The default clock: wall-clock UTC."""
    return datetime.now(UTC)


def step_load(at: datetime, before: Phases, after: Phases) -> Callable[[datetime], Phases]:
    """A base load that steps from `before` to `after` at `at`."""
    return lambda now: before if now < at else after


class SimCharger:
    """One charger with one connector and an EV; connect it with `SimCharger.connect`.

    Attributes (plain, change them at will): `wiring` (e.g. "L2L3L1": charger L1 is
    physical L2), `ev_phases` (1 or 3), `ev_max_a`, `rating_a`, `reaction_s` (a new
    profile set applies that long after it arrived), `reject_purposes` (purposes answered
    Rejected), `max_stack_level` (higher stack levels answered Rejected).

    `set_calls` records every SetChargingProfile received, from the first one on:
    (arrival time, request, status answered).
    """

    def __init__(
        self,
        cp: RawCharger,
        charger_id: str,
        *,
        connector_id: int = 1,
        wiring: str = "L1L2L3",
        ev_phases: int = 3,
        ev_max_a: float = 32.0,
        rating_a: float = 32.0,
        reaction_s: float = 0.0,
        reject_purposes: Iterable[str] = (),
        max_stack_level: int | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.cp = cp
        self.charger_id = charger_id
        self.connector_id = connector_id
        self.wiring = wiring
        self.ev_phases = ev_phases
        self.ev_max_a = ev_max_a
        self.rating_a = rating_a
        self.reaction_s = reaction_s
        self.reject_purposes = set(reject_purposes)
        self.max_stack_level = max_stack_level
        self.clock = clock
        self.transaction_id: int | None = None
        self.transaction_start: datetime | None = None
        self.energy_wh = 0.0
        self._changes: list[tuple[datetime, InstalledProfiles]] = []
        self._last: tuple[datetime, Phases] | None = None  # for the energy integral
        self.set_calls: list[tuple[datetime, Payload, str]] = []
        cp.answers["SetChargingProfile"] = self._on_set
        cp.answers["ClearChargingProfile"] = self._on_clear
        cp.answers["GetCompositeSchedule"] = self._on_get_composite

    @classmethod
    @asynccontextmanager
    async def connect(cls, url: str, charger_id: str, **kwargs: Any) -> AsyncIterator[SimCharger]:
        """Connect to `url`, boot, report the connector Available; yields the charger."""
        async with RawCharger.connect(url) as cp:
            charger = cls(cp, charger_id, **kwargs)
            boot = await cp.boot()
            if boot["status"] != "Accepted":
                raise RuntimeError(f"{charger_id}: BootNotification {boot}")
            await cp.status(charger.connector_id, "Available")
            yield charger

    # -- profiles, kept as a charger keeps them ------------------------------------------

    @property
    def installed(self) -> InstalledProfiles:
        """The profiles held now (including ones not yet acted on, see `reaction_s`)."""
        return self._changes[-1][1] if self._changes else InstalledProfiles()

    def effective(self, now: datetime) -> InstalledProfiles:
        """The profiles the charger acts on at `now`: the last set older than `reaction_s`."""
        ready = now - timedelta(seconds=self.reaction_s)
        held = InstalledProfiles()
        for arrived, profiles in self._changes:
            if arrived <= ready:
                held = profiles
        return held

    def _install(self, profiles: InstalledProfiles) -> None:
        self._changes.append((self.clock(), profiles))

    def _on_set(self, req: Payload) -> Payload:
        arrived = self.clock()
        answer = self._set_profile(req)
        self.set_calls.append((arrived, req, answer["status"]))
        return answer

    def _set_profile(self, req: Payload) -> Payload:
        connector_id = req.get("connectorId")
        try:
            profile = parse_profile(req["csChargingProfiles"])
        except (KeyError, TypeError, ProfileFormatError):
            return {"status": "Rejected"}
        if (
            profile.purpose.value in self.reject_purposes
            or (self.max_stack_level is not None and profile.stack_level > self.max_stack_level)
            or connector_id not in (0, self.connector_id)
            or (profile.purpose is ChargingProfilePurpose.CHARGE_POINT_MAX and connector_id != 0)
        ):
            return {"status": "Rejected"}
        if profile.purpose is ChargingProfilePurpose.TX and (
            self.transaction_id is None
            or connector_id != self.connector_id
            or profile.transaction_id not in (None, self.transaction_id)
        ):
            return {"status": "Rejected"}  # 1.6 §5.16.3: no transaction → discard
        self._install(self.installed.set(connector_id, profile))
        return {"status": "Accepted"}

    def _on_clear(self, req: Payload) -> Payload:
        purpose = req.get("chargingProfilePurpose")
        new, removed = self.installed.clear(
            profile_id=req.get("id"),
            connector_id=req.get("connectorId"),
            purpose=ChargingProfilePurpose(purpose) if purpose is not None else None,
            stack_level=req.get("stackLevel"),
        )
        if not removed:
            return {"status": "Unknown"}
        self._install(new)
        return {"status": "Accepted"}

    def _on_get_composite(self, req: Payload) -> Payload:
        connector_id = req.get("connectorId", 0)
        unit = ChargingRateUnit(req.get("chargingRateUnit", "A"))
        start = self.clock().replace(microsecond=0)
        composite = composite_schedule(
            [(p.connector_id, p.profile) for p in self.installed],
            connector_id=connector_id,
            start=start,
            duration=int(req["duration"]),
            unit=unit,
            transaction_id=self.transaction_id if connector_id == self.connector_id else None,
            transaction_start=self.transaction_start,
        )
        schedule = to_charging_schedule(composite)
        if schedule is None:
            return {"status": "Rejected"}
        return {
            "status": "Accepted",
            "connectorId": connector_id,
            "scheduleStart": format_time(start),
            "chargingSchedule": render_schedule(schedule),
        }

    # -- the EV --------------------------------------------------------------------------

    @property
    def charging(self) -> bool:
        return self.transaction_id is not None

    def limit_a(self, now: datetime) -> tuple[float | None, int | None]:
        """The composite limit (A per phase; None: unconstrained) and phases acted on at `now`."""
        composite = composite_schedule(
            [(p.connector_id, p.profile) for p in self.effective(now)],
            connector_id=self.connector_id,
            start=now,
            duration=1,
            unit=ChargingRateUnit.A,
            transaction_id=self.transaction_id,
            transaction_start=self.transaction_start,
        )
        first = composite.periods[0]
        return first.limit, first.number_phases

    def phase_currents_a(self, now: datetime) -> tuple[float, ...]:
        """Per CHARGER phase (L1, L2, L3 of its own wiring order) at `now`."""
        wired = len(parse_wiring(self.wiring))
        if not self.charging:
            return (0.0,) * wired
        limit, limit_phases = self.limit_a(now)
        draw = min(self.rating_a if limit is None else limit, self.ev_max_a, self.rating_a)
        if draw < MIN_CHARGE_A:
            return (0.0,) * wired
        phases = min(wired, self.ev_phases, limit_phases or 3)
        return tuple(draw if k < phases else 0.0 for k in range(wired))

    def current_a(self, now: datetime) -> Phases:
        """Per PHYSICAL phase (grid L1, L2, L3) at `now`."""
        out = [0.0, 0.0, 0.0]
        for physical, amps in zip(
            parse_wiring(self.wiring), self.phase_currents_a(now), strict=True
        ):
            out[physical] += amps
        return out[0], out[1], out[2]

    def advance(self, now: datetime) -> Phases:
        """Integrate energy up to `now` and return the physical draw from `now` on."""
        if self._last is not None:
            then, amps = self._last
            seconds = max(0.0, (now - then).total_seconds())
            self.energy_wh += sum(amps) * VOLTAGE_V * seconds / 3600.0
        draw = self.current_a(now)
        self._last = (now, draw)
        return draw

    # -- OCPP from the charger -----------------------------------------------------------

    async def start_session(self, id_tag: str) -> int:
        """Authorize, Preparing, StartTransaction, Charging; returns the transaction id."""
        cp, c = self.cp, self.connector_id
        auth = await cp.call("Authorize", {"idTag": id_tag})
        if auth["idTagInfo"]["status"] != "Accepted":
            raise RuntimeError(f"{self.charger_id}: Authorize {auth}")
        await cp.status(c, "Preparing")
        now = self.clock()
        self.advance(now)
        conf = await cp.call(
            "StartTransaction",
            {
                "connectorId": c,
                "idTag": id_tag,
                "meterStart": int(self.energy_wh),
                "timestamp": format_time(now),
            },
        )
        if conf["idTagInfo"]["status"] != "Accepted":
            raise RuntimeError(f"{self.charger_id}: StartTransaction {conf}")
        self.transaction_id = int(conf["transactionId"])
        self.transaction_start = now
        await cp.status(c, "Charging")
        return self.transaction_id

    async def stop_session(self, reason: str = "EVDisconnected") -> None:
        """StopTransaction, Finishing, Available; the transaction's TxProfiles end with it."""
        if self.transaction_id is None:
            return
        now = self.clock()
        self.advance(now)
        tx, self.transaction_id, self.transaction_start = self.transaction_id, None, None
        self.advance(now)  # draw 0 from now on
        new, removed = self.installed.transaction_ended(self.connector_id, tx)
        if removed:
            self._install(new)
        await self.cp.call(
            "StopTransaction",
            {
                "transactionId": tx,
                "meterStop": int(self.energy_wh),
                "timestamp": format_time(now),
                "reason": reason,
            },
        )
        await self.cp.status(self.connector_id, "Finishing")
        await self.cp.status(self.connector_id, "Available")

    def meter_values_payload(self, now: datetime) -> Payload:
        """MeterValues: Current.Import per charger phase and the energy register."""
        self.advance(now)
        sampled: list[Payload] = [
            {
                "value": f"{amps:.1f}",
                "measurand": "Current.Import",
                "phase": f"L{k}",
                "unit": "A",
            }
            for k, amps in enumerate(self.phase_currents_a(now), 1)
        ]
        sampled.append(
            {
                "value": f"{self.energy_wh:.1f}",
                "measurand": "Energy.Active.Import.Register",
                "unit": "Wh",
            }
        )
        payload: Payload = {
            "connectorId": self.connector_id,
            "meterValue": [{"timestamp": format_time(now), "sampledValue": sampled}],
        }
        if self.transaction_id is not None:
            payload["transactionId"] = self.transaction_id
        return payload

    async def send_meter_values(self, now: datetime) -> Payload:
        """Send MeterValues for `now`; returns what was sent."""
        payload = self.meter_values_payload(now)
        await self.cp.call("MeterValues", payload)
        return payload


@dataclass(frozen=True, slots=True)
class SitePoint:
    """One tick: grid current per phase (base load + chargers) against the fuse."""

    t: datetime
    grid_a: Phases
    fuse_a: float

    @property
    def overload_a(self) -> float:
        """How far the worst phase is above the fuse (0 when within)."""
        return max(0.0, max(self.grid_a) - self.fuse_a)


class SimSite:
    """The grid connection: a real Modbus meter showing base load plus every charger's draw.

    Use `async with SimSite(fuse_a=32) as site:` then `await site.add_charger(url, id, ...)`.
    `base_load_a` is per phase, or a function of time (see `step_load`). `meter_delay_s`
    (plain attribute, default 0) makes the meter show the site as it was that long ago,
    like a meter that updates its registers once a second; the timeline stays true.
    """

    def __init__(
        self,
        *,
        fuse_a: float = 32.0,
        base_load_a: Phases | Callable[[datetime], Phases] = ZERO,
        register_map: RegisterMap | None = None,
        clock: Clock = utc_now,
        meter_delay_s: float = 0.0,
    ) -> None:
        self.fuse_a = fuse_a
        self.base_load_a = base_load_a
        self.meter_delay_s = meter_delay_s
        self.register_map = register_map or KNOWN_MODELS["sdm630"]
        self.clock = clock
        self.chargers: list[SimCharger] = []
        self.timeline: list[SitePoint] = []
        self.import_energy_wh = 0.0
        self._stack = AsyncExitStack()
        self._meter: MeterServer | None = None

    async def __aenter__(self) -> SimSite:
        self._meter = await self._stack.enter_async_context(serve_meter(self.register_map))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._meter = None
        await self._stack.aclose()

    @property
    def meter(self) -> MeterServer:
        assert self._meter is not None, "use `async with SimSite(...)`"
        return self._meter

    @property
    def meter_port(self) -> int:
        return self.meter.port

    async def add_charger(self, url: str, charger_id: str, **kwargs: Any) -> SimCharger:
        """Connect and boot a `SimCharger` (kwargs as its constructor); closed with the site."""
        kwargs.setdefault("clock", self.clock)
        charger = await self._stack.enter_async_context(
            SimCharger.connect(url, charger_id, **kwargs)
        )
        self.chargers.append(charger)
        return charger

    def base_at(self, now: datetime) -> Phases:
        load = self.base_load_a
        return load(now) if callable(load) else load

    async def tick(self, now: datetime | None = None) -> SitePoint:
        """Put base load + every charger's draw at `now` on the meter; record and return it."""
        now = self.clock() if now is None else now
        total = list(self.base_at(now))
        for charger in self.chargers:
            for k, amps in enumerate(charger.advance(now)):
                total[k] += amps
        grid: Phases = (total[0], total[1], total[2])
        if self.timeline:
            seconds = max(0.0, (now - self.timeline[-1].t).total_seconds())
            self.import_energy_wh += sum(self.timeline[-1].grid_a) * VOLTAGE_V * seconds / 3600.0
        point = SitePoint(now, grid, self.fuse_a)
        self.timeline.append(point)
        shown = grid
        if self.meter_delay_s > 0:
            then = now - timedelta(seconds=self.meter_delay_s)
            shown = next(
                (p.grid_a for p in reversed(self.timeline) if p.t <= then), self.timeline[0].grid_a
            )
        power: Phases = (shown[0] * VOLTAGE_V, shown[1] * VOLTAGE_V, shown[2] * VOLTAGE_V)
        await self.meter.set(
            current_a=shown,
            power_w=power,
            total_power_w=sum(power),
            import_energy_wh=self.import_energy_wh,
        )
        return point

    async def run(
        self,
        duration: float,
        step: float = 0.1,
        clock: Clock | None = None,
        *,
        meter_values_every: float | None = 1.0,
    ) -> list[SitePoint]:
        """Tick every `step` s for `duration` s; charging chargers send MeterValues every
        `meter_values_every` s (None: never). Returns the points recorded by this run."""
        clock = clock or self.clock
        first = len(self.timeline)
        start = clock()
        next_mv = start
        while True:
            now = clock()
            await self.tick(now)
            if meter_values_every is not None and now >= next_mv:
                for charger in self.chargers:
                    if charger.charging:
                        await charger.send_meter_values(now)
                next_mv = now + timedelta(seconds=meter_values_every)
            if (now - start).total_seconds() >= duration:
                break
            await asyncio.sleep(step)
        return self.timeline[first:]

    def max_overload_a(self) -> float:
        """The worst excess of any phase over the fuse in the timeline (0: never above)."""
        return max((p.overload_a for p in self.timeline), default=0.0)

    def time_above(self, limit: float | None = None) -> float:
        """Seconds any phase was above `limit` (default the fuse): each point holds until the
        next one, so the last point counts for nothing."""
        limit = self.fuse_a if limit is None else limit
        return sum(
            (b.t - a.t).total_seconds()
            for a, b in zip(self.timeline, self.timeline[1:], strict=False)
            if max(a.grid_a) > limit
        )
