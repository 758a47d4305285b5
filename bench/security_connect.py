"""The server's CPU per connect + BootNotification, by security profile.

    python -m bench.security_connect [--chargers 200] [--json FILE]

One `edge-csms serve` process with a ws and a wss listener (an RSA 2048 server
certificate, the site's CA); N chargers at profile 1 (HTTP Basic over ws, each its own
password) and N at profile 3 (TLS 1.3 with a client certificate, CN = identity) connect
one after the other, send a BootNotification, wait for its answer and close. The server's
CPU time (user + system, from /proc) over each batch, divided by N, is the cost of one
connect. Two rounds: *first* (a charger's first connect since the start: profile 1 pays
its scrypt check) and *again* (the same chargers reconnecting: a key that passed is
remembered). The issue's target: a profile 3 connect at most 3 times a profile 1 connect.

Linux only (/proc). The clients share the machine with the server, but only the server's
CPU is counted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import ssl
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from websockets.asyncio.client import connect

from bench.site import run_info

REPO = Path(__file__).resolve().parents[1]
BOOT = '[2,"1","BootNotification",{"chargePointVendor":"Bench","chargePointModel":"B"}]'
WS_LINE = re.compile(r"listening for OCPP 1\.6J on ws://127\.0\.0\.1:(\d+)/")
WSS_LINE = re.compile(r"listening for OCPP 1\.6J on wss://127\.0\.0\.1:(\d+)/")


def _issue(
    subject: str,
    issuer: tuple[x509.Certificate, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    usage: x509.ObjectIdentifier | None = None,
    san: str | None = None,
    ec_key: bool = False,
) -> tuple[x509.Certificate, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey]:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        ec.generate_private_key(ec.SECP256R1())
        if ec_key
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if san is not None:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(san))]),
            critical=False,
        )
    signer = issuer[1] if issuer else key
    return builder.sign(signer, hashes.SHA256()), key


def _write(
    path: Path,
    cert: x509.Certificate,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None,
) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.with_suffix(".key").chmod(0o600)


def _setup(root: Path, chargers: int) -> tuple[Path, list[ssl.SSLContext]]:
    """The config file, and one client context per profile 3 charger."""
    ca = _issue("Bench CA", None, ca=True)
    _write(root / "ca.pem", ca[0])
    server = _issue("127.0.0.1", ca, usage=ExtendedKeyUsageOID.SERVER_AUTH, san="127.0.0.1")
    _write(root / "server.pem", *server)
    # As `edge-csms ca server-cert` sets a site up: an RSA and an ECDSA certificate (the
    # Whitepaper's suites need both); clients that offer ECDSA get the cheaper one.
    server_ec = _issue(
        "127.0.0.1", ca, usage=ExtendedKeyUsageOID.SERVER_AUTH, san="127.0.0.1", ec_key=True
    )
    _write(root / "server-ec.pem", *server_ec)
    contexts = []
    for i in range(chargers):
        client = _issue(f"P3-{i}", ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
        _write(root / f"client-{i}.pem", *client)
        ctx = ssl.create_default_context(cafile=root / "ca.pem")
        ctx.load_cert_chain(root / f"client-{i}.pem", root / f"client-{i}.key")
        contexts.append(ctx)
    lines = [
        '[ocpp]\nhost = "127.0.0.1"\nport = 0\nunknown_chargers = "reject"',
        f'[ocpp.tls]\nport = 0\ncertificate = "{root / "server.pem"}"',
        f'private_key = "{root / "server.key"}"\nclient_ca = "{root / "ca.pem"}"',
        f'additional_certificate = "{root / "server-ec.pem"}"',
        f'additional_private_key = "{root / "server-ec.key"}"',
        # Every charger connects from 127.0.0.1, several times over: the per-source
        # handshake rate would (rightly) throttle that; the cost of a connect is measured.
        "[ocpp.limits]\nhandshake_rate = 10000.0\nhandshake_burst = 100000",
        '[web]\nhost = "127.0.0.1"\nport = 0\napi_token = "bench-token-0123456789"',
        f'[storage]\ndata_dir = "{root / "data"}"',
    ]
    for i in range(chargers):
        lines.append(f'[chargers.P1-{i}]\npassword = "{_password(i)}"\nsecurity_profile = 1')
        lines.append(f"[chargers.P3-{i}]\nsecurity_profile = 3")
    config = root / "config.toml"
    config.write_text("\n".join(lines) + "\n")
    return config, contexts


def _password(i: int) -> str:
    return f"bench-password-{i:05d}"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _connect_boot(
    url: str, *, headers: dict[str, str] | None = None, ctx: Any = None
) -> None:
    async with connect(
        url,
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers=headers,
        ssl=ctx,
        proxy=None,
        compression=None,
        open_timeout=30,
    ) as ws:
        await ws.send(BOOT)
        answer = await ws.recv()
        assert '"Accepted"' in str(answer), answer


async def measure(chargers: int) -> dict[str, Any]:
    """Run the benchmark; the CPU per connect in ms, by round and profile."""
    root = Path(tempfile.mkdtemp(prefix="edge-bench-security-"))
    try:
        config, contexts = _setup(root, chargers)
        log_path = root / "service.log"
        with log_path.open("wb") as log_file:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "edge", "serve", "--config", str(config),
                cwd=REPO, stdout=asyncio.subprocess.DEVNULL, stderr=log_file,
            )  # fmt: skip
            try:
                ws_port = wss_port = None
                for _ in range(600):
                    text = log_path.read_text(errors="replace")
                    ws, wss = WS_LINE.search(text), WSS_LINE.search(text)
                    if ws and wss:
                        ws_port, wss_port = ws[1], wss[1]
                        break
                    if proc.returncode is not None:
                        break
                    await asyncio.sleep(0.1)
                if ws_port is None:
                    raise RuntimeError(f"edge-csms did not start:\n{log_path.read_text()}")
                await asyncio.sleep(1.0)  # let start-up work settle
                rounds: dict[str, dict[str, float]] = {}
                for name in ("first", "again"):
                    start = _cpu_seconds(proc.pid)
                    for i in range(chargers):
                        token = base64.b64encode(f"P1-{i}:{_password(i)}".encode()).decode()
                        await _connect_boot(
                            f"ws://127.0.0.1:{ws_port}/ocpp/P1-{i}",
                            headers={"Authorization": f"Basic {token}"},
                        )
                    middle = _cpu_seconds(proc.pid)
                    for i in range(chargers):
                        await _connect_boot(
                            f"wss://127.0.0.1:{wss_port}/ocpp/P3-{i}", ctx=contexts[i]
                        )
                    end = _cpu_seconds(proc.pid)
                    p1 = 1000 * (middle - start) / chargers
                    p3 = 1000 * (end - middle) / chargers
                    rounds[name] = {
                        "profile1_ms": round(p1, 2),
                        "profile3_ms": round(p3, 2),
                        "ratio": round(p3 / p1, 2) if p1 > 0 else float("inf"),
                    }
            finally:
                if proc.returncode is None:
                    proc.terminate()
                    await proc.wait()
        return {"chargers": chargers, "rounds": rounds}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def report(result: dict[str, Any], info: dict[str, str]) -> str:
    lines = [
        f"Security profile connect cost, {result['chargers']} chargers per profile "
        f"({info['date']}, {info['cpu']}, Python {info['python']})",
        "",
        "| round | profile 1 (ws + Basic) | profile 3 (TLS + client cert) | ratio 3/1 |",
        "|---|---|---|---|",
    ]
    for name, row in result["rounds"].items():
        lines.append(
            f"| {name} | {row['profile1_ms']} ms | {row['profile3_ms']} ms | {row['ratio']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.security_connect")
    parser.add_argument("--chargers", type=int, default=200, help="chargers per profile")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    info = run_info("bench.security_connect", argv)
    result = asyncio.run(measure(max(1, args.chargers)))
    print(report(result, info))
    if args.json is not None:
        args.json.write_text(json.dumps({"run": info, **result}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
