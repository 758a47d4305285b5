"""Wiring: stores, services, the OCPP and web listeners, and the periodic tasks.

One TaskGroup owns every long-lived task. Shutdown follows the aiohttp order:
stop accepting, close charger connections with a close code, let in-flight
handlers finish, flush the state documents, drain and close the journal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from types import TracebackType
from typing import Any

from aiohttp import web

from edge import features
from edge.chargers import ChargerRegistry, Registration
from edge.config import Config
from edge.features import certificates, local_auth, remote_trigger, reservation, smart_charging
from edge.files.ftp import FtpServer
from edge.files.store import FileStore, default_public_url, public_host
from edge.id_tags import CloudVerdicts, IdTagList
from edge.logs import LogRing
from edge.malloc import release_free_memory
from edge.metrics import Metrics
from edge.operations.pipeline import Operations
from edge.security.authority import CertificateAuthority
from edge.security.connection import ConnectionSecurity
from edge.security.events import record_security_event
from edge.security.tls import TlsError, TlsFiles, TlsListenerContext, TlsState, build_tls
from edge.security.token import TokenStore
from edge.server import OcppServer
from edge.services import Services
from edge.session import SessionRegistry
from edge.site.caps import SiteCaps
from edge.site.commissioning import build_meter, fallback_report
from edge.site.controller import SiteController
from edge.site.report import register_site_metrics
from edge.store import DocumentStore, Journal
from edge.systemd import Notifier, status_text
from edge.times import utc_now
from edge.transactions.active import ActiveTransactions
from edge.upstream import Upstream
from edge.web.app import build_app

__all__ = ["App"]

log = logging.getLogger(__name__)

STATE_FLUSH_INTERVAL = 1.0  # s: bounds what a crash can lose of non-transaction state
CALL_TICK_INTERVAL = 0.25  # s: resolution of CALL timeouts
PRUNE_INTERVAL = 3600.0  # s
TRIM_EVERY_FLUSHES = 60  # about once a minute: give memory freed after bursts back
# aiohttp waits this long for in-flight HTTP handlers at shutdown (its default, 60 s,
# would hold a restart on one slow client); keep-alive connections are closed at once.
WEB_SHUTDOWN_TIMEOUT = 2.0  # s


def vars_of(problem: Any) -> dict[str, str]:
    return {"severity": problem.severity, "text": problem.text}


class App:
    """The running service. Use as `async with App(config) as app: await app.wait_stopped()`."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], datetime] = utc_now,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.notifier = notifier if notifier is not None else Notifier(None)
        self.ocpp_addresses: list[tuple[str, int]] = []
        self.web_addresses: list[tuple[str, int]] = []
        self.ocpp_tls_addresses: list[tuple[str, int]] = []
        self._tls_state: TlsState | None = None
        self._tls: TlsListenerContext | None = None
        self.ftp_address: tuple[str, int] | None = None
        self._ftp: FtpServer | None = None
        self._stop = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self._runner: web.AppRunner | None = None
        self._ocpp: OcppServer | None = None
        self._documents: list[DocumentStore] = []
        # The page's log view: what this service logs from its start to its stop.
        self.log_ring = LogRing()
        self.site: SiteController | None = None
        self.upstream: Upstream | None = None
        self.services: Services
        self.files: FileStore
        self.sessions: SessionRegistry
        self.operations: Operations
        # The API token in plain text when the configuration gives it (tests, the demo);
        # the service itself only checks `token`, which keeps a hash.
        self.api_token: str | None
        self.token: TokenStore

    @property
    def ocpp_port(self) -> int:
        return self.ocpp_addresses[0][1]

    @property
    def ocpp_tls_port(self) -> int:
        return self.ocpp_tls_addresses[0][1]

    @property
    def web_port(self) -> int:
        return self.web_addresses[0][1]

    def stop(self) -> None:
        """Ask the service to shut down (safe from a signal handler)."""
        self._stop.set()

    async def wait_stopped(self) -> None:
        await self._stop.wait()

    async def __aenter__(self) -> App:
        # File flushes run in worker threads; two are plenty, and every thread costs
        # memory on a Pi (stack, malloc arena).
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="edge-io")
        asyncio.get_running_loop().set_default_executor(self._executor)
        self.log_ring.install()
        try:
            await self._open_stores()
        except BaseException:
            self.log_ring.remove()
            raise
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        try:
            await self._start_listeners()
        except BaseException:
            self._stop.set()
            await self._close_listeners()
            await self._tg.__aexit__(None, None, None)
            await self._close_stores()
            self.log_ring.remove()
            raise
        for coroutine in (self._flush_loop(), self._tick_loop(), self._prune_loop()):
            self._tg.create_task(coroutine)
        if self.services.certificates is not None:
            self._tg.create_task(self.services.certificates.run(self._stop))
        if self.upstream is not None:
            self._tg.create_task(self.upstream.run(self._stop))
            log.info("cloud link on: %s", self.config.upstream and self.config.upstream.url)
        if self.site is not None:
            self._tg.create_task(self.site.run(self._stop))
            meter = self.config.meter
            assert meter is not None
            log.info("site load balancing on: meter %s over %s", meter.driver, meter.transport)
        self._tg.create_task(self.notifier.run(self._stop, self.status_text))
        # Let the tasks just created take their first step (the site loop subscribes to
        # events and starts polling the meter) before systemd hears that we are ready.
        await asyncio.sleep(0)
        self.notifier.ready(self.status_text())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self.notifier.stopping()
        assert self._tg is not None
        try:
            await self._close_listeners()
        finally:
            try:
                await self._tg.__aexit__(exc_type, exc, tb)
            finally:
                try:
                    await self._close_stores()
                finally:
                    self.log_ring.remove()

    def status_text(self) -> str:
        """The service's state in one line (systemd's status; see `edge.systemd`)."""
        meter: str | None = None
        if self.site is not None:
            grid = self.site.grid
            meter = "stale" if grid.fallback else ("ok" if grid.reading is not None else "waiting")
        return status_text(len(self.sessions), meter)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a short background job inside the service's task group."""
        assert self._tg is not None
        self._tg.create_task(coroutine)

    # --- start-up -----------------------------------------------------------------------

    async def _open_stores(self) -> None:
        cfg = self.config
        data_dir = cfg.storage.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.api_token = cfg.web.api_token
        self.token = TokenStore(data_dir, cfg.web.api_token)
        if not self.token.exists:
            log.warning(
                "no API token yet: `edge-csms token rotate` makes one (until then the API"
                " and the page without [web] password refuse every request)"
            )
        chargers_store = DocumentStore(data_dir / "chargers.json")
        id_tags_store = DocumentStore(data_dir / "id_tags.json")
        certificates_store = DocumentStore(data_dir / "certificates.json")
        security_store = DocumentStore(data_dir / "charger_security.json")
        self._documents = [chargers_store, id_tags_store, certificates_store, security_store]
        # The server certificate's fatal problems stop the start here, before anything
        # listens (TlsError, reported by `edge-csms serve`).
        self._tls_state = self._build_tls() if cfg.ocpp.tls is not None else None
        journal = Journal(
            data_dir / "journal.sqlite3",
            synchronous=cfg.storage.synchronous,
            commit_interval=cfg.storage.commit_interval,
        )
        await journal.open()
        metrics = Metrics()
        self.services = Services(
            config=cfg,
            chargers=ChargerRegistry(chargers_store),
            id_tags=IdTagList(id_tags_store),
            cloud_verdicts=CloudVerdicts(id_tags_store) if cfg.upstream is not None else None,
            journal=journal,
            transactions=ActiveTransactions(),
            metrics=metrics,
            clock=self.clock,
        )
        self.services.certificates = CertificateAuthority(
            cfg,
            certificates_store,
            clock=self.clock,
            record=self.services.record,
            metrics=metrics,
        )
        self.services.certificates.load()
        security = self.services.security = ConnectionSecurity(
            self.services,
            security_store,
            record_event=record_security_event,
            tls_available=lambda: self._tls_state is not None,
            client_ca_available=lambda: self._tls is not None and self._tls.current.client_cas > 0,
        )
        if self._tls_state is not None:
            security.reload_tls = self.reload_tls
            security.describe_tls = self._describe_tls
            self.services.tls_reload = self.request_tls_reload
        await security.import_config()
        # A revocation reaches the wss listener at once (the CRL is read again).
        self.services.certificates.crl_changed = self.services.security_changed
        self.files = FileStore(cfg, self.clock)
        self._restore_state()
        self.sessions = SessionRegistry(self.spawn)
        self.operations = Operations(
            self.services, self.sessions, checks=features.CHECKS, recorders=features.RECORDERS
        )
        smart_charging.subscribe(self.services, self.spawn, self.operations)
        certificates.subscribe(self.services, self.spawn, self.operations)
        for feature in (reservation, local_auth, remote_trigger):
            feature.subscribe(self.services)
        self._register_gauges()
        if cfg.upstream is not None:
            self.upstream = Upstream(self.operations)
        if cfg.meter is not None:
            self.site = SiteController(
                self.services, self.operations, build_meter(cfg.meter), self.spawn
            )
            self.operations.site_caps = SiteCaps(self.services, wake=self.site.wake)
            register_site_metrics(self.services.metrics, self.site.statistics)
            fits, lines = fallback_report(cfg)
            for line in lines:
                (log.info if fits else log.warning)("site fallback: %s", line)

    def _restore_state(self) -> None:
        svc = self.services
        for charger_id in svc.config.chargers:
            # Chargers listed in the configuration are pre-registered.
            if svc.chargers.get(charger_id) is None:
                svc.chargers.create(charger_id, Registration.ACCEPTED, now=svc.now_text())
        for status in svc.journal.latest_statuses():
            charger = svc.chargers.get(status.charger_id)
            if charger is None:
                continue
            state = charger.connector(status.connector_id)
            state.status = status.status
            state.error_code = status.error_code
            state.info = status.info
            state.vendor_error_code = status.vendor_error_code
            state.timestamp = status.timestamp
        svc.transactions.load(svc.journal)
        for record in svc.journal.active_transactions():
            charger = svc.chargers.get(record.charger_id)
            if charger is not None:
                charger.connector(record.connector_id).transaction_id = record.transaction_id
        for store in self._documents:
            store.flush()
        log.info(
            "restored %d chargers, %d id tags, %d active transactions",
            len(svc.chargers),
            len(svc.id_tags),
            len(svc.transactions),
        )

    def _register_gauges(self) -> None:
        m = self.services.metrics
        m.gauge(
            "edge_chargers_connected",
            "Chargers with an open OCPP connection",
            lambda: [((), float(len(self.sessions)))],
        )
        m.gauge(
            "edge_chargers_known",
            "Chargers known to the CSMS",
            lambda: [((), float(len(self.services.chargers)))],
        )
        m.gauge(
            "edge_transactions_active",
            "Transactions in progress",
            lambda: [((), float(len(self.services.transactions)))],
        )
        m.gauge(
            "edge_journal_queue_depth",
            "Journal writes waiting for the disk",
            lambda: [((), float(self.services.journal.statistics().queue_depth))],
        )

    async def _start_listeners(self) -> None:
        cfg = self.config
        self._ocpp = OcppServer(self.services, self.sessions, features.HANDLERS)
        if self.services.security is not None:
            self.services.security.revoked = self._ocpp.revoked
        self.ocpp_addresses = await self._ocpp.start(cfg.ocpp.host, cfg.ocpp.port)
        for host, port in self.ocpp_addresses:
            log.info("listening for OCPP 1.6J on ws://%s:%d/", host, port)
        if cfg.ocpp.tls is not None and self._tls_state is not None:
            self._tls = TlsListenerContext(self._tls_state, self._ocpp.handshake_refused)
            self.ocpp_tls_addresses = await self._ocpp.start_tls(
                cfg.ocpp.host, cfg.ocpp.tls.port, self._tls
            )
            for host, port in self.ocpp_tls_addresses:
                log.info("listening for OCPP 1.6J on wss://%s:%d/", host, port)
        app = build_app(
            self.operations, self.token, self.files, self.site, self.upstream, self.log_ring
        )
        # At shutdown aiohttp stops listening, runs the application's on_shutdown
        # callbacks, then waits up to shutdown_timeout for the handlers still running.
        # A handler that never ends by itself (a live-view WebSocket) must be closed
        # from an on_shutdown callback registered in edge/web/app.py, or it costs the
        # whole timeout on every stop.
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=WEB_SHUTDOWN_TIMEOUT
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.web.host, cfg.web.port, backlog=1024)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.web_addresses = [(s.getsockname()[0], s.getsockname()[1]) for s in sockets]
        for host, port in self.web_addresses:
            log.info("listening for HTTP on http://%s:%d/", host, port)
        if not self.files.public_url:
            self.files.public_url = default_public_url(cfg.web.host, self.web_port)
        log.info("chargers fetch and upload files at %s/files/", self.files.public_url)
        if cfg.ftp is not None:
            ftp = FtpServer(cfg.ftp, self.files, self.services)
            self.ftp_address = await ftp.start()
            self._ftp = ftp
            log.info("listening for FTP on ftp://%s:%d/", *self.ftp_address)
            self.files.ftp_address = (
                cfg.ftp.public_host or public_host(self.files.public_url),
                self.ftp_address[1],
            )

    # --- TLS ----------------------------------------------------------------------------

    def _tls_files(self) -> TlsFiles:
        tls = self.config.ocpp.tls
        assert tls is not None
        return TlsFiles.configured(tls, self.config.storage.data_dir)

    def _build_tls(self) -> TlsState:
        state = build_tls(self._tls_files(), self.clock())
        for problem in state.problems:
            (log.error if problem.severity == "error" else log.warning)("TLS: %s", problem.text)
        if state.files.client_ca is None:
            log.warning("TLS: no client CA (profile 3 impossible until one is set up)")
        return state

    def _describe_tls(self) -> dict[str, Any]:
        assert self._tls is not None
        return self._tls.current.describe(self.clock())

    async def reload_tls(self) -> dict[str, Any]:
        """Rebuild the wss listener's TLS context from its files (SIGHUP, the API, a
        revocation); new connections get it. A failure keeps the current one: the
        answer's `reloaded` is false and `problems` says why."""
        if self._tls is None:
            return {"reloaded": False, "problems": [{"severity": "fatal", "text": "no TLS"}]}
        files = self._tls_files()
        try:
            state = await asyncio.to_thread(build_tls, files, self.clock())
        except TlsError as err:
            text = "; ".join(str(p) for p in err.problems if p.severity == "fatal")
            log.error("TLS reload failed, the current certificate stays: %s", text)
            record_security_event(self.services, None, "TlsReloadFailed", text)
            # The site CA's register still knows what the API revoked.
            self._close_revoked()
            return {"reloaded": False, "problems": [vars_of(p) for p in err.problems]}
        self._tls.replace(state)
        self._tls_state = state
        # A revocation in the new CRL (`edge-csms ca revoke`, then SIGHUP) ends the open
        # connections that present the certificate, not only the next handshakes.
        self._close_revoked()
        for problem in state.problems:
            (log.error if problem.severity == "error" else log.warning)("TLS: %s", problem.text)
        log.info(
            "TLS reloaded: %s; %d client CA(s), %d revoked",
            ", ".join(c["subject"] for c in state.certificates),
            state.client_cas,
            len(state.revoked),
        )
        self.services.record(None, "TlsReloaded", {"certificates": state.certificates})
        return {"reloaded": True, **state.describe(self.clock())}

    async def _reload_quietly(self) -> None:
        await self.reload_tls()

    def request_tls_reload(self) -> None:
        """SIGHUP or `services.security_changed()`: reload the TLS material in the
        background (nothing without a wss listener)."""
        if self._tls is None:
            log.info("SIGHUP: no [ocpp.tls] listener, nothing to reload")
            return
        if self._stop.is_set():
            return  # stopping: the task group takes no new work
        # What the register already says revoked (the API) ends at once, before the
        # reload has read the CRL; the reload ends what only the CRL says.
        self._close_revoked()
        self.spawn(self._reload_quietly())

    def _close_revoked(self) -> None:
        """Close the charger connections whose client certificate is now revoked."""
        if self._ocpp is not None and not self._stop.is_set():
            closed = self._ocpp.close_revoked()
            if closed:
                log.info("closed %d connection(s) with a revoked client certificate", closed)

    # --- shutdown -----------------------------------------------------------------------

    async def _close_listeners(self) -> None:
        if self._ftp is not None:
            await self._ftp.close()
        if self._ocpp is not None:
            await self._ocpp.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _close_stores(self) -> None:
        svc = getattr(self, "services", None)
        if svc is None:
            return
        svc.chargers.save_last_seen()
        if svc.security is not None:
            svc.security.close()
        for store in self._documents:
            store.close()
        await svc.journal.close()
        log.info("stopped")

    # --- periodic work ------------------------------------------------------------------

    async def _sleep_or_stop(self, seconds: float) -> bool:
        """Sleep; returns True when the service is stopping."""
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _flush_loop(self) -> None:
        ticks = 0
        while not await self._sleep_or_stop(STATE_FLUSH_INTERVAL):
            ticks += 1
            if ticks % TRIM_EVERY_FLUSHES == 0:
                release_free_memory()
            for store in self._documents:
                try:
                    await store.flush_async()
                except OSError:
                    log.exception("could not write %s", store)

    async def _tick_loop(self) -> None:
        while not await self._sleep_or_stop(CALL_TICK_INTERVAL):
            await self.sessions.tick(time.monotonic())

    async def _prune_loop(self) -> None:
        storage = self.config.storage
        while not await self._sleep_or_stop(PRUNE_INTERVAL):
            try:
                deleted = await self.services.journal.prune(
                    now=self.clock(),
                    meter_sample_days=storage.meter_value_retention_days,
                    transaction_days=storage.transaction_retention_days,
                    event_days=storage.event_retention_days,
                )
            except Exception:
                log.exception("journal retention failed")
            else:
                if deleted:
                    log.info("retention removed %d old journal rows", deleted)
            try:
                removed = await asyncio.to_thread(self.files.prune)
            except Exception:
                log.exception("diagnostics retention failed")
            else:
                if removed:
                    log.info("retention removed %d diagnostics files", removed)
