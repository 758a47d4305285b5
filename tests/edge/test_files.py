"""The [files] and [ftp] configuration, file names, public URLs and diagnostics retention."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.config import ConfigError, parse_config
from edge.files.store import FileStore, default_public_url, valid_name
from tests.conftest import make_config


def test_files_and_ftp_keys_are_read() -> None:
    """Every [files] and [ftp] key lands in its field; [ftp] absent means no FTP listener."""
    assert parse_config({}).ftp is None
    assert parse_config({}).files.link_validity == 86400
    cfg = parse_config(
        {
            "files": {
                "public_url": "http://192.168.1.10:8080/",
                "max_firmware_bytes": 1000,
                "max_diagnostics_bytes": 2000,
                "diagnostics_total_bytes": 3000,
                "link_validity": 600,
            },
            "ftp": {
                "host": "0.0.0.0",
                "port": 0,
                "public_host": "192.168.1.10",
                "passive_ports": [30000, 30009],
            },
        }
    )
    assert cfg.files.public_url == "http://192.168.1.10:8080"
    assert (cfg.files.max_firmware_bytes, cfg.files.max_diagnostics_bytes) == (1000, 2000)
    assert (cfg.files.diagnostics_total_bytes, cfg.files.link_validity) == (3000, 600)
    assert cfg.ftp is not None and cfg.ftp.passive_ports == (30000, 30009)
    assert cfg.ftp.public_host == "192.168.1.10" and cfg.ftp.port == 0


@pytest.mark.parametrize(
    "data",
    [
        {"files": {"public_url": "192.168.1.10:8080"}},
        {"files": {"max_firmware_bytes": 0}},
        {"files": {"link_validity": 10}},
        {"files": {"nonsense": 1}},
        {"ftp": {"passive_ports": [3000]}},
        {"ftp": {"passive_ports": [3010, 3000]}},
        {"ftp": {"port": 70000}},
    ],
)
def test_invalid_file_settings_are_refused(data: dict[str, object]) -> None:
    """Bad URLs, sizes, validity, port ranges and unknown keys are configuration errors."""
    with pytest.raises(ConfigError):
        parse_config(data)


def test_file_names() -> None:
    """Plain names up to 128 characters pass; separators, dot files and controls do not."""
    assert valid_name("fw-1.2.3.bin") and valid_name("a" * 128)
    for bad in ("", "a" * 129, "../x", "a/b", "a\\b", ".hidden", "..", "a\nb"):
        assert not valid_name(bad)


def test_default_public_url() -> None:
    """A wildcard web host is replaced by a real address; an explicit host is kept."""
    assert default_public_url("127.0.0.1", 8080) == "http://127.0.0.1:8080"
    url = default_public_url("0.0.0.0", 8080)
    assert url.startswith("http://") and "0.0.0.0" not in url and url.endswith(":8080")


def test_retention_removes_old_and_excess_diagnostics(tmp_path: Path) -> None:
    """Files older than event_retention_days go, then the oldest beyond the total size cap."""
    import dataclasses

    from edge.config import FilesConfig

    config = dataclasses.replace(
        make_config(tmp_path), files=FilesConfig(diagnostics_total_bytes=250)
    )
    store = FileStore(config, lambda: datetime.now(UTC))
    folder = store.diagnostics_dir / "CP1"
    folder.mkdir()
    now = time.time()
    for i, age_days in enumerate((200, 3, 2, 1)):
        path = folder / f"f{i}.log"
        path.write_bytes(b"x" * 100)
        os.utime(path, (now - age_days * 86400, now - age_days * 86400))
    assert store.prune() == 2
    assert sorted(p.name for p in folder.iterdir()) == ["f2.log", "f3.log"]
    assert [f["name"] for f in store.list_diagnostics("CP1")] == ["f3.log", "f2.log"]


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def test_times_from_mtime_are_utc(tmp_path: Path, new_york_time: None) -> None:
    """Without a sidecar, uploadedAt/receivedAt come from the file's mtime, in UTC."""
    store = FileStore(make_config(tmp_path), lambda: datetime.now(UTC))
    mtime = 1714564800.25  # 2024-05-01T12:00:00.250Z
    firmware = store.firmware_dir / "fw.bin"
    firmware.write_bytes(b"x")
    os.utime(firmware, (mtime, mtime))
    (store.diagnostics_dir / "CP1").mkdir()
    diagnostics = store.diagnostics_dir / "CP1" / "diag.log"
    diagnostics.write_bytes(b"y")
    os.utime(diagnostics, (mtime, mtime))
    assert store.list_firmware()[0]["uploadedAt"] == "2024-05-01T12:00:00.250Z"
    assert store.list_diagnostics("CP1")[0]["receivedAt"] == "2024-05-01T12:00:00.250Z"


async def test_a_naive_clock_reading_is_utc(tmp_path: Path, new_york_time: None) -> None:
    """Stored times, diagnostics file names and link expiry never shift by the local zone."""
    store = FileStore(make_config(tmp_path), lambda: datetime(2024, 5, 1, 12))
    assert store.now() == 1714564800.0
    meta = await store.save_firmware("fw.bin", _chunks(b"x"))
    assert meta["uploadedAt"] == "2024-05-01T12:00:00.000Z"
    grant = store.create_grant("CP1", "http")
    assert grant.expires == 1714564800.0 + store.config.link_validity
    meta = await store.receive_diagnostics(grant, "diag.log", _chunks(b"y"), via="http")
    assert meta["receivedAt"] == "2024-05-01T12:00:00.000Z"
    assert meta["name"] == "20240501T120000Z-diag.log"
