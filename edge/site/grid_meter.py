"""The site's grid meter as the control loop sees it: polled, judged fresh or stale.

`GridMeter.poll` reads the meter every ``poll_interval`` in its own task and keeps the
latest valid reading; `GridMeter.judge` (once per control cycle) says whether it is
fresh, and enters or leaves *fallback* when it is stale for ``stale_after`` s (or there
has been none since start): the site says so in the log and the journal
(``SiteFallback``). Stale meter data counts as overload.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from drivers import Meter, MeterError, MeterReading
from edge.services import Services
from edge.times import to_epoch

__all__ = ["GridMeter"]

log = logging.getLogger("edge.site.controller")


class GridMeter:
    """The meter, its latest valid reading, read counts, and the fallback state."""

    def __init__(
        self,
        svc: Services,
        meter: Meter,
        *,
        wake: Callable[[], None],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        assert svc.config.meter is not None
        self.svc = svc
        self.meter = meter
        self.config = svc.config.meter
        self.wake = wake
        self.monotonic = monotonic
        self.reading: MeterReading | None = None
        self.error: str | None = None
        self.reads_ok = 0
        self.reads_failed = 0
        self.fallback = False
        self.fallback_since: float | None = None
        self.started = monotonic()

    async def poll(self, stop: asyncio.Event) -> None:
        """Read the meter every poll interval until `stop` is set; wake the loop on each
        valid reading."""
        interval = self.config.poll_interval
        while not stop.is_set():
            began = self.monotonic()
            try:
                reading = await self.meter.read()
            except MeterError as err:
                self.read_failed(str(err))
            except Exception as err:
                # A driver bug or an error pymodbus did not map: a failed read like any
                # other (the site goes to fallback when they last), logged in full once.
                if self.error != f"unexpected error: {err!r}":
                    log.exception("grid meter: unexpected error")
                self.read_failed(f"unexpected error: {err!r}", logged=True)
            else:
                self.reads_ok += 1
                if self.error is not None:
                    log.info("grid meter answers again")
                self.error = None
                self.reading = reading
                self.wake()
            await asyncio.sleep(max(0.0, interval - (self.monotonic() - began)))

    def read_failed(self, error: str, *, logged: bool = False) -> None:
        self.reads_failed += 1
        self.svc.metrics.inc("edge_site_meter_errors_total")
        if self.error != error and not logged:
            log.warning("grid meter: %s", error)
        self.error = error

    def stale_since_start(self) -> bool:
        """No reading for ``stale_after`` s since start: as stale as a lost meter."""
        return self.monotonic() - self.started > self.config.stale_after

    def judge(self) -> bool:
        """Whether the reading is fresh; enters or leaves fallback (and says so)."""
        stale_after = self.config.stale_after
        reading = self.reading
        mono = self.monotonic()
        fresh = reading is not None and mono - reading.monotonic <= stale_after
        stale = not fresh and (reading is not None or self.stale_since_start())
        if stale and not self.fallback:
            self.fallback = True
            self.fallback_since = to_epoch(self.svc.now())
            age = (
                "no reading yet" if reading is None
                else f"last reading {reading.age(mono):.1f} s ago"
            )  # fmt: skip
            log.warning("grid meter stale (%s): site in fallback, chargers at safe values", age)
            reason = self.error or age
            self.svc.record(None, "SiteFallback", {"active": True, "reason": reason})
        elif fresh and self.fallback:
            self.fallback = False
            self.fallback_since = None
            log.info("grid meter readings are back: site leaves fallback")
            self.svc.record(None, "SiteFallback", {"active": False})
        return fresh
