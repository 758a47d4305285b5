"""The site control loop: grid meter → allocation → stacked lease profiles → chargers.

Two tasks: one polls the meter every ``poll_interval`` and keeps the latest reading;
the other runs a control cycle on each new reading and on every event that changes
who charges (a transaction starts or stops, a charger boots, connects or drops).

A cycle is synchronous and cheap; it only decides (`profiles.allocation`,
`profiles.lease`) and spawns the calls, so a slow charger never delays the others:

1. Fresh reading: allocate the grid capacity to the chargers with an active
   transaction. Stale for ``stale_after`` s (or none yet): every charger's target is
   its safe value; the site is in *fallback* and says so (API, log, metrics, journal).
2. Each charger holds a safe profile (sent once, again after each boot) and a lease,
   each lease a whole new one, refreshed half a lease after it was sent (a lease below
   the safe value: a whole lease before it ends), ending so that no lease below its
   safe value ends before one above it (`profiles.lease`). Lowering goes out at once;
   raising waits until no lowering is in flight, and ``min_update_interval``.
3. One call per charger at a time (`edge.site.sending`). A refusal moves the charger
   to its next strategy (purpose, stack levels); a timeout backs off. What is learned
   is kept in the charger's document (``siteControl``); what a charger may hold (a call
   it never answered) bounds the others' leases until it ends.

What chargers draw comes from their MeterValues (Current.Import per phase), capped
at the limit they are known to apply, so stale samples and chargers that ignore a
limit leave the excess to the non-EV load, the safe side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from drivers import Meter
from edge.chargers import Charger, Registration
from edge.events import (
    Booted,
    ChargerEvent,
    ChargerRemoved,
    Connected,
    Disconnected,
    MeterValuesReceived,
    TransactionStarted,
    TransactionStopped,
)
from edge.operations.pipeline import Operations
from edge.services import Services
from edge.site.caps import cap_amperes, cloud_cap_at, cloud_profiles
from edge.site.control import EV_FOLLOW, METER_LAG, ChargerControl, Phases
from edge.site.grid_meter import GridMeter
from edge.site.history import SiteHistory, sum_phases
from edge.site.house import HouseLoad
from edge.site.probe import (
    PROBE_EVERY,
    learn_all_from_meter,
    trigger_due,
    trigger_meter_values,
)
from edge.site.sending import LeaseSending, Spawner
from edge.site.statistics import ChargerStatistics, MeterStatistics, SiteStatistics
from edge.times import from_epoch, parse_time, to_epoch
from edge.transactions.meter_values import import_currents, physical_currents
from profiles.allocation import (
    Allocation,
    SafeAllocation,
    SafeCharger,
    Session,
    SiteState,
    allocate,
    floor_step,
    learn_phases,
    parse_wiring,
    safe_allocation,
)
from profiles.installed import InstalledProfiles
from profiles.lease import HeldLease, LeasePolicy

__all__ = ["ChargerControl", "SiteController"]

log = logging.getLogger(__name__)

REACTION_GRACE = 15.0  # s after a new limit before a higher draw counts as ignoring it
OVERDRAW_TOLERANCE_A = 1.0
OVERDRAW_SAMPLES = 3  # consecutive samples above the limit before it is a quirk
WAKE_COALESCE = 0.02  # s: events arriving together make one cycle
NOISE_A = 0.5  # A a meter reading may move by itself; kept limits may overrun by it
FALLING_S = 30.0  # s after a lowering in which a further one goes half a hysteresis lower
SETTLE = 0.1  # per reading: how fast the house estimate converges on a noisy meter's mean


@dataclass(frozen=True, slots=True)
class _Plan:
    """The outcome of a cycle's decision, kept for the API."""

    at: float
    fallback: bool
    allocation: Allocation | None
    safe: dict[str, float]
    safe_fits: bool
    zeroed: tuple[str, ...]


