"""The CA service without a server: revocation calls the TLS hook, the CRL is rewritten
before it runs out, command-line revocations are taken into the register."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from edge.chargers import Charger
from edge.security import ca as site_ca
from edge.security.authority import CertificateAuthority, UnknownSerial, normalise_serial
from edge.store import DocumentStore
from tests.conftest import make_config
from tests.helpers import Clock
from tests.security import certs


def authority(tmp_path: Path, clock: Clock) -> CertificateAuthority:
    records: list[tuple[Any, ...]] = []
    return CertificateAuthority(
        make_config(tmp_path / "data"),
        DocumentStore(tmp_path / "data" / "certificates.json", durable=False),
        clock=clock,
        record=lambda *args: records.append(args),
    )


def registered(ca: CertificateAuthority, site: site_ca.SiteCa, clock: Clock) -> str:
    """A charger certificate of `site`, in the register as the service puts it."""
    issuer = certs.Issued(site.certificate, site.key)
    leaf = certs.make_client_cert(issuer, "CP-1")
    serial = site_ca.serial_hex(leaf.serial)
    ca.register.add(
        {"serial": serial, "chargerId": "CP-1", "subject": "CN=CP-1", "status": "installed",
         "notAfter": "2028-01-01T00:00:00.000Z", "issuedAt": "2026-12-04T00:00:00.000Z"}
    )  # fmt: skip
    return serial


def test_normalise_serial() -> None:
    assert normalise_serial("0x00AB:CD") == "abcd"
    with pytest.raises(ValueError):
        normalise_serial("xyz")


async def test_revocation_rewrites_the_crl_and_tells_the_tls_side(tmp_path: Path) -> None:
    clock = Clock()
    ca = authority(tmp_path, clock)
    site = await ca.authority()
    serial = registered(ca, site, clock)
    reloads: list[bool] = []
    ca.crl_changed = lambda: reloads.append(True)
    with pytest.raises(UnknownSerial):
        await ca.revoke("abc")
    entry = await ca.revoke(serial, "stolen")
    assert entry["status"] == "revoked" and reloads == [True]
    crl = site_ca.read_crl(site)
    assert crl is not None and crl.get_revoked_certificate_by_serial_number(int(serial, 16))
    # Twice is once.
    await ca.revoke(serial)
    assert len(site_ca.read_crl(site) or []) == 1


async def test_crl_refreshed_before_it_runs_out(tmp_path: Path) -> None:
    clock = Clock()
    ca = authority(tmp_path, clock)
    site = await ca.authority()
    serial = registered(ca, site, clock)
    await ca.revoke(serial)
    reloads: list[bool] = []
    ca.crl_changed = lambda: reloads.append(True)
    assert not await ca.refresh()
    clock.advance(timedelta(days=16).total_seconds())
    assert await ca.refresh() and reloads == [True]
    crl = x509.load_pem_x509_crl(site.files.crl.read_bytes())
    assert crl.next_update_utc is not None and crl.next_update_utc > clock.now + timedelta(days=29)
    assert crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None


async def test_outside_revocations_are_synced(tmp_path: Path) -> None:
    clock = Clock()
    ca = authority(tmp_path, clock)
    site = await ca.authority()
    serial = registered(ca, site, clock)
    assert ca.sync_revocations() == 0
    # What `edge-csms ca revoke` does to the CRL while the service runs.
    site_ca.write_crl(site, {int(serial, 16): clock.now}, clock.now + timedelta(seconds=1))
    os.utime(site.files.crl, (clock.now.timestamp() + 5, clock.now.timestamp() + 5))
    assert ca.sync_revocations() == 1
    assert ca.register.get(serial)["status"] == "revoked"  # type: ignore[index]


async def test_a_ca_is_made_once_under_concurrent_requests(tmp_path: Path) -> None:
    ca = authority(tmp_path, Clock())
    first, second = await asyncio.gather(ca.authority(), ca.authority())
    assert first is second


async def test_a_register_that_cannot_be_written_answers_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accepted promises a certificate the edge remembers: no disk, no promise."""
    ca = authority(tmp_path, Clock())
    sent: list[str] = []
    ca.deliver = lambda charger, chain, serial: sent.append(serial)
    charger = Charger("CP-1", {"id": "CP-1"})  # type: ignore[typeddict-item]

    async def full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ca.register.store, "flush_async", full)
    csr, _ = certs.make_csr("CP-1")
    assert await ca.sign(charger, csr) == "Rejected"
    assert sent == [] and len(ca.register) == 0
    monkeypatch.undo()
    assert await ca.sign(charger, csr) == "Accepted"
    assert len(sent) == 1 and ca.register.get(sent[0]) is not None
