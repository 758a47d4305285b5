"""Service configuration: a TOML file read into frozen dataclasses.

Every key has a default, so an absent file gives the embedded default the
command line contract promises: data in ./data, OCPP on 9000, web on 8080,
no meter, no upstream. Loading collects *all* problems before failing, so a
technician fixing a file sees every mistake in one run of `edge-csms check`.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.web.password import PasswordHash

__all__ = [
    "ChargerSettings",
    "Config",
    "ConfigError",
    "FilesConfig",
    "FtpConfig",
    "LimitsConfig",
    "MeterConfig",
    "OcppConfig",
    "SecurityConfig",
    "SiteConfig",
    "StorageConfig",
    "TlsConfig",
    "UpstreamConfig",
    "WebConfig",
    "load_config",
    "parse_config",
]

UNKNOWN_CHARGER_POLICIES = ("accept", "pending", "reject")
PHASE_WIRINGS = ("L1", "L2", "L3", "L1L2L3", "L2L3L1", "L3L1L2", "L1L3L2", "L2L1L3", "L3L2L1")


class ConfigError(Exception):
    """The configuration file is missing, unreadable or has invalid values.

    `problems` lists every invalid key with what is wrong with it.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsConfig:
    port: int = 9443
    certificate: Path = Path("server.pem")
    private_key: Path = Path("server.key")
    client_ca: Path | None = None
    """CA of chargers' client certificates (None: the site CA's, when it exists)."""
    crl: Path | None = None
    """Revocation list(s) of client certificates (None: the site CA's, when it exists)."""
    additional_certificate: Path | None = None
    """A second chain with the other key type (RSA beside EC), for both suite families."""
    additional_private_key: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitsConfig:
    """`[ocpp.limits]`: what one source address may cost the OCPP endpoint (edge.security.guard).

    The defaults let a site of a few hundred chargers behind one NAT address reconnect
    all at once after a restart, and still stop a LAN host hammering the handshake.
    """

    # Charger connections admitted at once (open, or between request and authentication).
    max_connections: int = 500
    # Handshakes per source address: a bucket of `handshake_burst`, refilled at this rate/s.
    handshake_rate: float = 10.0
    handshake_burst: int = 400
    # Handshakes admitted but not yet authenticated, at once, per source and per identity.
    max_handshakes_per_source: int = 256
    max_handshakes_per_identity: int = 4
    # Seconds a TCP connection may take to complete its opening handshake.
    handshake_timeout: float = 30.0
    # TCP connections open at once per source address, handshaking or not: beyond, a new
    # one is closed as it is accepted (connections that never send a request would
    # otherwise hold file descriptors for handshake_timeout each).
    max_sockets_per_source: int = 1024
    # Refused credentials per (source, identity) before the exponential back-off starts.
    auth_free_failures: int = 5
    # Refused credentials from one source (any identity, decaying by one a minute) before
    # that source is backed off too, for identities it never authenticated.
    source_free_failures: int = 50
    # The longest back-off, s.
    lockout_max: float = 900.0
    # Entries each of the guard's tables keeps (the least recently used go first).
    tracked_sources: int = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class OcppConfig:
    host: str = "0.0.0.0"
    port: int = 9000
    unknown_chargers: str = "pending"
    # With unknown_chargers = "pending": how many chargers may wait for approval at once;
    # a new identity beyond them is refused (HTTP 404) instead of being registered.
    max_pending_chargers: int = 50
    heartbeat_interval: int = 300
    # Seconds a charger told Pending or Rejected waits before its next BootNotification.
    boot_retry_interval: int = 60
    call_timeout: float = 30.0
    # Largest WebSocket message accepted; SendLocalList/CertificateSigned need headroom.
    max_message_size: int = 256 * 1024
    ping_interval: float = 30.0
    ping_timeout: float = 30.0
    # "reject": StartTransaction answers ConcurrentTx when the idTag is charging elsewhere.
    concurrent_tx: str = "reject"
    tls: TlsConfig | None = None
    limits: LimitsConfig = field(default_factory=LimitsConfig)


