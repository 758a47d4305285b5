"""Sending the site's profiles: a cycle's plan goes out as calls, one at a time per charger.

`LeaseSending` is the part of `edge.site.controller.SiteController` that turns the leases
and safe values a cycle decided (`profiles.lease.plan_leases`) into SetChargingProfile
calls, runs each charger's calls in a task of its own, and learns from the answers: an
accepted profile is what the charger holds, a refusal moves it to its next strategy
(purpose, stack levels), a charger that does not answer is retried with back-off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from edge.chargers import Charger
from edge.features import smart_charging
from edge.operations import ChargerCallError, InvalidPayload, OperationError, Origin
from edge.operations.pipeline import Operations
from edge.services import Services
from edge.session import SessionRegistry
from edge.site.control import ChargerControl
from edge.site.grid_meter import GridMeter
from edge.site.probe import start_meter_probe
from edge.times import from_epoch, to_epoch
from profiles.lease import (
    HeldLease,
    LeasePolicy,
    LeaseUpdate,
    LeaseView,
    Strategy,
    plan_leases,
    site_profile,
    strategies,
    unsuited,
)
from profiles.model import render_profile

__all__ = ["LeaseSending", "Spawner"]

log = logging.getLogger("edge.site.controller")

Spawner = Callable[[Coroutine[Any, Any, None]], None]

RETRY_MAX = 60.0  # s: the longest back-off after a failed call
NOT_SUPPORTED = frozenset({"NotSupported", "NotImplemented"})


class LeaseSending:
    """Sends each charger its safe profile and leases (mixed into the site controller)."""

    svc: Services
    ops: Operations
    sessions: SessionRegistry
    grid: GridMeter
    policy: LeasePolicy
    spawn: Spawner
    monotonic: Callable[[], float]
    _safe_dirty: bool

    if TYPE_CHECKING:  # the controller's own, which this part calls

        def wake(self) -> None:
            """Run a control cycle soon."""

        def _quirk(self, control: ChargerControl, text: str) -> None:
            """Report and keep what was learned of a charger (the controller owns the
            charger document's ``siteControl``)."""

    def _strategy(self, control: ChargerControl, charger: Charger | None = None) -> Strategy | None:
        """The strategy the charger is on now (None: none works, it cannot be limited)."""
        charger = charger or self.svc.chargers.get(control.charger_id)
        levels = charger.reported_int("ChargeProfileMaxStackLevel") if charger else None
        options = strategies(levels)
        return options[control.strategy_index] if control.strategy_index < len(options) else None

    def _dispatch(
        self,
        controls: dict[str, ChargerControl],
        targets: dict[str, float],
        safe: dict[str, float],
        now: float,
    ) -> None:
        """Plan and send: every charger's leases bound the others' lease ends
        (`profiles.lease`), so every charger is in the plan; those that can be sent to
        now have a target."""
        mono = self.monotonic()
        views: dict[str, LeaseView] = {}
        ready: dict[str, float | None] = {}  # charger -> the safe value it needs, if any
        sendable: dict[str, float] = {}
        for cid, control in controls.items():
            if control.maybe_leases:
                control.maybe_leases = [m for m in control.maybe_leases if m.valid_to > now]
            safe_next = None
            if control.steerable and (control.retry_at <= mono or control.busy):
                if not control.busy:
                    safe_value = safe.get(cid, 0.0)
                    needs_safe = control.safe_a != safe_value or (
                        control.safe_strategy != control.strategy_index
                    )
                    safe_next = safe_value if needs_safe else None
                    ready[cid] = safe_next
                if cid in targets:
                    sendable[cid] = targets[cid]
            views[cid] = LeaseView(
                control.safe_a,
                control.lease_a,
                control.valid_to,
                control.changed_at,
                control.busy,
                control.lowering,
                tuple(control.maybe_leases),
                tuple(control.maybe_safes),
                safe_next,
            )
        updates = {u.key: u for u in plan_leases(views, sendable, now, self.policy)}
        for cid, safe_next in ready.items():
            control = controls[cid]
            update = updates.get(cid)
            if update is None and safe_next is not None and unsuited(views[cid], now):
                safe_next = None  # not before its lease went again (`plan_leases`)
            if safe_next is not None or update is not None:
                if safe_next is not None:
                    # In force as soon as it lands, whatever goes first: the others'
                    # leases are planned for it from now on.
                    control.maybe_safes.append(safe_next)
                control.busy = True
                control.lowering = (update is not None and update.lowers) or (
                    safe_next is not None and (control.safe_a is None or safe_next < control.safe_a)
                )
                self.spawn(self._send(control, safe_next, update))

    async def _send(
        self, control: ChargerControl, safe_value: float | None, update: LeaseUpdate[str] | None
    ) -> None:
        """Send the safe profile and/or a lease to one charger: the safe profile first,
        unless the charger holds one of its strategy already (the lease, planned for the
        new safe value too, then goes first: `profiles.lease`)."""
        try:
            lease_first = (
                update is not None
                and safe_value is not None
                and control.safe_a is not None
                and control.safe_strategy == control.strategy_index
            )
            if lease_first and update is not None and not await self._send_lease(control, update):
                if safe_value is not None:
                    control.maybe_safes.remove(safe_value)  # never sent
                return
            if safe_value is not None and not await self._send_safe(control, safe_value):
                return
            if update is not None and not lease_first:
                await self._send_lease(control, update)
        except Exception:
            log.exception("charger %s: sending site profiles failed", control.charger_id)
        finally:
            if control.lowering:
                self.wake()  # raises elsewhere may have waited for this one
            control.busy = False
            control.lowering = False

    async def _send_safe(self, control: ChargerControl, value: float) -> bool:
        """One safe profile (already among `ChargerControl.maybe_safes`: until the charger
        answers, and for good if it never does, it may be in force); True when accepted."""
        outcome = await self._set(control, safe=True, value=value, valid_to=None)
        if outcome:
            control.safe_a = value
            control.safe_strategy = control.strategy_index
            control.maybe_safes.clear()
        elif outcome is False:
            control.maybe_safes.remove(value)
        return bool(outcome)

    async def _send_lease(self, control: ChargerControl, update: LeaseUpdate[str]) -> bool:
        """One lease; True when accepted. Until the charger answers, and for good if it
        never does, it may hold the lease (`ChargerControl.maybe_leases`)."""
        sent = to_epoch(self.svc.now())
        before = control.effective_total(sent)
        held = HeldLease(update.limit_a, update.valid_to)
        control.maybe_leases.append(held)
        outcome = await self._set(
            control, safe=False, value=update.limit_a, valid_to=update.valid_to
        )
        if outcome is False:
            control.maybe_leases.remove(held)
        if not outcome:
            return False
        control.maybe_leases.clear()  # it holds this one: one lease at a time
        changed = control.lease_a != update.limit_a
        control.lease_a = update.limit_a
        control.valid_to = update.valid_to
        if changed:
            control.changed_at = sent
            control.limit_before_a = before
            reading = self.grid.reading
            start_meter_probe(
                control, before, control.effective_total(sent),
                reading.current_a if reading else None, sent,
            )  # fmt: skip
        self.svc.metrics.inc("edge_site_leases_sent_total", reason=update.reason)
        return True

    async def _set(
        self, control: ChargerControl, *, safe: bool, value: float, valid_to: float | None
    ) -> bool | None:
        """One SetChargingProfile; True when Accepted, False when not sent or refused (a
        refusal changes the strategy), None when nobody knows (no answer)."""
        strategy = self._strategy(control)
        charger = self.svc.chargers.get(control.charger_id)
        if strategy is None or charger is None or self.sessions.get(charger.id) is None:
            return False
        now = self.svc.now()
        profile = site_profile(
            strategy=strategy,
            safe=safe,
            limit_a=value,
            now=now,
            valid_to=None if valid_to is None else from_epoch(valid_to),
        )
        payload = {"connectorId": 0, "csChargingProfiles": render_profile(profile)}
        kind = "safe" if safe else "lease"

        def record(response: dict[str, Any]) -> None:
            # The profile object as built: no parse of what was just rendered.
            if response.get("status") == "Accepted":
                smart_charging.record_profile(self.svc, charger, 0, profile)

        try:
            outcome = await self.ops.send(
                charger, "SetChargingProfile", payload, origin=Origin.SITE, force=True,
                record=record,
            )  # fmt: skip
        except ChargerCallError as err:
            code = err.extra.get("errorCode")
            if code in NOT_SUPPORTED:
                # No smart charging at all: no other purpose or level will do.
                self._next_strategy(control, f"answers SetChargingProfile with {code}", last=True)
                return False
            self._failed(control, f"{kind} profile: CALLERROR {code} {err.detail}")
            return False
        except OperationError as err:
            self._failed(control, f"{kind} profile: {err}")
            return False if isinstance(err, InvalidPayload) else None
        response = outcome.response
        if response.get("status") != "Accepted":
            self._next_strategy(
                control, f"refused a {strategy.describe()} ({response.get('status')})"
            )
            return False
        control.failures = 0
        control.last_error = None
        return True

    def _failed(self, control: ChargerControl, text: str) -> None:
        control.failures += 1
        control.last_error = text
        control.retry_at = self.monotonic() + min(RETRY_MAX, 2.0**control.failures)
        log.info("charger %s: %s", control.charger_id, text)

    def _next_strategy(self, control: ChargerControl, why: str, *, last: bool = False) -> None:
        control.strategy_index = len(strategies(None)) if last else control.strategy_index + 1
        control.safe_a = control.safe_strategy = None
        control.lease_a = control.valid_to = None
        strategy = control.strategy = self._strategy(control)
        self._safe_dirty = True
        then = (
            f"now trying {strategy.describe()}"
            if strategy is not None
            else "it cannot be limited: budgeted at its maximum"
        )
        self._quirk(control, f"{why}; {then}")
        self.wake()
