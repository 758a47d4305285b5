"""Command line: `edge-csms serve [--config FILE]`, `edge-csms check [--config FILE]`,
`edge-csms meter probe`, `edge-csms ca …` (the site CA, `edge.security.ca_cli`),
`edge-csms token rotate`, and `edge-csms demo` (the service on a simulated site)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from drivers import MeterError
from edge.config import Config, ConfigError, load_config
from edge.logs import configure_logging
from edge.malloc import limit_malloc_arenas
from edge.security import ca_cli
from edge.site.commissioning import build_meter, fallback_report, probe_meter
from edge.systemd import Notifier

__all__ = ["main"]

log = logging.getLogger("edge")


def _run(coroutine: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop where it is installed (not on 32-bit Pi OS), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


async def _serve(config: Config) -> int:
    from edge.app import App

    # Under systemd (Type=notify) this reports readiness, status and watchdog pings.
    notifier = Notifier.from_environ()
    app = App(config, notifier=notifier)
    # Handlers first: a SIGTERM that comes during start-up (or right after READY=1)
    # then stops the service gracefully once it has started, instead of killing it.
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, app.stop)
    # SIGHUP: reload the wss listener's certificate, key, client CA and CRL.
    loop.add_signal_handler(signal.SIGHUP, app.request_tls_reload)
    try:
        async with app:
            # What start-up built (schemas, stores, restored state) lives as long as the
            # service: keep it out of every later garbage collection (less CPU on a Pi).
            gc.freeze()
            await app.wait_stopped()
            log.info("shutting down")
    finally:
        notifier.close()
    return 0


def _describe(config: Config) -> list[str]:
    lines = [
        f"data directory: {config.storage.data_dir.resolve()}",
        f"OCPP endpoint: ws://{config.ocpp.host}:{config.ocpp.port}/<prefix>/<chargePointId>",
        f"web/API: http://{config.web.host}:{config.web.port}/",
        f"unknown chargers: {config.ocpp.unknown_chargers}"
        + (
            f" (at most {config.ocpp.max_pending_chargers} pending)"
            if config.ocpp.unknown_chargers == "pending"
            else ""
        ),
        f"configured chargers: {len(config.chargers)}",
        "meter: "
        + (
            "none (no load balancing, no unsolicited calls)"
            if config.meter is None
            else f"{config.meter.driver} over {config.meter.transport}"
        ),
        "upstream: " + (config.upstream.url if config.upstream else "none"),
    ]
    tls = config.ocpp.tls
    if tls is not None:
        lines.insert(
            2,
            f"OCPP TLS endpoint: wss://{config.ocpp.host}:{tls.port}/<prefix>/<chargePointId>"
            f" (certificate {tls.certificate})",
        )
    return lines


def _tls_problems(config: Config, *, for_serve: bool) -> bool:
    """Print the TLS material's problems; True if a fatal one forbids serving.

    `check` and `serve` fail on the same problems (systemd runs `check` before `serve`):
    an expired or not yet valid certificate is printed as an error, but does not stop the
    site's load balancing and its profile 0/1 chargers (`edge.security.tls.CertProblem`).
    """
    if config.ocpp.tls is None:
        return False
    from datetime import UTC, datetime

    from edge.security.tls import TlsFiles, check_tls_files

    files = TlsFiles.configured(config.ocpp.tls, config.storage.data_dir)
    problems = check_tls_files(files, datetime.now(UTC))
    for problem in problems:
        if problem.severity in ("fatal", "error"):
            # serve logs the non-fatal ones itself, once it runs
            if problem.severity == "fatal" or not for_serve:
                print(f"TLS {problem.severity}: {problem.text}", file=sys.stderr)
        elif not for_serve:
            print(f"TLS {problem.severity}: {problem.text}")
    if not for_serve:
        print(f"TLS client CA: {files.client_ca or 'none (profile 3 impossible)'}")
        print(f"TLS revocation list: {files.crl or 'none'}")
    return any(p.severity == "fatal" for p in problems)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="edge-csms", description="Site-level OCPP 1.6J central system."
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service in the foreground")
    serve.add_argument("--config", type=Path, help="TOML configuration file")
    check = sub.add_parser("check", help="validate a configuration file and describe it")
    check.add_argument("--config", type=Path, help="TOML configuration file")
    meter = sub.add_parser("meter", help="commission the site meter")
    meter_sub = meter.add_subparsers(dest="meter_command", required=True)
    probe = meter_sub.add_parser("probe", help="read the configured meter and print it")
    probe.add_argument("--config", type=Path, help="TOML configuration file")
    probe.add_argument("--count", type=int, default=1, help="readings to take (default 1)")
    probe.add_argument("--interval", type=float, default=1.0, help="seconds between readings")
    ca_cli.add_parser(sub)
    token = sub.add_parser("token", help="the operator API's token")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    rotate = token_sub.add_parser(
        "rotate", help="make a new API token, print it once; the old one stops working"
    )
    rotate.add_argument("--config", type=Path, help="TOML configuration file")
    init = token_sub.add_parser(
        "init", help="make an API token and print it once, unless one exists (first setup)"
    )
    init.add_argument("--config", type=Path, help="TOML configuration file")
    demo = sub.add_parser(
        "demo",
        help="run the service on its embedded default with simulated chargers and grid meter",
    )
    demo.add_argument(
        "--chargers",
        type=_count,
        default=5,
        metavar="N",
        help="simulated chargers, 1-100 (default 5)",
    )
    demo.add_argument(
        "--seed", type=int, default=1, metavar="N", help="seed of the EVs' comings and goings"
    )
    demo.add_argument("--host", metavar="ADDRESS", help="listen here (default: every address)")
    demo.add_argument(
        "--web-port", type=int, metavar="PORT", help="web page and API (default 8080; 0: any)"
    )
    demo.add_argument("--ocpp-port", type=int, metavar="PORT", help="OCPP (default 9000; 0: any)")
    demo.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="keep the data here (default: a temporary one)"
    )
    demo.add_argument(
        "--ready-file",
        type=Path,
        metavar="FILE",
        help="once running, write its addresses, ports and API token here (JSON)",
    )
    args = parser.parse_args(argv)

    # Timestamped on a terminal; priority-prefixed, without time, into journald.
    configure_logging(args.log_level)
    # websockets logs every failed handshake at INFO with a traceback; keep ours readable.
    # Never lower: at DEBUG it logs request headers, chargers' Basic credentials included.
    logging.getLogger("websockets").setLevel(logging.WARNING)
    if args.command == "demo":
        return _demo(args)
    try:
        config = load_config(args.config)
    except ConfigError as err:
        for problem in err.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return 2
    if args.command == "serve":
        limit_malloc_arenas()
        if _tls_problems(config, for_serve=True):
            return 2
    if args.command == "check":
        return _check(config)
    if args.command == "ca":
        return ca_cli.run(args, config)
    if args.command == "token":
        return _rotate_token(config, only_if_missing=args.token_command == "init")
    if args.command == "meter":
        if config.meter is None:
            print("no [meter] section in the configuration", file=sys.stderr)
            return 2
        count = max(1, min(args.count, 3600))
        return _run(probe_meter(config.meter, count=count, interval=max(0.1, args.interval)))
    if config.meter is not None:
        fits, report = fallback_report(config)
        for line in report:
            (log.info if fits else log.warning)("%s", line)
    return _run(_serve(config))


def _count(text: str) -> int:
    count = int(text)
    if not 1 <= count <= 100:
        raise argparse.ArgumentTypeError("must be 1 to 100")
    return count


def _demo(args: argparse.Namespace) -> int:
    # Imported here: the simulators are no part of the service `serve` runs.
    from edge.sim.demo import DemoOptions, run_demo

    options = DemoOptions(
        chargers=args.chargers,
        seed=args.seed,
        host=args.host,
        web_port=args.web_port,
        ocpp_port=args.ocpp_port,
        data_dir=args.data_dir.resolve() if args.data_dir else None,
        ready_file=args.ready_file,
    )
    try:
        return _run(run_demo(options))
    except ConfigError as err:
        for problem in err.problems:
            print(f"demo: {problem}", file=sys.stderr)
        return 2
    except OSError as err:
        # Most likely a port in use: say so in one line, not with a traceback.
        print(f"demo: {err} (ports: --web-port, --ocpp-port)", file=sys.stderr)
        return 1


def _rotate_token(config: Config, *, only_if_missing: bool = False) -> int:
    from edge.security.token import TokenError, TokenStore

    if only_if_missing and config.web.api_token is not None:
        return 0  # the configuration gives it
    if config.web.api_token is not None:
        print(
            "token: the API token is set in the configuration ([web] api_token):"
            " change it there, or remove it to keep only a hash in the data directory",
            file=sys.stderr,
        )
        return 2
    store = TokenStore(config.storage.data_dir)
    if only_if_missing and store.exists:
        print("an API token exists; `edge-csms token rotate` makes a new one", file=sys.stderr)
        return 0
    try:
        token = store.rotate()
    except TokenError as err:
        print(f"token: {err}", file=sys.stderr)
        return 1
    # stdout only, once: TOKEN=$(edge-csms token rotate) keeps it out of the terminal too.
    print(token)
    return 0


def _check(config: Config) -> int:
    for line in _describe(config):
        print(line)
    ok = not _tls_problems(config, for_serve=False)
    if config.meter is not None:
        try:
            build_meter(config.meter)
        except MeterError as err:
            print(f"config error: meter: {err}", file=sys.stderr)
            ok = False
        fits, report = fallback_report(config)
        for line in report:
            print(("fallback: " if fits else "warning: ") + line)
    ca_ok, ca_lines = ca_cli.check_lines(config)
    for line in ca_lines:
        print(line if ca_ok else f"config error: {line}", file=sys.stdout if ca_ok else sys.stderr)
    ok = ok and ca_ok
    if not ok:
        return 2
    print("configuration OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