@dataclass(frozen=True, slots=True, kw_only=True)
class WebConfig:
    host: str = "0.0.0.0"
    port: int = 8080
    api_token: str | None = None
    password: PasswordHash | None = None
    """The technician page's login password, hashed as it is read (None: the API token)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageConfig:
    data_dir: Path = Path("./data")
    # "FULL" makes every acknowledged transaction message survive a power cut.
    synchronous: str = "FULL"
    # Least time between two journal commits under load, s (see edge/store/_groupcommit.py).
    commit_interval: float = 0.002
    meter_value_retention_days: float = 90.0
    transaction_retention_days: float = 730.0
    event_retention_days: float = 90.0


@dataclass(frozen=True, slots=True, kw_only=True)
class FilesConfig:
    # Base URL chargers use to reach the web port; None: built from web.host/port.
    public_url: str | None = None
    max_firmware_bytes: int = 256 * 1024 * 1024
    max_diagnostics_bytes: int = 64 * 1024 * 1024
    # Total size of kept diagnostics files; the oldest go first beyond it.
    diagnostics_total_bytes: int = 1024 * 1024 * 1024
    # Seconds a firmware link or diagnostics upload grant stays valid.
    link_validity: int = 86400


@dataclass(frozen=True, slots=True, kw_only=True)
class FtpConfig:
    host: str = "0.0.0.0"
    port: int = 2121
    # Host name or address chargers connect to; None: the host of files.public_url.
    public_host: str | None = None
    # Passive data ports (inclusive); None: any free port.
    passive_ports: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterConfig:
    driver: str = "sdm630"
    transport: str = "tcp"
    host: str = "127.0.0.1"
    port: int = 502
    device: str = "/dev/ttyUSB0"
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    unit: int = 1
    poll_interval: float = 1.0
    stale_after: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteConfig:
    max_current: tuple[float, float, float] = (63.0, 63.0, 63.0)
    margin: float = 2.0
    fallback_current: float = 6.0
    # Phase-to-neutral voltage used to convert between A and W (OCPP 1.6 §3.13.4).
    nominal_voltage: float = 230.0
    # Seconds a dynamic limit (lease) lasts unless refreshed: how long chargers keep
    # charging at it when this controller or the network dies.
    lease_time: float = 60.0
    # Seconds between two raises of one charger's limit (lowering is never delayed).
    min_update_interval: float = 5.0
    # A: a new limit within this of the previous one is not sent (no flapping).
    hysteresis: float = 1.0
    # Seconds between turns when not every EV can get its minimum current.
    rotation_period: float = 300.0
    # Seconds an EV started stays started, and an EV paused stays paused, unless the
    # fuse requires otherwise (real EVs tolerate few pauses; some stop for good).
    min_run_time: float = 120.0
    min_pause_time: float = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerSettings:
    phases: str = "L1L2L3"
    min_current: float = 6.0
    max_current: float = 32.0
    password: str | None = None
    security_profile: int = 0
    # Re-send the recorded ChargePointMax/TxDefault profiles after the charger boots,
    # for chargers that lose them (off: certification tools fail unsolicited calls).
    reapply_profiles: bool = False
    upstream_id: str | None = None
    """Its identity toward the cloud (None: its own id)."""
    upstream_password: str | None = None
    """Its HTTP Basic password toward the cloud (None: ``[upstream] password``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamConfig:
    """The fleet operator's cloud central system (DESIGN §7)."""

    url: str
    password: str | None = None
    ca: Path | None = None
    authorize_timeout: float = 2.0
    boot_on_reconnect: bool = False
    message_attempts: int = 3
    """How often a message the cloud answers with a CALLERROR is tried before it is parked."""
    retry_interval: float = 5.0
    """Seconds before the next try of a message the cloud refused, times the tries so far."""
    retention_days: float = 30.0
    """Days a message the cloud never takes is kept; older ones are dropped and counted."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityConfig:
    """`[security]`: the site CA (`edge.security.ca`) and the certificate subject rules."""

    # An operator's CA or intermediate (PEM chain, leaf first) and its unencrypted RSA
    # key; both absent: the site CA in <data_dir>/ca/, created on first use.
    ca_certificate: Path | None = None
    ca_private_key: Path | None = None
    # Skip the subject rules (CN = identity or serial number, O = cpo_name) on CSRs and
    # client certificates: certification tools (OCTT) send none that fit.
    relaxed_subject_checks: bool = False
    # The CPO's name: the O a charger's CSR must carry, and the O of what the CA issues.
    cpo_name: str | None = None
    # Named in the site CA's subject.
    site_name: str | None = None
    # Days a charger certificate signed for SignCertificate is valid.
    certificate_days: int = 730
    # RSA bits of a site CA the edge creates.
    ca_key_size: int = 3072


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    ocpp: OcppConfig = field(default_factory=OcppConfig)
    web: WebConfig = field(default_factory=WebConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    meter: MeterConfig | None = None
    site: SiteConfig = field(default_factory=SiteConfig)
    chargers: Mapping[str, ChargerSettings] = field(default_factory=dict)
    upstream: UpstreamConfig | None = None
    files: FilesConfig = field(default_factory=FilesConfig)
    ftp: FtpConfig | None = None
    security: SecurityConfig = field(default_factory=SecurityConfig)
    source: Path | None = None


class _Reader:
    """Reads one TOML table, recording problems instead of raising at the first one."""

    def __init__(self, table: Mapping[str, Any], prefix: str, problems: list[str]) -> None:
        self.table = table
        self.prefix = prefix
        self.problems = problems
        self.used: set[str] = set()

    def _get(self, key: str) -> Any:
        self.used.add(key)
        return self.table.get(key)

    def problem(self, key: str, text: str) -> None:
        self.problems.append(f"{self.prefix}{key}: {text}")

    def string(self, key: str, default: str, choices: tuple[str, ...] | None = None) -> str:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            self.problem(key, f"must be a string, got {value!r}")
            return default
        if choices is not None and value not in choices:
            self.problem(key, f"must be one of {', '.join(choices)}; got {value!r}")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false; got {value!r}")
            return default
        return value

    def optional_string(self, key: str) -> str | None:
        value = self._get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self.problem(key, "must be a non-empty string")
            return None
        return value

    def integer(self, key: str, default: int, lo: int, hi: int) -> int:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.problem(key, f"must be an integer from {lo} to {hi}; got {value!r}")
            return default
        return value

    def number(self, key: str, default: float, lo: float, hi: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not lo <= value <= hi
        ):
            self.problem(key, f"must be a number from {lo:g} to {hi:g}; got {value!r}")
            return default
        return float(value)

    def path(self, key: str, default: Path | None) -> Path | None:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            self.problem(key, "must be a file path")
            return default
        return Path(value)

    def table_of(self, key: str) -> Mapping[str, Any] | None:
        value = self._get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.problem(key, "must be a table")
            return None
        return value

    def finish(self) -> None:
        for key in self.table:
            if key not in self.used:
                self.problem(key, "unknown key")


def _port(reader: _Reader, key: str, default: int) -> int:
    # 0 asks the OS for a free port (tests, benchmarks); the bound port is logged.
    return reader.integer(key, default, 0, 65535)


def _read_ocpp(table: Mapping[str, Any], problems: list[str]) -> OcppConfig:
    r = _Reader(table, "ocpp.", problems)
    tls_table = r.table_of("tls")
    tls = None
    if tls_table is not None:
        t = _Reader(tls_table, "ocpp.tls.", problems)
        tls = TlsConfig(
            port=_port(t, "port", 9443),
            certificate=t.path("certificate", Path("server.pem")) or Path("server.pem"),
            private_key=t.path("private_key", Path("server.key")) or Path("server.key"),
            client_ca=t.path("client_ca", None),
            crl=t.path("crl", None),
            additional_certificate=t.path("additional_certificate", None),
            additional_private_key=t.path("additional_private_key", None),
        )
        if (tls.additional_certificate is None) != (tls.additional_private_key is None):
            t.problem("additional_certificate", "needs additional_private_key, and the reverse")
        t.finish()
    limits_table = r.table_of("limits")
    limits = _read_limits(limits_table, problems) if limits_table is not None else LimitsConfig()
    cfg = OcppConfig(
        host=r.string("host", "0.0.0.0"),
        port=_port(r, "port", 9000),
        unknown_chargers=r.string("unknown_chargers", "pending", UNKNOWN_CHARGER_POLICIES),
        max_pending_chargers=r.integer("max_pending_chargers", 50, 0, 10_000),
        heartbeat_interval=r.integer("heartbeat_interval", 300, 1, 86400),
        boot_retry_interval=r.integer("boot_retry_interval", 60, 0, 86400),
        call_timeout=r.number("call_timeout", 30.0, 0.1, 3600.0),
        max_message_size=r.integer("max_message_size", 256 * 1024, 16 * 1024, 16 * 1024 * 1024),
        ping_interval=r.number("ping_interval", 30.0, 0.0, 3600.0),
        ping_timeout=r.number("ping_timeout", 30.0, 0.1, 3600.0),
        concurrent_tx=r.string("concurrent_tx", "reject", ("reject", "allow")),
        tls=tls,
        limits=limits,
    )
    r.finish()
    return cfg


def _read_limits(table: Mapping[str, Any], problems: list[str]) -> LimitsConfig:
    r = _Reader(table, "ocpp.limits.", problems)
    d = LimitsConfig()
    cfg = LimitsConfig(
        max_connections=r.integer("max_connections", d.max_connections, 1, 100_000),
        handshake_rate=r.number("handshake_rate", d.handshake_rate, 0.01, 10_000.0),
        handshake_burst=r.integer("handshake_burst", d.handshake_burst, 1, 100_000),
        max_handshakes_per_source=r.integer(
            "max_handshakes_per_source", d.max_handshakes_per_source, 1, 100_000
        ),
        max_handshakes_per_identity=r.integer(
            "max_handshakes_per_identity", d.max_handshakes_per_identity, 1, 1000
        ),
        handshake_timeout=r.number("handshake_timeout", d.handshake_timeout, 1.0, 300.0),
        max_sockets_per_source=r.integer(
            "max_sockets_per_source", d.max_sockets_per_source, 1, 1_000_000
        ),
        auth_free_failures=r.integer("auth_free_failures", d.auth_free_failures, 1, 1000),
        source_free_failures=r.integer("source_free_failures", d.source_free_failures, 1, 100_000),
        lockout_max=r.number("lockout_max", d.lockout_max, 1.0, 86400.0),
        tracked_sources=r.integer("tracked_sources", d.tracked_sources, 64, 1_000_000),
    )
    r.finish()
    return cfg


def _read_web(table: Mapping[str, Any], problems: list[str]) -> WebConfig:
    r = _Reader(table, "web.", problems)
    token = r.optional_string("api_token")
    if token is not None and len(token) < 16:
        r.problem("api_token", "must be at least 16 characters")
        token = None
    password = r.optional_string("password")
    if password is not None and len(password) < 8:
        r.problem("password", "must be at least 8 characters")
        password = None
    cfg = WebConfig(
        host=r.string("host", "0.0.0.0"),
        port=_port(r, "port", 8080),
        api_token=token,
        password=PasswordHash.of(password) if password is not None else None,
    )
    r.finish()
    return cfg


def _read_storage(table: Mapping[str, Any], problems: list[str]) -> StorageConfig:
    r = _Reader(table, "storage.", problems)
    cfg = StorageConfig(
        data_dir=r.path("data_dir", Path("./data")) or Path("./data"),
        synchronous=r.string("synchronous", "FULL", ("FULL", "NORMAL", "OFF")),
        commit_interval=r.number("commit_interval", 0.002, 0.0, 1.0),
        meter_value_retention_days=r.number("meter_value_retention_days", 90.0, 1.0, 36500.0),
        transaction_retention_days=r.number("transaction_retention_days", 730.0, 1.0, 36500.0),
        event_retention_days=r.number("event_retention_days", 90.0, 1.0, 36500.0),
    )
    r.finish()
    return cfg


def _read_files(table: Mapping[str, Any], problems: list[str]) -> FilesConfig:
    r = _Reader(table, "files.", problems)
    url = r.optional_string("public_url")
    if url is not None:
        if not url.startswith(("http://", "https://")):
            r.problem("public_url", "must be an http:// or https:// URL")
            url = None
        else:
            url = url.rstrip("/")
    cfg = FilesConfig(
        public_url=url,
        max_firmware_bytes=r.integer("max_firmware_bytes", 256 * 1024 * 1024, 1, 2**40),
        max_diagnostics_bytes=r.integer("max_diagnostics_bytes", 64 * 1024 * 1024, 1, 2**40),
        diagnostics_total_bytes=r.integer("diagnostics_total_bytes", 1024 * 1024 * 1024, 1, 2**44),
        link_validity=r.integer("link_validity", 86400, 60, 366 * 86400),
    )
    if cfg.diagnostics_total_bytes < cfg.max_diagnostics_bytes:
        r.problem("diagnostics_total_bytes", "must be at least max_diagnostics_bytes")
    r.finish()
    return cfg


def _read_ftp(table: Mapping[str, Any], problems: list[str]) -> FtpConfig:
    r = _Reader(table, "ftp.", problems)
    raw = r._get("passive_ports")
    passive: tuple[int, int] | None = None
    if raw is not None:
        if (
            isinstance(raw, list)
            and len(raw) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in raw)
            and 1 <= raw[0] <= raw[1] <= 65535
        ):
            passive = (raw[0], raw[1])
        else:
            r.problem("passive_ports", "must be [first, last], ports from 1 to 65535")
    cfg = FtpConfig(
        host=r.string("host", "0.0.0.0"),
        port=_port(r, "port", 2121),
        public_host=r.optional_string("public_host"),
        passive_ports=passive,
    )
    r.finish()
    return cfg


def _read_meter(table: Mapping[str, Any], problems: list[str]) -> MeterConfig:
    r = _Reader(table, "meter.", problems)
    cfg = MeterConfig(
        driver=r.string("driver", "sdm630"),
        transport=r.string("transport", "tcp", ("tcp", "rtu")),
        host=r.string("host", "127.0.0.1"),
        port=r.integer("port", 502, 1, 65535),
        device=r.string("device", "/dev/ttyUSB0"),
        baudrate=r.integer("baudrate", 9600, 1200, 921600),
        parity=r.string("parity", "N", ("N", "E", "O")),
        stopbits=r.integer("stopbits", 1, 1, 2),
        unit=r.integer("unit", 1, 0, 247),
        poll_interval=r.number("poll_interval", 1.0, 0.1, 60.0),
        stale_after=r.number("stale_after", 10.0, 0.5, 3600.0),
    )
    r.finish()
    return cfg


def _read_site(table: Mapping[str, Any], problems: list[str]) -> SiteConfig:
    r = _Reader(table, "site.", problems)
    raw = r._get("max_current")
    max_current: tuple[float, float, float] = (63.0, 63.0, 63.0)
    if raw is not None:
        if (
            isinstance(raw, list)
            and len(raw) == 3
            and all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in raw)
        ):
            max_current = (float(raw[0]), float(raw[1]), float(raw[2]))
        else:
            r.problem("max_current", "must be three positive numbers (A per phase L1, L2, L3)")
    cfg = SiteConfig(
        max_current=max_current,
        margin=r.number("margin", 2.0, 0.0, 1000.0),
        fallback_current=r.number("fallback_current", 6.0, 0.0, 1000.0),
        nominal_voltage=r.number("nominal_voltage", 230.0, 100.0, 400.0),
        lease_time=r.number("lease_time", 60.0, 2.0, 3600.0),
        min_update_interval=r.number("min_update_interval", 5.0, 0.0, 3600.0),
        hysteresis=r.number("hysteresis", 1.0, 0.0, 100.0),
        rotation_period=r.number("rotation_period", 300.0, 0.0, 86400.0),
        min_run_time=r.number("min_run_time", 120.0, 0.0, 86400.0),
        min_pause_time=r.number("min_pause_time", 60.0, 0.0, 86400.0),
    )
    r.finish()
    return cfg


def _read_charger(name: str, table: Mapping[str, Any], problems: list[str]) -> ChargerSettings:
    r = _Reader(table, f"chargers.{name}.", problems)
    cfg = ChargerSettings(
        phases=r.string("phases", "L1L2L3", PHASE_WIRINGS),
        min_current=r.number("min_current", 6.0, 0.0, 1000.0),
        max_current=r.number("max_current", 32.0, 0.0, 1000.0),
        password=r.optional_string("password"),
        security_profile=r.integer("security_profile", 0, 0, 3),
        reapply_profiles=r.boolean("reapply_profiles", False),
        upstream_id=r.optional_string("upstream_id"),
        upstream_password=r.optional_string("upstream_password"),
    )
    if cfg.min_current > cfg.max_current:
        r.problem("min_current", "must not exceed max_current")
    if cfg.security_profile in (1, 2) and cfg.password is None:
        r.problem("password", f"is required for security_profile {cfg.security_profile}")
    r.finish()
    return cfg


def _read_security(table: Mapping[str, Any], problems: list[str]) -> SecurityConfig:
    r = _Reader(table, "security.", problems)
    cfg = SecurityConfig(
        ca_certificate=r.path("ca_certificate", None),
        ca_private_key=r.path("ca_private_key", None),
        relaxed_subject_checks=r.boolean("relaxed_subject_checks", False),
        cpo_name=r.optional_string("cpo_name"),
        site_name=r.optional_string("site_name"),
        certificate_days=r.integer("certificate_days", 730, 1, 3650),
        ca_key_size=r.integer("ca_key_size", 3072, 3072, 4096),
    )
    if cfg.ca_key_size not in (3072, 4096):
        r.problem("ca_key_size", "must be 3072 or 4096")
    if (cfg.ca_certificate is None) != (cfg.ca_private_key is None):
        r.problem("ca_private_key", "and ca_certificate go together")
    r.finish()
    return cfg


def parse_config(data: Mapping[str, Any], source: Path | None = None) -> Config:
    """Build a Config from a parsed TOML document.

    Raises:
        ConfigError: listing every invalid or unknown key.
    """
    problems: list[str] = []
    top = _Reader(data, "", problems)

    def section(name: str) -> Mapping[str, Any]:
        return top.table_of(name) or {}

    ocpp = _read_ocpp(section("ocpp"), problems)
    web = _read_web(section("web"), problems)
    storage = _read_storage(section("storage"), problems)
    meter_table = top.table_of("meter")
    meter = _read_meter(meter_table, problems) if meter_table is not None else None
    site = _read_site(section("site"), problems)
    files = _read_files(section("files"), problems)
    ftp_table = top.table_of("ftp")
    ftp = _read_ftp(ftp_table, problems) if ftp_table is not None else None
    security = _read_security(section("security"), problems)
    chargers: dict[str, ChargerSettings] = {}
    for name, table in section("chargers").items():
        if not isinstance(table, dict):
            problems.append(f"chargers.{name}: must be a table")
            continue
        chargers[name] = _read_charger(name, table, problems)
    if ocpp.tls is None:
        for name, charger_settings in chargers.items():
            if charger_settings.security_profile >= 2:
                problems.append(
                    f"chargers.{name}.security_profile: profiles 2 and 3 need [ocpp.tls]"
                )
    upstream = None
    upstream_table = top.table_of("upstream")
    if upstream_table is not None:
        u = _Reader(upstream_table, "upstream.", problems)
        url = u.string("url", "")
        settings = UpstreamConfig(
            url=url.rstrip("/"),
            password=u.optional_string("password"),
            ca=u.path("ca", None),
            authorize_timeout=u.number("authorize_timeout", 2.0, 0.1, 30.0),
            boot_on_reconnect=u.boolean("boot_on_reconnect", False),
            message_attempts=u.integer("message_attempts", 3, 1, 100),
            retry_interval=u.number("retry_interval", 5.0, 0.1, 86400.0),
            retention_days=u.number("retention_days", 30.0, 1.0, 3650.0),
        )
        if not url.startswith(("ws://", "wss://")):
            u.problem("url", "must be a ws:// or wss:// URL")
        elif settings.ca is not None and not url.startswith("wss://"):
            u.problem("ca", "applies to a wss:// url only")
        else:
            upstream = settings
        u.finish()
    if meter is not None and site.lease_time < 4 * meter.poll_interval:
        # A lease is refreshed at half its time; a cycle must fit comfortably inside.
        problems.append("site.lease_time: must be at least 4 times meter.poll_interval")
    if meter is not None and meter.stale_after < meter.poll_interval:
        problems.append("meter.stale_after: must be at least meter.poll_interval")
    if ocpp.tls is not None and ocpp.tls.port == ocpp.port and ocpp.port != 0:
        problems.append("ocpp.tls.port: must differ from ocpp.port")
    if web.port == ocpp.port and web.port != 0 and web.host == ocpp.host:
        problems.append("web.port: must differ from ocpp.port")
    top.finish()
    if problems:
        raise ConfigError(problems)
    return Config(
        ocpp=ocpp,
        web=web,
        storage=storage,
        meter=meter,
        site=site,
        chargers=chargers,
        upstream=upstream,
        files=files,
        ftp=ftp,
        security=security,
        source=source,
    )


def load_config(path: Path | None) -> Config:
    """Read the configuration file, or return the embedded default when `path` is None.

    Raises:
        ConfigError: the file cannot be read, is not TOML, or has invalid keys.
    """
    if path is None:
        return Config()
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except OSError as err:
        raise ConfigError([f"{path}: cannot read ({err.strerror})"]) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([f"{path}: not valid TOML ({err})"]) from None
    config = parse_config(data, source=path)
    # Relative paths in the file are relative to the file, not to the working directory,
    # so `edge-csms serve --config /etc/edge-csms/config.toml` works from anywhere.
    base = path.parent
    storage = config.storage
    if not storage.data_dir.is_absolute():
        storage = _replace(storage, data_dir=base / storage.data_dir)
    ocpp = config.ocpp
    if ocpp.tls is not None:
        tls = ocpp.tls
        tls = _replace(
            tls,
            certificate=_rebase(base, tls.certificate),
            private_key=_rebase(base, tls.private_key),
            client_ca=_rebase(base, tls.client_ca) if tls.client_ca else None,
            crl=_rebase(base, tls.crl) if tls.crl else None,
            additional_certificate=(
                _rebase(base, tls.additional_certificate) if tls.additional_certificate else None
            ),
            additional_private_key=(
                _rebase(base, tls.additional_private_key) if tls.additional_private_key else None
            ),
        )
        ocpp = _replace(ocpp, tls=tls)
    security = config.security
    if security.ca_certificate is not None and security.ca_private_key is not None:
        security = _replace(
            security,
            ca_certificate=_rebase(base, security.ca_certificate),
            ca_private_key=_rebase(base, security.ca_private_key),
        )
    return _replace(config, storage=storage, ocpp=ocpp, security=security)


def _rebase(base: Path, p: Path) -> Path:
    return p if p.is_absolute() else base / p


def _replace(obj: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(obj, **changes)