class SiteController(LeaseSending):
    """Keeps the site under its fuse; see the module docstring."""

    def __init__(
        self,
        svc: Services,
        ops: Operations,
        meter: Meter,
        spawn: Spawner,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        assert svc.config.meter is not None
        self.svc = svc
        self.ops = ops
        self.sessions = ops.sessions
        self.spawn = spawn
        self.monotonic = monotonic
        self.meter_config = svc.config.meter
        self.grid = GridMeter(svc, meter, wake=self.wake, monotonic=monotonic)
        self.site = svc.config.site
        self.policy = LeasePolicy(
            lease_time=self.site.lease_time, min_interval=self.site.min_update_interval
        )
        self.controls: dict[str, ChargerControl] = {}
        self.plan: _Plan | None = None
        self.cycles = 0
        self.cycle_cpu_s = 0.0
        self.cycle_cpu_total_s = 0.0
        self.house = HouseLoad(
            horizon_s=self.meter_config.poll_interval + EV_FOLLOW + METER_LAG,
            window_s=2 * (self.meter_config.poll_interval + EV_FOLLOW + METER_LAG),
            min_rise_a=self.site.margin,
        )
        """The non-EV load per phase (`edge.site.house`; negative: export)."""
        self._wake = asyncio.Event()
        self._safe_cache: tuple[int, SafeAllocation] | None = None
        self._cloud_profiles: dict[str, tuple[object, InstalledProfiles]] = {}
        self._safe_dirty = True
        self.history = SiteHistory()
        """The last hour and day, in memory, for the page's plot."""

    @property
    def house_a(self) -> Phases | None:
        """The estimated non-EV load per phase (`profiles.house_load`; negative: export)."""
        return self.house.estimate

    # --- tasks --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Poll the meter and run control cycles until `stop` is set.

        Both loops run in one TaskGroup: a failure of either is not lost, it ends
        `run` with the error (and the service's TaskGroup sees it).
        """
        self.svc.events.subscribe(self.on_event)
        try:
            async with asyncio.TaskGroup() as tasks:
                poller = tasks.create_task(self.grid.poll(stop), name="site-meter-poller")
                await self._control(stop)
                poller.cancel()  # stopping: do not wait for the poll interval
        finally:
            await self.grid.meter.close()

    async def _control(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            timeout = self.meter_config.poll_interval
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
                await asyncio.sleep(WAKE_COALESCE)
            except TimeoutError:
                pass
            self._wake.clear()
            if stop.is_set():
                break
            try:
                self.cycle()
            except Exception:
                log.exception("site control cycle failed")

    def wake(self) -> None:
        """Run a cycle now (something changed)."""
        self._wake.set()

    # --- events ---------------------------------------------------------------------------

    def on_event(self, event: ChargerEvent) -> None:
        if isinstance(event, MeterValuesReceived):
            self._on_meter_values(event)
        elif isinstance(event, ChargerRemoved):
            self._forget(event.charger_id)
            self.wake()
        elif isinstance(event, Booted):
            control = self.controls.get(event.charger_id)
            if control is not None:
                # A reboot may lose profiles: send the safe one again, assume no lease. It
                # may have kept them too: until they end they bound the others' leases.
                if control.lease_a is not None and control.valid_to is not None:
                    control.maybe_leases.append(HeldLease(control.lease_a, control.valid_to))
                control.maybe_safes.append(control.safe_a)
                control.safe_a = control.safe_strategy = None
                control.lease_a = control.valid_to = None
                control.retry_at = 0.0
            self.wake()
        elif isinstance(event, Connected | Disconnected | TransactionStarted | TransactionStopped):
            control = self.controls.get(event.charger_id)
            if control is not None and isinstance(event, Connected):
                control.retry_at = 0.0
            self.wake()

    def _forget(self, charger_id: str) -> None:
        """A charger left the registry: its control, its cloud profiles and its lease go
        (it is neither connected nor charging: nothing of it draws current)."""
        if self.controls.pop(charger_id, None) is not None:
            self._safe_dirty = True
        self._cloud_profiles.pop(charger_id, None)
        self.svc.leases.set(charger_id, None)

    def _on_meter_values(self, event: MeterValuesReceived) -> None:
        control = self.controls.get(event.charger_id)
        values = event.meter_value
        if control is None or not values:
            return
        sample = import_currents(values[-1].get("sampledValue", []))
        if sample is None:
            return
        now = to_epoch(event.at)
        control.draws[event.connector_id] = (
            now,
            physical_currents(sample, control.wiring),
        )
        self._judge_clock(control, values[-1].get("timestamp"), now)
        total = control.draw_a(now)
        if total is None:
            return
        control.record_draw(now, total)
        self._learn_from_draw(control, total, now)

    def _judge_clock(self, control: ChargerControl, stamp: object, now: float) -> None:
        """Warn (once) when a charger's clock is off by more than a quarter lease.

        Leases end by `validTo` on the charger's clock: one running behind keeps a dead
        controller's lease that much longer, one running ahead drops to its safe value
        before the refresh arrives.
        """
        try:
            lag = now - to_epoch(parse_time(str(stamp)))
        except ValueError:
            return
        control.lags.append((now, lag))
        offset = control.clock_behind_s()
        if offset is None:
            return
        off = abs(offset) > max(5.0, self.policy.lease_time / 4)
        if off and not control.clock_warned:
            way = "behind" if offset > 0 else "ahead of"
            self._quirk(
                control,
                f"its clock is {abs(offset):.0f} s {way} the controller's: leases end that "
                "much later/earlier for it; set its time (NTP, or the time in Heartbeat)",
            )
        control.clock_warned = off

    def _learn_from_draw(self, control: ChargerControl, draw: Phases, now: float) -> None:
        limit = control.effective_total(now)
        if control.ev_phases is None and math.isfinite(limit):
            control.ev_phases = learn_phases(draw, control.wiring, limit)
        settled = control.changed_at is None or now - control.changed_at >= REACTION_GRACE
        if not (settled and math.isfinite(limit) and limit > 0):
            control.overdraws = 0
            return
        peak = max(draw[p] for p in control.wiring)
        if peak <= limit + OVERDRAW_TOLERANCE_A:
            control.overdraws = 0
            return
        control.overdraws += 1
        if control.overdraws >= OVERDRAW_SAMPLES and peak > control.min_obeyed_a:
            control.min_obeyed_a = float(math.ceil(peak))
            self._quirk(
                control,
                f"draws {peak:.1f} A at a limit of {limit:.1f} A: given at least "
                f"{control.min_obeyed_a:g} A when admitted",
            )
            control.overdraws = 0

    # --- the cycle --------------------------------------------------------------------------

    def cycle(self) -> None:
        """Decide and send: one control cycle (synchronous; the calls run as tasks)."""
        cpu = time.process_time()
        now = to_epoch(self.svc.now())
        fresh = self.grid.judge()
        controls = self._refresh_controls(now)
        safe = self._safe_values(controls, now)
        allocation: Allocation | None = None
        if fresh:
            allocation, totals = self._allocate(controls, now)
            targets = {cid: self._lease_value(controls[cid], a) for cid, a in totals.items()}
        else:
            self.house.reset()  # back from a gap: start from the worst
            if self.grid.reading is None and not self.grid.stale_since_start():
                targets = {}  # starting: wait for the first reading
            else:
                targets = {cid: value for cid, value in safe.limits_a.items() if cid in controls}
        for cid, control in controls.items():
            if cid in targets and control.cap_a is not None:
                targets[cid] = min(targets[cid], self._lease_value(control, control.cap_a))
            control.target_a = targets.get(cid)
        self.plan = _Plan(
            now, self.grid.fallback, allocation, safe.limits_a, safe.fits, safe.zeroed
        )
        self._dispatch(controls, targets, safe.limits_a, now)
        if fresh:
            self._probe(controls, now)
        if self.history.due(now):
            grid = self.grid.reading.current_a if fresh and self.grid.reading else None
            ev = sum_phases(c.draw_a(now) for c in controls.values())
            self.history.record(now, grid, ev, self.grid.fallback)
        self.cycles += 1
        self.cycle_cpu_s = time.process_time() - cpu
        self.cycle_cpu_total_s += self.cycle_cpu_s

    def _refresh_controls(self, now: float) -> dict[str, ChargerControl]:
        """A ChargerControl for every accepted charger (created on first sight), brought
        up to date with the charger's document, connection and transactions."""
        for charger in self.svc.chargers:
            if charger.doc.get("registration") != Registration.ACCEPTED:
                if self.controls.pop(charger.id, None) is not None:
                    self._safe_dirty = True
                continue
            control = self.controls.get(charger.id)
            if control is None:
                control = self.controls[charger.id] = self._new_control(charger)
                self._safe_dirty = True
            self._observe(control, charger, now)
        for charger_id in [c for c in self.controls if self.svc.chargers.get(c) is None]:
            self._forget(charger_id)  # removed while its event was on its way
        return self.controls

    def _observe(self, control: ChargerControl, charger: Charger, now: float) -> None:
        configuration = charger.doc.get("configuration")
        if configuration is not control.seen_configuration or len(charger.connectors) != (
            control.seen_connectors
        ):
            # Reported keys change rarely (a new dict each time): parse them only then.
            control.seen_configuration = configuration
            control.seen_connectors = len(charger.connectors)
            self._safe_dirty = True
            control.strategy = self._strategy(control, charger)
            reported = charger.reported_int("NumberOfConnectors")
            known = max((cid for cid in charger.connectors if cid > 0), default=1)
            control.connectors = max(1, reported or 0, known)
        operator_cap = self._cap(charger, now)
        cloud_cap = self._cloud_cap(charger, now)
        caps = [c for c in (operator_cap, cloud_cap) if c is not None]
        cap = min(caps) if caps else None
        control.operator_cap_a, control.cloud_cap_a = operator_cap, cloud_cap
        if cap != control.cap_a:
            control.cap_a = cap
            self._safe_dirty = True
        control.steerable = (
            control.strategy is not None
            and charger.doc.get("bootAccepted", False)  # booted (OCPP-J errata 3.10)
            and self.sessions.get(charger.id) is not None
        )
        self._track_transactions(control, charger)

    def _new_control(self, charger: Charger) -> ChargerControl:
        settings = self.svc.config.chargers.get(charger.id)
        wiring = parse_wiring(settings.phases) if settings is not None else (0, 1, 2)
        control = ChargerControl(
            charger_id=charger.id,
            wiring=wiring,
            min_a=settings.min_current if settings is not None else 6.0,
            max_a=settings.max_current if settings is not None else 32.0,
        )
        learned = charger.doc.get("siteControl") or {}
        control.strategy_index = int(learned.get("strategy", 0))
        control.quirks = list(learned.get("quirks", []))
        control.min_obeyed_a = float(learned.get("minObeyedA", 0.0))
        return control

    def _track_transactions(self, control: ChargerControl, charger: Charger) -> None:
        active = frozenset(
            state.transaction_id
            for cid, state in charger.connectors.items()
            if cid > 0 and state.transaction_id is not None
        )
        if active == control.transactions:
            return
        if active - control.transactions:
            # A new EV: learn its phase use anew (on a 1-phase charger there is nothing
            # to learn).
            control.ev_phases = 1 if len(control.wiring) == 1 else None
            control.history.clear()
            control.pauses = 0
            control.running_since = control.paused_since = None
            control.probe_triggers = 0
            control.probe_next_at = 0.0
            control.meter_probe = None
            control.reclaimed = False
            control.arrived_at = to_epoch(self.svc.now())
        control.transactions = active
        starts = []
        for transaction_id in active:
            tx = self.svc.transactions.get(transaction_id)
            if tx is not None:
                with contextlib.suppress(ValueError):
                    starts.append(to_epoch(parse_time(tx.start_time)))
        control.started_at = min(starts, default=to_epoch(self.svc.now()))

    @staticmethod
    def _lease_value(control: ChargerControl, total_a: float) -> float:
        """A charger's allocation as its lease carries it (per connector for TxDefault)."""
        if control.per_connector and len(control.transactions) > 1:
            return floor_step(total_a / len(control.transactions))
        return total_a

    @staticmethod
    def _cap(charger: Charger, now: float) -> float | None:
        """The operator's cap on the charger (A per phase), if one is in force."""
        cap = charger.doc.get("siteCap")
        if not cap:
            return None
        until = cap.get("until")
        if until is not None and to_epoch(parse_time(until)) <= now:
            return None
        return float(cap["limitA"])

    def _cloud_cap(self, charger: Charger, now: float) -> float | None:
        """The cap the cloud's ChargePointMaxProfiles set now (A per phase), if any."""
        raw = charger.doc.get("cloudMaxProfiles")
        if not raw:
            return None
        # Parsed once per change of the list (a new list each time), not every cycle.
        cached = self._cloud_profiles.get(charger.id)
        if cached is None or cached[0] is not raw:
            cached = self._cloud_profiles[charger.id] = (raw, cloud_profiles(charger))
        return cloud_cap_at(
            cached[1],
            from_epoch(now),
            lambda limit, unit: cap_amperes(self.svc, charger, limit, unit),
        )

    def _safe_values(self, controls: dict[str, ChargerControl], now: float) -> SafeAllocation:
        """Fallback values whose sum fits the fuse (in lease units), rotated daily.

        Recomputed only when a charger comes or goes, its cap, strategy or connectors
        change (`_observe` marks it), or the day.
        """
        day = int(now // 86400)
        if self._safe_cache is None or self._safe_dirty or self._safe_cache[0] != day:
            chargers = [
                SafeCharger(
                    charger_id=c.charger_id,
                    wiring=c.wiring,
                    max_a=c.max_a if c.cap_a is None else min(c.max_a, c.cap_a),
                    connectors=c.connectors if c.per_connector else 1,
                )
                for c in controls.values()
            ]
            safe = safe_allocation(
                chargers,
                limit_a=self.site.max_current,
                margin_a=self.site.margin,
                fallback_a=self.site.fallback_current,
                rotation_key=day,
            )
            self._safe_cache = (day, safe)
            self._safe_dirty = False
        return self._safe_cache[1]

    def _allocate(
        self, controls: dict[str, ChargerControl], now: float
    ) -> tuple[Allocation, dict[str, float]]:
        """Allocate the capacity to every charger with an active transaction.

        A charger that cannot be steered now (not connected, or no strategy works) is
        budgeted at the most it may draw: its known limit, or its maximum.
        """
        reading = self.grid.reading
        assert reading is not None
        reserved = [0.0, 0.0, 0.0]
        charging: list[tuple[ChargerControl, float]] = []
        sessions: list[Session] = []
        totals: dict[str, float] = {}
        read_at = to_epoch(reading.taken_at)
        gathering = self._gathering_arrivals(controls, now)
        for cid, control in controls.items():
            totals[cid] = 0.0
            if not control.transactions:
                continue
            limit = control.effective_total(now)
            charging.append((control, limit))
            if control.arrived_at is not None:
                if gathering:
                    continue  # at 0 A for a moment more: it joins with the others arriving
                control.arrived_at = None
            if not control.steerable:
                budget = min(limit, control.max_a)
                for p in control.wiring:
                    reserved[p] += budget
                continue
            due = control.lease_due(now, self.policy.lease_time)
            # Lowered recently: a rising load. Lowered a step further if again, and not
            # raised back by a refresh for less than the hysteresis.
            falling = (
                control.changed_at is not None
                and now - control.changed_at < FALLING_S
                and control.limit_before_a > limit
            )
            cap = control.cap_a
            seen = control.seen_since_change()
            if control.reclaimed and not seen and math.isfinite(limit):
                # Capped because its EV drew less, and no report since: it has not shown
                # that it wants more, so it keeps the cap (not raised back to its maximum
                # only to be capped again at its next report).
                cap = limit if cap is None else min(cap, limit)
            sessions.append(
                Session(
                    charger_id=cid,
                    connector_id=0,
                    wiring=control.wiring,
                    min_a=max(control.min_a, control.min_obeyed_a),
                    max_a=control.max_a if cap is None else min(control.max_a, cap),
                    weight=float(len(control.transactions)),
                    started_at=control.started_at,
                    ev_phases=control.ev_phases,
                    drawn_a=control.draw_a(now),
                    held_a=control.held_a(now),
                    reclaim=seen,
                    # Judged against the limit in force, not a raise still waiting.
                    previous_a=limit if math.isfinite(limit) else None,
                    hold=not due or falling,
                    running_since=control.running_since,
                    paused_since=control.paused_since,
                    falling=falling,
                    capped=control.reclaimed,
                )
            )
        if read_at != self.house.read_at:  # once per reading (cycles run on events too)
            bands = [control.band(limit, read_at, now) for control, limit in charging]
            self.house.update(
                read_at, reading.current_a, bands, noise_a=self._noise_a(), settle=SETTLE
            )
            for control, phases in learn_all_from_meter(
                controls.values(), reading.current_a, read_at, now
            ):
                log.info(
                    "charger %s: its EV draws on %d phase(s), seen on the grid meter",
                    control.charger_id, phases,
                )  # fmt: skip
        assert self.house.estimate is not None
        site = SiteState(
            limit_a=(
                self.site.max_current[0] - reserved[0],
                self.site.max_current[1] - reserved[1],
                self.site.max_current[2] - reserved[2],
            ),
            margin_a=self.site.margin,
            meter_a=reading.current_a,
            non_ev_a=self.house.estimate,
            rising_a=self.house.rising_a(),
        )
        allocation = allocate(
            site,
            sessions,
            now=now,
            hysteresis_a=self.site.hysteresis,
            rotation_period=self.site.rotation_period,
            min_run_s=self.site.min_run_time,
            min_pause_s=self.site.min_pause_time,
            noise_a=self._noise_a(),
            lower_step_a=self.site.hysteresis / 2,
        )
        reclaimed = {cid for cid, _ in allocation.reclaimed}
        for (cid, _), limit_a in allocation.limits_a.items():
            totals[cid] = limit_a
            control = controls[cid]
            control.allocation_a = limit_a
            if cid in reclaimed:
                control.reclaimed = True
            elif control.seen_since_change():
                control.reclaimed = False
            if limit_a > 0 and control.running_since is None:
                control.running_since = now
            elif limit_a <= 0 and control.running_since is not None:
                control.running_since = None
                control.paused_since = now
                control.pauses += 1
        return allocation, totals

    def _gathering_arrivals(self, controls: dict[str, ChargerControl], now: float) -> bool:
        """Whether new sessions wait one meter period more before their first allocation.

        EVs plugged in seconds apart (a fleet back at the depot, a car park at opening
        time) would otherwise each get all the room, then half, then a third, a call
        each time, before they draw anything. New sessions are held at 0 A until the
        oldest of them has waited one meter period (its first current stays within two),
        then allocated together; sessions already charging are not touched meanwhile."""
        arrivals = [c.arrived_at for c in controls.values() if c.arrived_at is not None]
        return bool(arrivals) and now - min(arrivals) < self.meter_config.poll_interval

    def _noise_a(self) -> float:
        """What a reading may move by itself: a part of the margin, at most NOISE_A."""
        return min(NOISE_A, self.site.margin / 2)

    def _probe(self, controls: dict[str, ChargerControl], now: float) -> None:
        """Ask the EVs running as probes for a report now (`edge.site.probe`)."""
        for control in controls.values():
            if control.ev_phases is not None or not control.transactions:
                continue
            if trigger_due(control, control.effective_total(now), now):
                control.probe_triggers += 1
                control.probe_next_at = now + PROBE_EVERY
                charger = self.svc.chargers.get(control.charger_id)
                if charger is not None:
                    self.spawn(trigger_meter_values(self.ops, charger, control))

    def _quirk(self, control: ChargerControl, text: str) -> None:
        log.warning("charger %s: %s", control.charger_id, text)
        control.quirks = [*control.quirks[-9:], text]
        self.svc.record(control.charger_id, "SiteQuirk", {"quirk": text})
        charger = self.svc.chargers.get(control.charger_id)
        if charger is not None:
            self.svc.chargers.update(charger, siteControl=control.learned())

    # --- reporting ----------------------------------------------------------------------------

    def statistics(self) -> SiteStatistics:
        """A frozen snapshot of the site for the API, the metrics and the page."""
        now = to_epoch(self.svc.now())
        reading = self.grid.reading
        plan = self.plan
        allocation = plan.allocation if plan is not None else None
        waiting = tuple(cid for cid, _ in allocation.waiting) if allocation else ()
        meter = MeterStatistics(
            driver=self.meter_config.driver,
            transport=self.meter_config.transport,
            poll_interval=self.meter_config.poll_interval,
            stale_after=self.meter_config.stale_after,
            reading=reading,
            age_s=reading.age(self.monotonic()) if reading is not None else None,
            last_error=self.grid.error,
            reads_ok=self.grid.reads_ok,
            reads_failed=self.grid.reads_failed,
        )
        chargers = tuple(
            ChargerStatistics(
                charger_id=cid,
                connected=self.sessions.get(cid) is not None,
                wiring=control.wiring,
                ev_phases=control.ev_phases,
                transactions=tuple(sorted(control.transactions)),
                allocation_a=control.allocation_a if not self.grid.fallback else None,
                target_a=control.target_a,
                lease_a=control.lease_a,
                lease_expires=control.valid_to,
                lease_active=control.valid_to is not None and control.valid_to > now,
                safe_a=plan.safe.get(cid) if plan is not None else None,
                safe_installed_a=control.safe_a,
                drawn_a=control.draw_a(now),
                clock_behind_s=control.clock_behind_s(),
                waiting=cid in waiting,
                cap_a=control.cap_a,
                operator_cap_a=control.operator_cap_a,
                cloud_cap_a=control.cloud_cap_a,
                strategy=control.strategy.describe() if control.strategy is not None else None,
                controllable=control.strategy is not None,
                quirks=tuple(control.quirks),
                last_error=control.last_error,
                pauses=control.pauses,
                probing=bool(control.transactions)
                and control.ev_phases is None
                and (control.allocation_a or 0.0) > 0,
                running_since=control.running_since,
                paused_since=control.paused_since,
                min_a=max(control.min_a, control.min_obeyed_a),
                max_a=control.max_a,
                used_phases=control.used_phases(),
                reclaimed=control.reclaimed,
            )
            for cid, control in sorted(self.controls.items())
        )
        return SiteStatistics(
            at=now,
            state="fallback" if self.grid.fallback else ("starting" if plan is None else "normal"),
            fallback=self.grid.fallback,
            fallback_since=self.grid.fallback_since,
            fallback_reason=(self.grid.error or "no valid reading") if self.grid.fallback else None,
            meter=meter,
            max_current_a=self.site.max_current,
            margin_a=self.site.margin,
            fallback_current_a=self.site.fallback_current,
            lease_time=self.site.lease_time,
            house_a=self.house_a if not self.grid.fallback else None,
            capacity_a=allocation.capacity_a if allocation else None,
            headroom_a=allocation.headroom_a if allocation else None,
            fallback_fits=plan.safe_fits if plan is not None else None,
            fallback_zeroed=tuple(plan.zeroed) if plan is not None else (),
            chargers=chargers,
            waiting=waiting,
            notes=tuple(allocation.notes) if allocation else (),
            cycles=self.cycles,
            cycle_cpu_s=self.cycle_cpu_s,
            cycle_cpu_total_s=self.cycle_cpu_total_s,
        )
