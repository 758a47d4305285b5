"""A simulated site: chargers with EVs behind a real Modbus grid meter.

`SimCharger` is a `RawCharger` on a real WebSocket to the CSMS that keeps its charging
profiles as a charger does (`InstalledProfiles`), answers Set/Clear/GetCompositeSchedule,
and draws what its composite limit, its EV and its rating allow, on the physical phases
its wiring and the EV use. `SimSite` serves an SDM630 over Modbus TCP showing base load
plus every charger's draw, and records a timeline of grid current against the fuse.

Time is wall clock (`datetime.now(UTC)`), since the CSMS stamps profiles with it; only
the tick interval is configurable.

Realism knobs, all off by default (the plain model above is what they default to):

- the site: a base load that moves (`step_load`, `ramp_load`) and differs per phase, PV
  export (a negative base current on a phase: import is positive, the meter shows the
  sign through the phase power as an SDM630 does), meter noise (`noise_a`, uniform,
  seeded) and a meter that lags (`meter_delay_s`);
- the EV: `ramp_s` (it takes that long to reach a higher offered current), `taper_a`
  (it draws at most that from `taper_after_s` into its session, whatever is offered),
  `give_up_after` (after that many pauses it never draws again in this session);
- the charger: `reports_current` (False: its MeterValues carry only the energy register),
  `report_every` (its own MeterValues interval, counted from its StartTransaction as
  real chargers do, so chargers report at different moments; None: the site's).

A *pause* is the offer (the composite limit the charger acts on) going from 6 A or more
to below 6 A during a session, while the EV has not given up; `pauses` and `resumes`
record them per session. `set_calls` records every SetChargingProfile received
(`calls_per_minute` averages them over a window).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from drivers import KNOWN_MODELS, MeterServer, RegisterMap, serve_meter
from edge.sim.charger import Payload, RawCharger
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

Phases = tuple[float, float, float]
Clock = Callable[[], datetime]
ZERO: Phases = (0.0, 0.0, 0.0)
MIN_CHARGE_A = 6.0  # IEC 61851: an EV cannot charge below 6 A
_HISTORY_S = 60.0  # how far back `SimCharger.effective` may be asked about (s)
VOLTAGE_V = 230.0


def utc_now() -> datetime:
    """The default clock: wall-clock UTC."""
    return datetime.now(UTC)


def step_load(at: datetime, before: Phases, after: Phases) -> Callable[[datetime], Phases]:
    """A base load that steps from `before` to `after` at `at`."""
    return lambda now: before if now < at else after


def ramp_load(
    start: datetime, end: datetime, before: Phases, after: Phases
) -> Callable[[datetime], Phases]:
    """A base load that stays at `before` until `start`, moves linearly (each phase on its
    own) to `after` at `end`, and stays there; negative values are export (PV)."""
    span = (end - start).total_seconds()
    if span <= 0:
        return step_load(start, before, after)

    def load(now: datetime) -> Phases:
        k = min(1.0, max(0.0, (now - start).total_seconds() / span))
        return (
            before[0] + (after[0] - before[0]) * k,
            before[1] + (after[1] - before[1]) * k,
            before[2] + (after[2] - before[2]) * k,
        )

    return load


class SimCharger:
    """One charger with one connector and an EV; connect it with `SimCharger.connect`.

    Attributes (plain, change them at will): `wiring` (e.g. "L2L3L1": charger L1 is
    physical L2), `ev_phases` (1 or 3), `ev_max_a`, `rating_a`, `reaction_s` (a new
    profile set applies that long after it arrived), `reject_purposes` (purposes answered
    Rejected), `max_stack_level` (higher stack levels answered Rejected).

    The EV (see the module docstring): `ramp_s` (seconds to reach a higher offer; 0:
    at once; a lower offer is followed at once), `taper_a` and `taper_after_s` (from
    then on it draws at most `taper_a`), `give_up_after` (pauses after which it stops
    for good; None: never). `reports_current` False leaves Current.Import out of
    MeterValues (only the energy register is reported). `report_every` (s): the charger
    sends MeterValues that often during a session, the first one that long after its
    StartTransaction, when run by `SimSite.run` (None: on the site's schedule).

    TriggerMessage(MeterValues) is answered Accepted and the MeterValues follow at once
    (`triggered` records when); other triggers are NotImplemented.

    `set_calls` records every SetChargingProfile received, from the first one on:
    (arrival time, request, status answered). Per session (reset by `start_session`):
    `pauses` and `resumes` (when the offer fell below / rose to 6 A or more; the first
    offer of the session is a resume), `gave_up_at`.
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
        ramp_s: float = 0.0,
        taper_a: float | None = None,
        taper_after_s: float = 0.0,
        give_up_after: int | None = None,
        reports_current: bool = True,
        report_every: float | None = None,
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
        self.ramp_s = ramp_s
        self.taper_a = taper_a
        self.taper_after_s = taper_after_s
        self.give_up_after = give_up_after
        self.reports_current = reports_current
        self.report_every = report_every
        self.clock = clock
        self.transaction_id: int | None = None
        self.transaction_start: datetime | None = None
        self.energy_wh = 0.0
        self._changes: list[tuple[datetime, InstalledProfiles]] = []
        self._last: tuple[datetime, Phases] | None = None  # for the energy integral
        self.set_calls: list[tuple[datetime, Payload, str]] = []
        self.pauses: list[datetime] = []
        self.resumes: list[datetime] = []
        self.gave_up_at: datetime | None = None
        self._offered: bool | None = None  # the offer was >= 6 A at the last observation
        self._ramp: tuple[datetime, float, float] | None = None  # (since, from A, to A)
        self._next_report: datetime | None = None
        cp.answers["SetChargingProfile"] = self._on_set
        cp.answers["ClearChargingProfile"] = self._on_clear
        cp.answers["GetCompositeSchedule"] = self._on_get_composite
        cp.answers["TriggerMessage"] = self._on_trigger
        self.triggered: list[datetime] = []
        self._tasks: set[asyncio.Task[Any]] = set()

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
        now = self.clock()
        self._changes.append((now, profiles))
        # Forget sets that a later one, acted on for a while already, replaced: `effective`
        # walks the list on every tick, and a demo receives a lease every few seconds for
        # hours. Nobody asks about a moment `_HISTORY_S` ago, so no answer changes.
        horizon = now - timedelta(seconds=self.reaction_s + _HISTORY_S)
        acted_on = [k for k, (arrived, _) in enumerate(self._changes) if arrived <= horizon]
        if len(acted_on) > 1:
            del self._changes[: acted_on[-1]]
        self._observe_offer(now)

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

    def _on_trigger(self, req: Payload) -> Payload:
        """TriggerMessage: MeterValues (sent right after the answer) or NotImplemented."""
        if req.get("requestedMessage") != "MeterValues":
            return {"status": "NotImplemented"}
        now = self.clock()
        self.triggered.append(now)
        task = asyncio.ensure_future(self._send_triggered(now))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return {"status": "Accepted"}

    async def _send_triggered(self, now: datetime) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError):
            await self.send_meter_values(now)

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

    @property
    def gave_up(self) -> bool:
        return self.gave_up_at is not None

    def offered_a(self, now: datetime) -> float:
        """What the charger offers the EV per phase at `now` (its limit, within its rating)."""
        limit, _ = self.limit_a(now)
        return min(self.rating_a if limit is None else limit, self.rating_a)

    def _wanted_a(self, now: datetime) -> float:
        """What the EV would draw per phase at `now` once ramped up (0: it does not)."""
        if not self.charging or self.gave_up:
            return 0.0
        offered = self.offered_a(now)
        if offered < MIN_CHARGE_A:
            return 0.0
        draw = min(offered, self.ev_max_a)
        start = self.transaction_start
        if (
            self.taper_a is not None
            and start is not None
            and (now - start).total_seconds() >= self.taper_after_s
        ):
            draw = min(draw, self.taper_a)
        return draw

    def _ramped(self, now: datetime, wanted: float) -> float:
        """`wanted`, limited by the ramp under way (see `ramp_s`)."""
        if self.ramp_s <= 0:
            return wanted
        if self._ramp is None:
            return 0.0  # at rest: nothing drawn yet
        since, start, end = self._ramp
        k = min(1.0, max(0.0, (now - since).total_seconds() / self.ramp_s))
        return min(wanted, start + (end - start) * k)

    def _observe_offer(self, now: datetime) -> None:
        """Count a pause or a resume if the offer crossed 6 A since the last observation."""
        if not self.charging or self.gave_up:
            self._offered = None
            return
        offered = self.offered_a(now) >= MIN_CHARGE_A
        if self._offered is None or offered != self._offered:
            if offered:
                self.resumes.append(now)
            elif self._offered:
                self.pauses.append(now)
                if self.give_up_after is not None and len(self.pauses) >= self.give_up_after:
                    self.gave_up_at = now
                    self._offered = None
                    return
        self._offered = offered

    def phase_currents_a(self, now: datetime) -> tuple[float, ...]:
        """Per CHARGER phase (L1, L2, L3 of its own wiring order) at `now`."""
        wired = len(parse_wiring(self.wiring))
        draw = self._ramped(now, self._wanted_a(now))
        if draw <= 0:
            return (0.0,) * wired
        _, limit_phases = self.limit_a(now)
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
        """Integrate energy up to `now`, observe the offer (pauses) and the EV's ramp, and
        return the physical draw from `now` on."""
        if self._last is not None:
            then, amps = self._last
            seconds = max(0.0, (now - then).total_seconds())
            self.energy_wh += sum(amps) * VOLTAGE_V * seconds / 3600.0
        self._observe_offer(now)
        if self.ramp_s > 0:
            wanted = self._wanted_a(now)
            level = self._ramped(now, wanted)
            if wanted <= level:
                self._ramp = (now, wanted, wanted)  # at its target, or following a lowering
            elif self._ramp is None or wanted != self._ramp[2]:
                self._ramp = (now, level, wanted)  # a higher target: ramp from here
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
        self.pauses, self.resumes, self.gave_up_at = [], [], None
        self._offered = self._ramp = None
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
        self._next_report = None
        if self.report_every is not None:
            self._next_report = now + timedelta(seconds=self.report_every)
        self._observe_offer(now)
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
        """MeterValues: Current.Import per charger phase (unless not `reports_current`) and
        the energy register."""
        self.advance(now)
        sampled: list[Payload] = [
            {
                "value": f"{amps:.1f}",
                "measurand": "Current.Import",
                "phase": f"L{k}",
                "unit": "A",
            }
            for k, amps in enumerate(self.phase_currents_a(now), 1)
            if self.reports_current
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

    def report_due(self, now: datetime) -> bool:
        """Whether its own schedule (`report_every`) has a report due at `now`; if so the
        schedule moves on past `now`."""
        if self.report_every is None or self._next_report is None or not self.charging:
            return False
        if now < self._next_report:
            return False
        step = timedelta(seconds=self.report_every)
        while self._next_report <= now:
            self._next_report += step
        return True

    async def send_meter_values(self, now: datetime) -> Payload:
        """Send MeterValues for `now`; returns what was sent."""
        payload = self.meter_values_payload(now)
        await self.cp.call("MeterValues", payload)
        return payload

    # -- what the CSMS sent ------------------------------------------------------------

    def calls_between(self, start: datetime, end: datetime) -> list[tuple[datetime, Payload, str]]:
        """The SetChargingProfile calls that arrived in [`start`, `end`]."""
        return [call for call in self.set_calls if start <= call[0] <= end]

    def calls_per_minute(self, start: datetime, end: datetime) -> float:
        """SetChargingProfile calls that arrived in [`start`, `end`], per minute of it."""
        minutes = (end - start).total_seconds() / 60.0
        if minutes <= 0:
            raise ValueError("an empty window")
        return len(self.calls_between(start, end)) / minutes


@dataclass(frozen=True, slots=True)
class SitePoint:
    """One tick: grid current per phase (base load + chargers) against the fuse; the base
    load and each charger's draw (physical phases) that made it up."""

    t: datetime
    grid_a: Phases
    fuse_a: float
    base_a: Phases = ZERO
    draws_a: tuple[tuple[str, Phases], ...] = ()

    def draw_of(self, charger_id: str) -> Phases:
        """What one charger drew (per physical phase) at this point."""
        return next((a for cid, a in self.draws_a if cid == charger_id), ZERO)

    @property
    def overload_a(self) -> float:
        """How far the worst phase is beyond the fuse, import or export (0 when within)."""
        return max(0.0, max(abs(a) for a in self.grid_a) - self.fuse_a)


class SimSite:
    """The grid connection: a real Modbus meter showing base load plus every charger's draw.

    Use `async with SimSite(fuse_a=32) as site:` then `await site.add_charger(url, id, ...)`.
    `base_load_a` is per phase, or a function of time (see `step_load`, `ramp_load`);
    negative is export (PV). `meter_delay_s` (plain attribute, default 0) makes the meter
    show the site as it was that long ago, like a meter that updates its registers once
    a second; `noise_a` (plain attribute, default 0) adds uniform noise in
    [-noise_a, +noise_a] to each phase the meter shows, drawn from `random.Random(seed)`
    on every tick. The timeline stays true (no delay, no noise).
    """

    def __init__(
        self,
        *,
        fuse_a: float = 32.0,
        base_load_a: Phases | Callable[[datetime], Phases] = ZERO,
        register_map: RegisterMap | None = None,
        clock: Clock = utc_now,
        meter_delay_s: float = 0.0,
        noise_a: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.fuse_a = fuse_a
        self.base_load_a = base_load_a
        self.meter_delay_s = meter_delay_s
        self.noise_a = noise_a
        self.rng = random.Random(seed)
        self.register_map = register_map or KNOWN_MODELS["sdm630"]
        self.clock = clock
        self.chargers: list[SimCharger] = []
        self.timeline: list[SitePoint] = []
        self.import_energy_wh = 0.0
        self.export_energy_wh = 0.0
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
        if self._meter is None:
            raise RuntimeError("use `async with SimSite(...)`")
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
        base = self.base_at(now)
        total = list(base)
        draws: list[tuple[str, Phases]] = []
        for charger in self.chargers:
            draw = charger.advance(now)
            draws.append((charger.charger_id, draw))
            for k, amps in enumerate(draw):
                total[k] += amps
        grid: Phases = (total[0], total[1], total[2])
        if self.timeline:
            seconds = max(0.0, (now - self.timeline[-1].t).total_seconds())
            wh = sum(self.timeline[-1].grid_a) * VOLTAGE_V * seconds / 3600.0
            if wh >= 0:
                self.import_energy_wh += wh
            else:
                self.export_energy_wh -= wh
        point = SitePoint(now, grid, self.fuse_a, base, tuple(draws))
        self.timeline.append(point)
        shown = grid
        if self.meter_delay_s > 0:
            then = now - timedelta(seconds=self.meter_delay_s)
            shown = next(
                (p.grid_a for p in reversed(self.timeline) if p.t <= then), self.timeline[0].grid_a
            )
        if self.noise_a > 0:
            n = self.noise_a
            shown = (
                shown[0] + self.rng.uniform(-n, n),
                shown[1] + self.rng.uniform(-n, n),
                shown[2] + self.rng.uniform(-n, n),
            )
        power: Phases = (shown[0] * VOLTAGE_V, shown[1] * VOLTAGE_V, shown[2] * VOLTAGE_V)
        await self.meter.set(
            current_a=shown,
            power_w=power,
            total_power_w=sum(power),
            import_energy_wh=self.import_energy_wh,
            export_energy_wh=self.export_energy_wh,
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
        `meter_values_every` s (None: never), or on their own `report_every` schedule if
        they have one. Returns the points recorded by this run."""
        clock = clock or self.clock
        first = len(self.timeline)
        start = clock()
        next_mv = start
        while True:
            now = clock()
            await self.tick(now)
            for charger in self.chargers:
                if charger.report_due(now):
                    await charger.send_meter_values(now)
            if meter_values_every is not None and now >= next_mv:
                for charger in self.chargers:
                    if charger.charging and charger.report_every is None:
                        await charger.send_meter_values(now)
                next_mv = now + timedelta(seconds=meter_values_every)
            if (now - start).total_seconds() >= duration:
                break
            await asyncio.sleep(step)
        return self.timeline[first:]

    def max_overload_a(self) -> float:
        """The worst excess of any phase over the fuse in the timeline (0: never above)."""
        return max((p.overload_a for p in self.timeline), default=0.0)

    def time_above(self, limit: float | None = None, since: datetime | None = None) -> float:
        """Seconds any phase was above `limit` (default the fuse), import or export, from
        `since` on (default: the whole timeline): each point holds until the next one, so
        the last point counts for nothing."""
        limit = self.fuse_a if limit is None else limit
        return sum(
            (b.t - a.t).total_seconds()
            for a, b in zip(self.timeline, self.timeline[1:], strict=False)
            if max(abs(x) for x in a.grid_a) > limit and (since is None or a.t >= since)
        )
