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
  phases on which no other charger's limit changed meanwhile (`learn_from_meter`).

Either way the probe ends when the phases are known; an EV that never shows them (it
does not draw) stays budgeted on every wired phase: the safe side.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from edge.chargers import Charger
from edge.operations import ChargerCallError, OperationError, Origin
from edge.operations.pipeline import Operations
from edge.site.control import EV_REACTION, METER_LAG, ChargerControl, MeterProbe, Phases

__all__ = [
    "PROBE_DELAY",
    "PROBE_EVERY",
    "PROBE_TRIGGERS",
    "PROBE_WINDOW",
    "learn_all_from_meter",
    "learn_from_meter",
    "start_meter_probe",
    "trigger_due",
    "trigger_meter_values",
]

log = logging.getLogger(__name__)

PROBE_DELAY = 3.0  # s after the lease before asking: the EV has started and ramped
PROBE_EVERY = 3.0  # s between two asks
PROBE_TRIGGERS = 4  # asks per session at most
PROBE_WINDOW = 30.0  # s the grid meter is watched for a probe's phases


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


def start_meter_probe(control: ChargerControl, before_a: float, after_a: float,
                      reading_a: Phases | None, at: float) -> None:  # fmt: skip
    """A lease from below to at least the minimum of an EV of unknown phase use: keep the
    reading it starts from, so the meter's change can show its phases."""
    if control.ev_phases is None and before_a < control.min_a <= after_a and reading_a:
        control.meter_probe = MeterProbe(at, reading_a, after_a)


def learn_all_from_meter(
    controls: Iterable[ChargerControl], reading_a: Phases, read_at: float, now: float
) -> list[tuple[ChargerControl, int]]:
    """The probes (of chargers that report no current) whose phases the reading shows,
    judged on the phases no other charger's limit changed meanwhile (`learn_from_meter`)."""
    controls = list(controls)
    learned = []
    for control in controls:
        if control.meter_probe is None or control.draw_a(now) is not None:
            continue
        since = control.meter_probe.at - EV_REACTION
        busy = frozenset(
            p
            for c in controls
            if c is not control and c.changed_at is not None and c.changed_at > since
            for p in c.used_phases()
        )
        phases = learn_from_meter(control, reading_a, read_at, busy)
        if phases is not None:
            control.ev_phases = phases
            control.meter_probe = None
            learned.append((control, phases))
    return learned


def learn_from_meter(
    control: ChargerControl, reading_a: Phases, read_at: float, busy: frozenset[int]
) -> int | None:
    """1 or 3 from the grid meter's change since the probe's lease (None: not yet, or
    not judgeable).

    `busy`: the phases on which another charger's limit changed meanwhile; their change
    says nothing about this EV. The EV's first wired phase must be free of such changes
    (it shows the EV drawing), and one other wired phase is enough to judge: a 3-phase
    EV draws on all of them, a 1-phase one on none.
    """
    probe = control.meter_probe
    if probe is None or control.ev_phases is not None:
        return None
    if read_at > probe.at + PROBE_WINDOW:
        control.meter_probe = None  # never showed: stays budgeted on every wired phase
        return None
    first, others = control.wiring[0], [p for p in control.wiring[1:] if p not in busy]
    if read_at < probe.at + PROBE_DELAY + METER_LAG or first in busy or not others:
        return None
    seen = reading_a[first] - probe.baseline_a[first]
    if seen < 0.5 * probe.limit_a:
        return None  # not drawing (yet)
    elsewhere = max(reading_a[p] - probe.baseline_a[p] for p in others)
    return 3 if elsewhere > max(1.0, 0.25 * seen) else 1
