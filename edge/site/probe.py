"""Learning an EV's phase use quickly, while it runs as a probe.

An EV whose phase use is not known is budgeted on every phase its charger is wired to
(`profiles.allocation`: admitted only when that worst case fits, in turn), so it draws
and can be learned; this module makes the learning take seconds instead of waiting for
the charger's next MeterValues (10-60 s), which would keep the EVs queued behind the
probe waiting as long:

- **From the charger**: ``PROBE_DELAY`` s after the lease that lets the EV draw, ask for
  a report now (TriggerMessage MeterValues), up to ``PROBE_TRIGGERS`` times, ``PROBE_EVERY``
  s apart, until a report shows the phases (`profiles.allocation.learn_phases`). A charger
  that answers anything but Accepted is not asked again.
- **From the grid meter**, for chargers that report no current: the reading's change per
  phase since the probe's lease was sent (`control.MeterProbe`), judged only while no other
  charger's limit changed meanwhile (their changes would show on the same phases).

Either way the probe ends when the phases are known; an EV that never shows them (it
does not draw) stays budgeted on every wired phase: the safe side.
"""

from __future__ import annotations

import logging

from edge.chargers import Charger
from edge.operations import ChargerCallError, OperationError, Origin
from edge.operations.pipeline import Operations
from edge.site.control import EV_REACTION, METER_LAG, ChargerControl, Phases
from profiles.allocation import learn_phases

__all__ = [
    "PROBE_DELAY",
    "PROBE_EVERY",
    "PROBE_TRIGGERS",
    "learn_from_meter",
    "trigger_due",
    "trigger_meter_values",
]

log = logging.getLogger(__name__)

PROBE_DELAY = 3.0  # s after the lease before asking: the EV has started and ramped
PROBE_EVERY = 3.0  # s between two asks
PROBE_TRIGGERS = 4  # asks per session at most


def trigger_due(control: ChargerControl, limit_a: float, now: float) -> bool:
    """Whether to ask the charger for a report now (see the module docstring)."""
    return (
        control.ev_phases is None
        and control.steerable
        and bool(control.transactions)
        and control.triggers_work
        and control.probe_triggers < PROBE_TRIGGERS
        and control.changed_at is not None
        and limit_a >= control.min_a
        and now >= max(control.changed_at + PROBE_DELAY, control.probe_next_at)
    )


async def trigger_meter_values(ops: Operations, charger: Charger, control: ChargerControl) -> None:
    """TriggerMessage(MeterValues) for the connector of its transaction; the report it
    brings is learned from like any other (`SiteController._on_meter_values`)."""
    connector = min(
        (cid for cid, state in charger.connectors.items() if state.transaction_id is not None),
        default=0,
    )
    payload = {"requestedMessage": "MeterValues", "connectorId": connector}
    try:
        outcome = await ops.send(charger, "TriggerMessage", payload, origin=Origin.SITE)
    except (ChargerCallError, OperationError) as err:
        if isinstance(err, ChargerCallError):
            control.triggers_work = False
        log.info("charger %s: TriggerMessage(MeterValues) failed: %s", charger.id, err)
        return
    if outcome.response.get("status") != "Accepted":
        control.triggers_work = False
        log.info(
            "charger %s: TriggerMessage(MeterValues) %s: its phases are learned from its "
            "own reports and the grid meter",
            charger.id,
            outcome.response.get("status"),
        )


def learn_from_meter(
    control: ChargerControl,
    reading_a: Phases,
    read_at: float,
    others_changed_at: float | None,
) -> int | None:
    """1 or 3 from the grid meter's change since the probe's lease (None: not yet, or
    not judgeable). `others_changed_at`: the latest limit change of any other charger."""
    probe = control.meter_probe
    if probe is None or control.ev_phases is not None:
        return None
    if others_changed_at is not None and others_changed_at > probe.at - EV_REACTION:
        control.meter_probe = None  # another EV moved meanwhile: its change would show too
        return None
    if read_at < probe.at + PROBE_DELAY + METER_LAG:
        return None
    change = (
        reading_a[0] - probe.baseline_a[0],
        reading_a[1] - probe.baseline_a[1],
        reading_a[2] - probe.baseline_a[2],
    )
    return learn_phases(change, control.wiring, probe.limit_a, min_signal_a=0.6 * probe.limit_a)
