"""`edge-csms check` on the TLS material, and the real service: its wss line, SIGHUP
reloading the client CA, and a refused start on a fatal certificate problem."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge.cli import main
from tests.conftest import TIME_SCALE
from tests.helpers import eventually
from tests.integration.service import REPO, Service, config_toml
from tests.security.certs import make_ca, make_server_cert, write, write_pem
from tests.security.conn_support import Pki, charger, make_pki, refused

WSS_LINE = re.compile(r"listening for OCPP 1\.6J on wss://127\.0\.0\.1:(\d+)/")


def tls_toml(data_dir: Path, pki: Pki, *, key: Path | None = None, cert: Path | None = None) -> str:
    return (
        config_toml(data_dir, call_timeout=2.0)
        + "\n[ocpp.tls]\nport = 0\n"
        + f'certificate = "{cert or pki.server.cert}"\n'
        + f'private_key = "{key or pki.server.key}"\n'
        + "\n[chargers.CP3]\nsecurity_profile = 3\n"
    )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def test_check_reports_the_tls_material(
    tmp_path: Path, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    """Good material: OK, with the wss endpoint. Expired: OK (as `serve`, which starts)
    but said loudly. A key that does not match: exit 2 with what is wrong."""
    good = tmp_path / "good.toml"
    good.write_text(tls_toml(tmp_path / "d", pki))
    assert main(["check", "--config", str(good)]) == 0
    out = capsys.readouterr().out
    assert "OCPP TLS endpoint: wss://127.0.0.1:0/" in out and "configuration OK" in out
    expired = write(tmp_path, "expired", make_server_cert(pki.ca, expired=True))
    bad = tmp_path / "expired.toml"
    bad.write_text(tls_toml(tmp_path / "d", pki, cert=expired.cert, key=expired.key))
    assert main(["check", "--config", str(bad)]) == 0
    assert "TLS error: server certificate: expired on" in capsys.readouterr().err
    mismatch = tmp_path / "mismatch.toml"
    mismatch.write_text(tls_toml(tmp_path / "d", pki, key=pki.server_ec.key))
    assert main(["check", "--config", str(mismatch)]) == 2
    assert "does not match" in capsys.readouterr().err


def test_serve_refuses_to_start_on_a_fatal_problem(tmp_path: Path, pki: Pki) -> None:
    config = tmp_path / "config.toml"
    config.write_text(tls_toml(tmp_path / "d", pki, key=pki.server_ec.key))
    done = subprocess.run(
        [sys.executable, "-m", "edge", "serve", "--config", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60 * TIME_SCALE,
    )
    assert done.returncode == 2
    assert "private key does not match" in done.stderr


async def test_sighup_reloads_the_client_ca(tmp_path: Path, pki: Pki) -> None:
    """The service logs its wss socket; a charger certificate from a CA added to the site
    CA file is refused until SIGHUP, and accepted after it."""
    data_dir = tmp_path / "d"
    ca_file = write_pem(data_dir / "ca" / "ca.pem", pki.ca)
    config = tmp_path / "config.toml"
    config.write_text(tls_toml(data_dir, pki))
    service = Service(config=config, log=tmp_path / "service.log")
    try:
        await service.start()
        match = await eventually(lambda: WSS_LINE.search(service.text()))
        assert match is not None
        url = f"wss://127.0.0.1:{match[1]}/ocpp/CP3"
        other = make_ca("Second CA")
        from_other = pki.client("CP3", issuer=other)
        await refused(url, ssl_context=pki.context(from_other))
        write_pem(ca_file, pki.ca, other)
        assert service.proc is not None
        service.proc.send_signal(signal.SIGHUP)
        await eventually(lambda: "TLS reloaded" in service.text(), timeout=15 * TIME_SCALE)
        async with (
            asyncio.timeout(20 * TIME_SCALE),
            charger(url, ssl_context=pki.context(from_other)),
        ):
            pass
        assert service.proc.returncode is None
    finally:
        await service.stop()
