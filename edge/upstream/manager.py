"""Every charger's link to the cloud (`edge.upstream.link`), started on demand.

A link starts when its charger connects to the edge or has messages for the cloud
(also those left from before a restart) and lives in this TaskGroup until the service
stops. The manager passes on what the links need to know: a new outbox row, a charger
that booted, connected or dropped; and it keeps the outbox within its retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

from edge.clock import clock_synchronised
from edge.events import Booted, ChargerEvent, Connected, Disconnected
from edge.operations.pipeline import Operations
from edge.store import OutboxEntry, OutboxSummary
from edge.times import parse_time
from edge.upstream.commands import relay
from edge.upstream.link import UpstreamLink

__all__ = ["Upstream"]

log = logging.getLogger(__name__)

EXPIRE_EVERY = 3600.0  # s between two retention passes over the outbox


class Upstream:
    """The cloud links of all chargers; `run` them until the service stops."""

    def __init__(self, ops: Operations) -> None:
        svc = ops.services
        assert svc.config.upstream is not None
        self.ops = ops
        self.svc = svc
        self.settings = svc.config.upstream
        self.links: dict[str, UpstreamLink] = {}
        self.expired = 0
        self._tasks: asyncio.TaskGroup | None = None
        self._stop: asyncio.Event | None = None
        self._link_tasks: list[asyncio.Task[None]] = []
        svc.journal.on_outbox = self._written
        svc.cloud_authorize = self.authorize
        svc.cloud_data_transfer = self.data_transfer
        svc.events.subscribe(self._on_event)
        self._register_metrics()

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        if clock_synchronised() is False:
            log.warning(
                "the system clock is not synchronised: messages for the cloud carry the "
                "chargers' own timestamps, and the edge adds none of its own"
            )
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            waiting = set(self.svc.journal.outbox_summaries())
            connected = {c.id for c in self.svc.chargers if c.connected}
            for charger_id in sorted(waiting | connected):
                self._link(charger_id)
            tasks.create_task(self._expire_loop(stop), name="upstream-retention")
            await stop.wait()
            # A link may be waiting out a silent cloud's answer: do not wait for it.
            for task in self._link_tasks:
                task.cancel()
        self._tasks = None

    def _link(self, charger_id: str) -> UpstreamLink:
        link = self.links.get(charger_id)
        if link is None:
            link = self.links[charger_id] = UpstreamLink(
                self.svc,
                charger_id,
                self.settings,
                relay=lambda cid, action, payload: relay(
                    self.ops, cid, action, payload, settled=self.links[cid].settled
                ),
                spawn=self._spawn,
            )
            if self._tasks is not None and self._stop is not None:
                self._link_tasks.append(
                    self._tasks.create_task(link.run(self._stop), name=f"upstream-{charger_id}")
                )
        return link

    async def authorize(self, charger_id: str, id_tag: str) -> dict[str, Any] | None:
        """The cloud's verdict within ``authorize_timeout``, else None (the edge decides)."""
        return await self._ask(charger_id, "authorize", UpstreamLink.authorize, id_tag)

    async def data_transfer(
        self, charger_id: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The cloud's answer to a charger's DataTransfer within ``authorize_timeout``, else
        None (the edge answers, and the message waits in the outbox)."""
        return await self._ask(charger_id, "data_transfer", UpstreamLink.data_transfer, payload)

    async def _ask(
        self,
        charger_id: str,
        name: str,
        question: Callable[[UpstreamLink, Any], Awaitable[dict[str, Any] | None]],
        argument: Any,
    ) -> dict[str, Any] | None:
        """A question the charger waits on, put to the cloud live: its answer within
        ``authorize_timeout``, else None. Counted as ``edge_upstream_<name>_total``."""
        link = self.links.get(charger_id)
        if link is None or not link.state.connected:
            self.svc.metrics.inc(f"edge_upstream_{name}_total", outcome="offline")
            return None
        started = time.monotonic()
        try:
            answer = await asyncio.wait_for(
                question(link, argument), self.settings.authorize_timeout
            )
        except TimeoutError:
            outcome, answer = "timeout", None
        except Exception as err:  # the link went down meanwhile: the edge decides
            log.info("cloud %s for %s failed: %s", name, charger_id, err)
            outcome, answer = "failed", None
        else:
            outcome = "cloud" if answer is not None else "failed"
        self.svc.metrics.inc(f"edge_upstream_{name}_total", outcome=outcome)
        # Sum and count (the _total above) give the mean latency.
        self.svc.metrics.inc(f"edge_upstream_{name}_seconds_total", time.monotonic() - started)
        return answer

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        if self._tasks is None:
            coroutine.close()
            return
        self._tasks.create_task(coroutine)

    def _written(self, entry: OutboxEntry) -> None:
        self._link(entry.charger_id).written(entry)

    def _on_event(self, event: ChargerEvent) -> None:
        if isinstance(event, Booted):
            self._link(event.charger_id).charger_booted()
        elif isinstance(event, Connected | Disconnected):
            self._link(event.charger_id).wake()

    async def _expire_loop(self, stop: asyncio.Event) -> None:
        """Drop what the cloud has not taken within the retention, counted and logged."""
        while not stop.is_set():
            cutoff = self.svc.now() - timedelta(days=self.settings.retention_days)
            dropped = await self.svc.journal.outbox_expire(cutoff)
            if dropped:
                for link in self.links.values():
                    link.forget_front()
                self.expired += dropped
                self.svc.metrics.inc("edge_upstream_expired_total", dropped)
                log.error(
                    "cloud outbox: %d message(s) older than %g days dropped unsent",
                    dropped, self.settings.retention_days,
                )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), EXPIRE_EVERY)

    def statistics(self) -> dict[str, Any]:
        """`GET /api/upstream` (DESIGN §7), plus what the operator needs to act."""
        summaries = self.svc.journal.outbox_summaries()
        # A link outlives its charger's deletion (the outbox still goes to the cloud):
        # listed while it has messages or is up, not once it is idle.
        up = {charger_id for charger_id, link in self.links.items() if link.state.connected}
        ids = sorted({c.id for c in self.svc.chargers} | set(summaries) | up)
        chargers = [self.charger_statistics(charger_id, summaries) for charger_id in ids]
        parked = [
            {
                "seq": e.seq,
                "chargerId": e.charger_id,
                "action": e.action,
                "createdAt": e.created_at,
                "attempts": e.attempts,
                "reason": e.parked,
            }
            for e in self.svc.journal.outbox_parked(limit=100)
        ]
        return {
            "url": self.settings.url,
            "clockSynchronised": clock_synchronised(),
            "chargers": chargers,
            "parked": parked,
            "expired": self.expired,
        }

    def _register_metrics(self) -> None:
        m = self.svc.metrics
        m.describe_counter("edge_upstream_forwarded_total", "Messages the cloud acknowledged")
        m.describe_counter("edge_upstream_parked_total", "Messages parked after refusals")
        m.describe_counter("edge_upstream_coalesced_total", "Statuses a later one replaced")
        m.describe_counter("edge_upstream_expired_total", "Messages dropped past retention")
        m.describe_counter("edge_upstream_authorize_total", "Authorize asked of the cloud")
        m.describe_counter("edge_upstream_data_transfer_total", "DataTransfer asked of the cloud")
        m.gauge(
            "edge_upstream_connected",
            "Cloud links up",
            lambda: [((), float(sum(link.state.connected for link in self.links.values())))],
        )

        def pending() -> list[tuple[tuple[tuple[str, str], ...], float]]:
            return [
                ((("charger", cid),), float(s.pending))
                for cid, s in self.svc.journal.outbox_summaries().items()
            ]

        def oldest() -> list[tuple[tuple[tuple[str, str], ...], float]]:
            now = self.svc.now()
            ages: list[tuple[tuple[tuple[str, str], ...], float]] = []
            for cid, s in self.svc.journal.outbox_summaries().items():
                if s.oldest is not None:
                    with contextlib.suppress(ValueError):
                        age = (now - parse_time(s.oldest)).total_seconds()
                        ages.append(((("charger", cid),), max(0.0, age)))
            return ages

        m.gauge("edge_upstream_pending", "Messages waiting for the cloud", pending)
        m.gauge(
            "edge_clock_synchronised",
            "1 while the system clock is synchronised (adjtimex), 0 while it is not",
            lambda: [] if (s := clock_synchronised()) is None else [((), float(s))],
        )
        m.gauge("edge_upstream_oldest_pending_seconds", "Age of the oldest waiting message", oldest)

    def charger_statistics(
        self, charger_id: str, summaries: dict[str, OutboxSummary] | None = None
    ) -> dict[str, Any]:
        """One charger's link (`GET /api/upstream`, `GET /api/chargers/{id}`)."""
        if summaries is None:
            summaries = self.svc.journal.outbox_summaries()
        link = self.links.get(charger_id)
        summary = summaries.get(charger_id)
        return {
            "id": charger_id,
            "upstreamId": link.upstream_id if link else self._upstream_id(charger_id),
            "connected": bool(link and link.state.connected),
            "registration": link.state.registration if link else None,
            "pending": summary.pending - summary.parked if summary else 0,
            "parked": summary.parked if summary else 0,
            "oldestPending": summary.oldest if summary else None,
            "lastError": link.state.last_error if link else None,
            "forwarded": link.state.sent if link else 0,
        }

    def _upstream_id(self, charger_id: str) -> str:
        settings = self.svc.config.chargers.get(charger_id)
        return (settings and settings.upstream_id) or charger_id
