"""The site's security lifecycle end to end, as a technician sets it up and an operator
runs it: the real command line, the real server on 127.0.0.1 with real TLS, and the
`ocpp` package's ChargePoint as the charger.

1. `edge-csms ca init` and `ca server-cert` into a fresh data dir; the configuration takes
   the printed `[ocpp.tls]` files, without `client_ca` (the site CA's is used).
2. CP-E2E at security profile 2: wss with Basic auth, boots, starts a transaction.
3. ExtendedTriggerMessage(SignChargePointCertificate) → SignCertificate → CertificateSigned
   with a chain from the site CA → installed in the register.
4. ChangeConfiguration(SecurityProfile=3): the charger reconnects with its certificate
   and no password; profile 2 (Basic over wss) and ws are refused from then on.
5. Revocation through the API: the next connection with the certificate is refused, in
   the TLS handshake once the listener has read the new CRL (the site CA's CRL is
   current: README, profile 3), a security event; the transaction acknowledged before is
   all there.
6. A restart on the same data dir: profile 3 still required, the certificate still refused.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from ocpp.routing import on
from ocpp.v16 import call, call_result

from edge.config import load_config
from tests.chargepoint import basic_auth
from tests.conftest import Api, running
from tests.helpers import eventually, now_iso
from tests.integration.service import REPO, config_toml
from tests.security import certs
from tests.security.charger import SecurityCP, security_cp
from tests.security.conn_support import (
    PASSWORD,
    TIMEOUT,
    http_status,
    refused,
    ws_url,
    wss_url,
)

CHARGER = "CP-E2E"
TAG = "TAG-E2E"


class LifecycleCharger(SecurityCP):
    """The Whitepaper charger of the CA's tests (a CSR when triggered, CertificateSigned
    Accepted) that also accepts ChangeConfiguration, as a charger moving to profile 3."""

    def __init__(self, charger_id: str, connection: Any) -> None:
        super().__init__(charger_id, connection)
        self.changes: list[tuple[str, str]] = []

    @on("ChangeConfiguration")
    def on_change_configuration(self, key: str, value: str) -> Any:
        self.changes.append((key, value))
        return call_result.ChangeConfiguration(status="Accepted")


def edge_csms(*args: str) -> str:
    """Run the command line as a technician does (`python -m edge …`); its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    done = subprocess.run(
        [sys.executable, "-m", "edge", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def printed_tls(output: str) -> dict[str, str]:
    """The `[ocpp.tls]` keys `ca server-cert` printed, by name (values unquoted)."""
    section = output.split("[ocpp.tls]\n", 1)[1]
    found = dict(re.findall(r'^(\w+) = "?([^"\n]*?)"?(?:\s+#.*)?$', section, re.MULTILINE))
    assert {"port", "certificate", "private_key", "client_ca"} <= set(found), output
    return found


def write_config(path: Path, data_dir: Path, tls: dict[str, str]) -> None:
    """The site's configuration file: the printed server certificate and key on an
    ephemeral port, no client_ca; CP-E2E with a password at security profile 2."""
    path.write_text(
        config_toml(data_dir, call_timeout=5.0)
        + "\n[ocpp.tls]\nport = 0\n"
        + f'certificate = "{tls["certificate"]}"\n'
        + f'private_key = "{tls["private_key"]}"\n'
        + f'\n[chargers.{CHARGER}]\npassword = "{PASSWORD}"\nsecurity_profile = 2\n'
    )


async def security_events(api: Api, event_type: str) -> list[dict[str, Any]]:
    return [e for e in await api.get("/api/security/events") if e["type"] == event_type]


async def test_site_security_lifecycle(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config_file = tmp_path / "edge.toml"
    config_file.write_text(config_toml(data_dir, call_timeout=5.0))

    # 1. The technician: the site CA, the listener's certificate, the configuration.
    created = await asyncio.to_thread(edge_csms, "ca", "init", "--config", str(config_file))
    assert "created the site CA" in created
    issued = await asyncio.to_thread(
        edge_csms, "ca", "server-cert", "--config", str(config_file),
        "--host", "localhost", "--ip", "127.0.0.1",
    )  # fmt: skip
    tls = printed_tls(issued)
    ca_file = data_dir / "ca" / "ca.pem"
    assert Path(tls["client_ca"]) == ca_file.resolve()
    write_config(config_file, data_dir, tls)
    config = load_config(config_file)
    assert config.ocpp.tls is not None and config.ocpp.tls.client_ca is None
    site_ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
    trust = certs.client_context(ca_file)  # the charger's CentralSystemRootCertificate
    charger_dir = tmp_path / "charger"
    charger_dir.mkdir()
    own = certs.Paths(charger_dir / "client.pem", charger_dir / "client.key")

    async with asyncio.timeout(TIMEOUT * 3), running(config) as (app, api):
        described = await api.get("/api/security/tls")
        assert described["clientCa"] == str(ca_file)
        assert described["crlCheckedInHandshake"] is True
        status, _ = await api.request("PUT", f"/api/id-tags/{TAG}", {"status": "Accepted"})
        assert status in (200, 201)

        # 2. Profile 2: wss with Basic auth; boots and starts a transaction.
        basic = basic_auth(CHARGER, PASSWORD)
        async with security_cp(
            wss_url(app, CHARGER), CHARGER, kind=LifecycleCharger, ssl=trust, headers=basic
        ) as cp:
            assert isinstance(cp, LifecycleCharger)
            security = (await api.get(f"/api/chargers/{CHARGER}"))["security"]
            assert security["profile"] == 2 and security["connectedAt"]["profile"] == 2
            started = await cp.call(
                call.StartTransaction(
                    connector_id=1, id_tag=TAG, meter_start=1000, timestamp=now_iso()
                )
            )
            assert started.id_tag_info["status"] == "Accepted"
            transaction_id = started.transaction_id

            # 3. A certificate for the charger from the site CA.
            status, body = await api.operation(
                CHARGER,
                "ExtendedTriggerMessage",
                {"requestedMessage": "SignChargePointCertificate"},
            )
            assert status == 200 and body["response"]["status"] == "Accepted", body
            assert await cp.sign_answers.get() == "Accepted"
            chain = await cp.chains.get()
            leaf, *issuers = x509.load_pem_x509_certificates(chain.encode())
            assert issuers == [site_ca]
            leaf.verify_directly_issued_by(site_ca)
            assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == CHARGER
            assert leaf.public_key() == cp.keys[-1].public_key()
            serial = format(leaf.serial_number, "x")

            async def installed() -> bool:
                entries = await api.get(f"/api/certificates?chargerId={CHARGER}")
                return [(e["serial"], e["status"]) for e in entries] == [(serial, "installed")]

            assert await eventually(installed, timeout=TIMEOUT)
            own.cert.write_text(chain)
            own.key.write_text(certs.key_pem(cp.keys[-1]))
            own.key.chmod(0o600)

            # 4. Profile 3, raised through the Whitepaper's flow.
            status, body = await api.operation(
                CHARGER, "ChangeConfiguration", {"key": "SecurityProfile", "value": "3"}
            )
            assert status == 200 and body["response"]["status"] == "Accepted", body
            assert cp.changes == [("SecurityProfile", "3")]
            assert (await api.get(f"/api/chargers/{CHARGER}"))["security"]["pendingProfile"] == 3
        with_certificate = certs.client_context(ca_file, own)
        async with security_cp(wss_url(app, CHARGER), CHARGER, ssl=with_certificate):
            security = (await api.get(f"/api/chargers/{CHARGER}"))["security"]
            assert (security["profile"], security["pendingProfile"]) == (3, None)
            assert security["connectedAt"]["profile"] == 3
        assert http_status(await refused(wss_url(app, CHARGER), ssl_context=trust,
                                         password=PASSWORD)) == 403  # fmt: skip
        assert http_status(await refused(ws_url(app, CHARGER), password=PASSWORD)) == 403

        # 5. Revocation, without a restart: refused from the next connection on; at the
        # upgrade while the listener reloads the CRL, then in the TLS handshake.
        status, body = await api.request(
            "POST", f"/api/certificates/{serial}/revoke", {"reason": "charger stolen"}
        )
        assert status == 200 and body["status"] == "revoked", body
        err = await refused(wss_url(app, CHARGER), ssl_context=with_certificate)
        assert http_status(err) in (None, 403), err

        async def crl_reloaded() -> bool:
            return bool((await api.get("/api/security/tls"))["revokedCertificates"] == 1)

        assert await eventually(crl_reloaded)
        err = await refused(wss_url(app, CHARGER), ssl_context=with_certificate)
        assert http_status(err) is None, err  # ended in the TLS handshake, not by HTTP

        async def revoked_event() -> list[dict[str, Any]]:
            found = await security_events(api, "TlsHandshakeRefused")
            return [e for e in found if "revoked" in str(e["techInfo"])]

        assert await eventually(revoked_event)
        transaction = await api.get(f"/api/transactions/{transaction_id}")
        assert (transaction["chargerId"], transaction["active"]) == (CHARGER, True)
        assert (transaction["idTag"], transaction["meterStart"]) == (TAG, 1000)

    # 6. A restart on the same data dir changes none of it.
    async with asyncio.timeout(TIMEOUT * 2), running(load_config(config_file)) as (app, api):
        assert (await api.get(f"/api/chargers/{CHARGER}"))["security"]["profile"] == 3
        err = await refused(wss_url(app, CHARGER), ssl_context=trust, password=PASSWORD)
        assert http_status(err) == 403
        err = await refused(wss_url(app, CHARGER), ssl_context=with_certificate)
        assert http_status(err) is None, err
        [entry] = await api.get(f"/api/certificates?chargerId={CHARGER}")
        assert (entry["serial"], entry["status"]) == (serial, "revoked")
        transaction = await api.get(f"/api/transactions/{transaction_id}")
        assert (transaction["chargerId"], transaction["active"]) == (CHARGER, True)
