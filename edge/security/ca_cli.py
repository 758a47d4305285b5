"""`edge-csms ca …`: the site CA from the command line.

    ca init [--import CERT KEY] [--key-size 3072|4096]
    ca server-cert --host NAME [--ip ADDR]... [--dns NAME]... [--days N]
    ca list [--charger ID] [--json]
    ca revoke SERIAL [--reason TEXT]

These work on the files in the data dir and may run while the service runs: a
revocation goes into the CRL first (which the service reads back into its register
and the TLS listener enforces after its reload), then into the register file.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from edge.config import Config
from edge.security import ca as site_ca
from edge.security.authority import normalise_serial
from edge.security.register import EXPIRY_WARNING, CertificateRegister, expiring
from edge.store import DocumentStore
from edge.store.atomic import write_atomic
from edge.times import format_time, parse_time, utc_now

__all__ = ["add_parser", "check_lines", "run"]


def add_parser(sub: Any) -> None:
    """Add the `ca` command to the top-level subparsers."""
    ca = sub.add_parser("ca", help="the site CA: init, server-cert, list, revoke")
    ca_sub = ca.add_subparsers(dest="ca_command", required=True)
    init = ca_sub.add_parser("init", help="create the site CA, or import an operator's")
    init.add_argument("--config", type=Path, help="TOML configuration file")
    init.add_argument(
        "--import",
        dest="import_files",
        nargs=2,
        type=Path,
        metavar=("CERT", "KEY"),
        help="take this CA or intermediate (PEM chain, leaf first) and its RSA key",
    )
    init.add_argument("--key-size", type=int, choices=(3072, 4096), help="RSA bits of a new CA")
    server = ca_sub.add_parser("server-cert", help="issue the wss listener's certificate")
    server.add_argument("--config", type=Path, help="TOML configuration file")
    server.add_argument("--host", required=True, help="the FQDN chargers connect to (the CN)")
    server.add_argument("--ip", action="append", default=[], help="an IP address (repeatable)")
    server.add_argument("--dns", action="append", default=[], help="another name (repeatable)")
    server.add_argument("--days", type=int, default=825, help="validity (default 825)")
    server.add_argument("--key-size", type=int, default=2048, choices=(2048, 3072, 4096))
    server.add_argument(
        "--ec",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also issue an ECDSA P-256 certificate (server-ec.pem) for the ECDHE_ECDSA suites"
        " the Whitepaper lists; chargers that offer ECDSA get it, a cheaper handshake"
        " (default: yes)",
    )
    listing = ca_sub.add_parser("list", help="the site CA and the certificates it issued")
    listing.add_argument("--config", type=Path, help="TOML configuration file")
    listing.add_argument("--charger", help="only this charger's")
    listing.add_argument("--json", action="store_true", help="as JSON")
    revoke = ca_sub.add_parser("revoke", help="revoke a certificate (hex serial number)")
    revoke.add_argument("--config", type=Path, help="TOML configuration file")
    revoke.add_argument("serial", help="serial number, hex (as `ca list` shows)")
    revoke.add_argument("--reason", help="why, for the register")


def run(args: argparse.Namespace, config: Config) -> int:
    """Run `ca <ca_command>`; the exit status (2: the operator must fix something)."""
    command = {
        "init": _init,
        "server-cert": _server_cert,
        "list": _list,
        "revoke": _revoke,
    }[args.ca_command]
    try:
        return command(args, config)
    except site_ca.CaError as err:
        print(f"ca: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"ca: {err}", file=sys.stderr)
        return 1


def check_lines(config: Config) -> tuple[bool, list[str]]:
    """For `edge-csms check`: the site CA's state, without writing anything; False when
    `[security] ca_certificate` / `ca_private_key` cannot be the CA."""
    s = config.security
    files = _files(config)
    now = utc_now()
    try:
        if s.ca_certificate is not None and s.ca_private_key is not None:
            chain = site_ca.parse_chain(s.ca_certificate.read_bytes())
            site_ca.validate_ca(chain, site_ca.parse_key(s.ca_private_key.read_bytes()), now)
            source = f"{s.ca_certificate} (the operator's)"
        elif files.cert.exists():
            chain = site_ca.parse_chain(files.cert.read_bytes())
            source = str(files.cert)
        else:
            return True, ["site CA: none yet (made on the first SignCertificate, or `ca init`)"]
    except (site_ca.CaError, OSError) as err:
        return False, [f"site CA: {err}"]
    cert = chain[0]
    return True, [
        f"site CA: {cert.subject.rfc4514_string()} from {source}, "
        f"until {format_time(cert.not_valid_after_utc)}"
    ]


def _files(config: Config) -> site_ca.CaFiles:
    return site_ca.CaFiles.of(config.storage.data_dir)


def _load(config: Config) -> site_ca.SiteCa | None:
    s = config.security
    return site_ca.load_ca(
        _files(config), utc_now(), certificate=s.ca_certificate, private_key=s.ca_private_key
    )


def _describe(ca: site_ca.SiteCa) -> list[str]:
    cert = ca.certificate
    lines = [
        f"site CA: {cert.subject.rfc4514_string()}",
        f"  issued by: {cert.issuer.rfc4514_string()}",
        f"  valid: {format_time(cert.not_valid_before_utc)} to "
        f"{format_time(cert.not_valid_after_utc)}",
        f"  SHA-256 fingerprint: {site_ca.fingerprint(cert)}",
        f"  certificate (chain): {ca.files.cert.resolve()}",
        f"  revocation list: {ca.files.crl.resolve()}",
    ]
    if len(ca.chain) > 1:
        lines.insert(2, f"  chain: {len(ca.chain)} certificates (an operator's intermediate)")
    return lines


def _init(args: argparse.Namespace, config: Config) -> int:
    files = _files(config)
    s = config.security
    if args.import_files is not None:
        if s.ca_certificate is not None:
            print("ca: [security] ca_certificate is configured; it is the CA", file=sys.stderr)
            return 2
        if files.cert.exists():
            print(
                f"ca: a site CA already exists in {files.directory}; move it away first "
                "(chargers holding its certificates will then need new ones)",
                file=sys.stderr,
            )
            return 2
        cert_path, key_path = args.import_files
        ca = site_ca.import_ca(files, cert_path.read_bytes(), key_path.read_bytes(), utc_now())
        print("imported the operator's CA")
    else:
        existing = _load(config)
        if existing is not None:
            source = "[security] ca_certificate" if s.ca_certificate else "the data directory"
            print(f"the site CA exists (from {source}); nothing changed")
            ca = existing
        else:
            ca = site_ca.create_ca(
                files,
                utc_now(),
                site_name=s.site_name,
                organization=s.cpo_name,
                key_size=args.key_size or s.ca_key_size,
            )
            print("created the site CA")
    for line in _describe(ca):
        print(line)
    return 0


def _server_cert(args: argparse.Namespace, config: Config) -> int:
    ca = _load(config)
    if ca is None:
        s = config.security
        ca = site_ca.create_ca(
            _files(config),
            utc_now(),
            site_name=s.site_name,
            organization=s.cpo_name,
            key_size=s.ca_key_size,
        )
        print(f"created the site CA in {ca.files.directory}")
    directory = config.storage.data_dir / "tls"
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, tuple[Path, Path]] = {}
    for key_type, stem in [("rsa", "server"), *([("ec", "server-ec")] if args.ec else [])]:
        cert, key = site_ca.issue_server_certificate(
            ca,
            args.host,
            utc_now(),
            ips=args.ip,
            dns=args.dns,
            days=max(1, min(args.days, 3650)),
            key_size=args.key_size,
            key_type=key_type,
        )
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
        write_atomic(key_path, site_ca.key_pem(key), mode=0o600)
        # Leaf first, then the CA chain: what a TLS server sends.
        write_atomic(cert_path, (site_ca.cert_pem(cert) + ca.chain_pem()).encode(), mode=0o644)
        written[key_type] = (cert_path.resolve(), key_path.resolve())
        print(
            f"issued {cert.subject.rfc4514_string()} ({key_type.upper()}), serial "
            f"{site_ca.serial_hex(cert.serial_number)}, valid until "
            f"{format_time(cert.not_valid_after_utc)}"
        )
    print("add to the configuration file:\n")
    tls_port = config.ocpp.tls.port if config.ocpp.tls is not None else 9443
    print("[ocpp.tls]")
    print(f"port = {tls_port}")
    print(f'certificate = "{written["rsa"][0]}"')
    print(f'private_key = "{written["rsa"][1]}"')
    if "ec" in written:
        print(f'additional_certificate = "{written["ec"][0]}"   # the ECDSA suites')
        print(f'additional_private_key = "{written["ec"][1]}"')
    print(f'client_ca = "{ca.files.cert.resolve()}"   # charger certificates (profile 3)')
    return 0


def _register(config: Config) -> tuple[DocumentStore, CertificateRegister]:
    store = DocumentStore(config.storage.data_dir / "certificates.json")
    return store, CertificateRegister(store)


def _list(args: argparse.Namespace, config: Config) -> int:
    ca = _load(config)
    store, register = _register(config)
    try:
        revoked = site_ca.revoked_serials(site_ca.read_crl(ca)) if ca is not None else {}
        now = utc_now()
        entries = []
        for entry in register.entries(charger_id=args.charger):
            if int(entry["serial"], 16) in revoked and entry["status"] != "revoked":
                entry = {**entry, "status": "revoked"}  # revoked from here, not yet synced
            left = parse_time(entry["notAfter"]) - now
            entries.append(
                {
                    **entry,
                    "expiresInDays": int(left.total_seconds() // 86400),
                    "expiringSoon": expiring(entry, now),
                }
            )
    finally:
        store.close()
    if args.json:
        out: dict[str, Any] = {"ca": None, "certificates": entries}
        if ca is not None:
            out["ca"] = {
                "subject": ca.certificate.subject.rfc4514_string(),
                "notAfter": format_time(ca.certificate.not_valid_after_utc),
                "fingerprint": site_ca.fingerprint(ca.certificate),
            }
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if ca is None:
        print("no site CA yet (`edge-csms ca init`, or the first SignCertificate makes it)")
    else:
        for line in _describe(ca):
            print(line)
    print(f"\n{len(entries)} charger certificate(s)")
    days = EXPIRY_WARNING // timedelta(days=1)
    for e in entries:
        warn = f"  EXPIRES IN {e['expiresInDays']} DAYS" if e["expiringSoon"] else ""
        print(
            f"{e['serial']}  {e['chargerId']:<20} {e['status']:<10} "
            f"until {e['notAfter'][:10]}  {e['subject']}{warn}"
        )
    if any(e["expiringSoon"] for e in entries):
        print(f"\nsome certificates in use expire within {days} days: renew them")
    return 0


def _revoke(args: argparse.Namespace, config: Config) -> int:
    try:
        serial = normalise_serial(args.serial)
    except ValueError:
        print(f"ca: {args.serial!r} is not a hexadecimal serial number", file=sys.stderr)
        return 2
    ca = _load(config)
    if ca is None:
        print("ca: there is no site CA", file=sys.stderr)
        return 2
    store, register = _register(config)
    try:
        entry = register.get(serial)
        now = utc_now()
        revoked = site_ca.revoked_serials(site_ca.read_crl(ca))
        if int(serial, 16) not in revoked:
            revoked[int(serial, 16)] = now
            site_ca.write_crl(ca, revoked, now)
        if entry is not None:
            fields: dict[str, Any] = {"revokedAt": format_time(revoked[int(serial, 16)])}
            if args.reason:
                fields["reason"] = args.reason[:200]
            register.set_status(serial, "revoked", now, **fields)
    finally:
        store.close()
    if entry is None:
        print(f"{serial} is not in the register (a server certificate?); listed in the CRL")
    else:
        print(f"revoked {serial} ({entry['chargerId']}, {entry['subject']})")
    print(f"CRL rewritten: {ca.files.crl.resolve()}")
    print(
        "a running service takes it into its register within the hour (at once on its API); "
        "the TLS listener enforces it after its reload (SIGHUP, or a restart)"
    )
    return 0
