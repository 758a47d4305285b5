"""The one way files are replaced: whole, durable, with no temporary file left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from edge.store import atomic
from edge.store.atomic import remove_leftovers, write_atomic


def test_write_replaces_the_file_with_its_mode(tmp_path: Path) -> None:
    """A write creates or replaces the file whole, with the permissions asked for."""
    path = tmp_path / "secret"
    write_atomic(path, b"one", mode=0o600)
    write_atomic(path, b"two", mode=0o600)
    assert path.read_bytes() == b"two"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]


def test_the_directory_is_fsynced_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an fsync of the directory a power cut may undo the rename."""
    synced: list[str] = []
    monkeypatch.setattr(atomic, "fsync_directory", lambda d: synced.append(os.fspath(d)))
    write_atomic(tmp_path / "f", b"x")
    assert synced == [os.fspath(tmp_path)]
    write_atomic(tmp_path / "g", b"x", durable=False)
    assert synced == [os.fspath(tmp_path)]


def test_a_failed_write_keeps_the_old_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure before the rename leaves the previous file and no temporary file."""
    path = tmp_path / "f"
    write_atomic(path, b"old")

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_leftovers_of_a_crash_are_removed(tmp_path: Path) -> None:
    """Temporary files a killed writer left beside a file are removed; others stay."""
    path = tmp_path / "chargers.json"
    path.write_bytes(b"{}")
    (tmp_path / ".chargers.json.tmp-abc").write_bytes(b"{")
    (tmp_path / ".other.tmp-abc").write_bytes(b"{")
    assert remove_leftovers(path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp-abc", "chargers.json"]
