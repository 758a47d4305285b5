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
from typing import Any

from edge.chargers import Charger
from edge.features import smart_charging
from edge.operations import ChargerCallError, OperationError, Origin
from edge.operations.pipeline import Operations
from edge.services import Services
from edge.session import SessionRegistry
from edge.site.control import ChargerControl
from edge.site.grid_meter import GridMeter
from edge.site.probe import start_meter_probe
from edge.times import from_epoch, to_epoch
from profiles.lease import (
    LeasePolicy,
    LeaseUpdate,
    LeaseView,
    Strategy,
    plan_leases,
    site_profile,
    strategies,
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

    def wake(self) -> None:
        """Run a control cycle soon (the controller's)."""
        raise NotImplementedError

    def _quirk(self, control: ChargerControl, text: str) -> None:
        """Report and keep what was learned of a charger (the controller's: it owns the
        charger document's ``siteControl``)."""
        raise NotImplementedError

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
        mono = self.monotonic()
        views: dict[str, LeaseView] = {}
        for cid, control in controls.items():
            if not control.steerable:
                continue
            if control.retry_at > mono and not control.busy:
                continue
            views[cid] = LeaseView(
                control.safe_a,
                control.lease_a,
                control.valid_to,
                control.changed_at,
                control.busy,
                control.lowering,
            )
        updates = {u.key: u for u in plan_leases(views, targets, now, self.policy)}
        for cid, view in views.items():
            if view.busy:
                continue
            control = controls[cid]
            safe_value = safe.get(cid, 0.0)
            needs_safe = control.safe_a != safe_value or (
                control.safe_strategy != control.strategy_index
            )
            update = updates.get(cid)
            if needs_safe or update is not None:
                control.busy = True
                control.lowering = (update is not None and update.lowers) or (
                    needs_safe and (control.safe_a is None or safe_value < control.safe_a)
                )
                self.spawn(self._send(control, safe_value if needs_safe else None, update))

    async def _send(
        self, control: ChargerControl, safe_value: float | None, update: LeaseUpdate[str] | None
    ) -> None:
        """Send the safe profile and/or a lease to one charger, in that order."""
        try:
            if safe_value is not None:
                if not await self._set(control, safe=True, value=safe_value, valid_to=None):
                    return
                control.safe_a = safe_value
                control.safe_strategy = control.strategy_index
            if update is not None:
                sent = to_epoch(self.svc.now())
                before = control.effective_total(sent)
                if not await self._set(
                    control, safe=False, value=update.limit_a, valid_to=update.valid_to
                ):
                    return
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
        except Exception:
            log.exception("charger %s: sending site profiles failed", control.charger_id)
        finally:
            if control.lowering:
                self.wake()  # raises elsewhere may have waited for this one
            control.busy = False
            control.lowering = False

    async def _set(
        self, control: ChargerControl, *, safe: bool, value: float, valid_to: float | None
    ) -> bool:
        """One SetChargingProfile; True when Accepted. Refusals change the strategy."""
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
            return False
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
