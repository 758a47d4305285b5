"""AtomicJSONStorage and DocumentStore."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import orjson
import pytest

from edge.store import AtomicJSONStorage, DocumentStore, atomic


def on_disk(path: Path) -> object:
    return orjson.loads(path.read_bytes())


def test_round_trip(tmp_path: Path) -> None:
    """Documents written and flushed are read back by a new store."""
    store = DocumentStore(tmp_path / "c.json")
    store.table("chargers").insert({"id": "CP1", "connectors": [{"id": 1}]})
    store.table("tags").insert({"idTag": "A", "status": "Accepted"})
    store.close()
    again = DocumentStore(tmp_path / "c.json")
    assert again.table("chargers").all() == [{"id": "CP1", "connectors": [{"id": 1}]}]
    assert again.table("tags").get(doc_id=1) == {"idTag": "A", "status": "Accepted"}


def test_deferred_writes_reach_disk_only_on_flush(tmp_path: Path) -> None:
    """In deferred mode a write changes memory only; flush() writes the file once."""
    path = tmp_path / "c.json"
    store = DocumentStore(path)
    table = store.table("chargers")
    for n in range(100):
        table.insert({"n": n})
    assert len(table) == 100
    assert store.dirty
    assert not path.exists()
    store.flush()
    assert not store.dirty
    assert len(on_disk(path)["chargers"]) == 100  # type: ignore[index]
    table.update({"n": -1}, doc_ids=[1])
    assert on_disk(path)["chargers"]["1"] == {"n": 0}  # type: ignore[index]
    stats = store.statistics()
    assert (stats.writes, stats.flushes, stats.dirty) == (101, 1, True)
    assert stats.bytes_written == len(path.read_bytes())


def test_flush_is_a_no_op_when_clean(tmp_path: Path) -> None:
    """A flush with nothing new writes nothing."""
    path = tmp_path / "c.json"
    store = DocumentStore(path)
    store.flush()
    assert not path.exists()
    store.table("t").insert({"a": 1})
    store.flush()
    written = store.statistics().bytes_written
    mtime = path.stat().st_mtime_ns
    store.flush()
    store.close()
    assert store.statistics().flushes == 1
    assert store.statistics().bytes_written == written
    assert path.stat().st_mtime_ns == mtime


def test_not_deferred_writes_through(tmp_path: Path) -> None:
    """With deferred=False every write replaces the file before returning."""
    path = tmp_path / "c.json"
    store = DocumentStore(path, deferred=False, durable=False)
    store.table("t").insert({"a": 1})
    assert on_disk(path) == {"t": {"1": {"a": 1}}}
    assert not store.dirty


@pytest.mark.parametrize("content", [b'{"t": {"1": {"a": 1}}', b"\x00\x00\x00", b"[1, 2]"])
def test_corrupt_file_is_set_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    """An unreadable file is renamed to .corrupt-<time>, logged, and the store starts empty."""
    path = tmp_path / "c.json"
    path.write_bytes(content)
    with caplog.at_level(logging.ERROR, logger="edge.store.documents"):
        store = DocumentStore(path)
    assert store.table("t").all() == []
    [aside] = tmp_path.glob("c.json.corrupt-*")
    assert aside.read_bytes() == content
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    store.table("t").insert({"a": 2})
    store.close()
    assert on_disk(path) == {"t": {"1": {"a": 2}}}


def test_stale_temp_file_is_removed(tmp_path: Path) -> None:
    """A temp file left by a crash mid-flush is deleted; the last complete file is used."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"t": {"1": {"v": 1}}}))
    (tmp_path / ".c.json.tmp-x1y2").write_bytes(b'{"t": {"1": {"v": 2')
    store = DocumentStore(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]
    assert store.table("t").get(doc_id=1) == {"v": 1}


def test_failed_write_leaves_memory_unchanged(tmp_path: Path) -> None:
    """Write-through: a document orjson cannot serialise is refused; the cache keeps the
    last good state."""
    store = DocumentStore(tmp_path / "c.json", deferred=False)
    table = store.table("t")
    table.insert({"a": 1})
    with pytest.raises(TypeError):
        table.update({"a": object()}, doc_ids=[1])
    with pytest.raises(TypeError):
        table.insert({"b": {1, 2}})
    assert table.all() == [{"a": 1}]
    store.close()
    assert on_disk(tmp_path / "c.json") == {"t": {"1": {"a": 1}}}


def test_unserialisable_deferred_write_fails_at_flush(tmp_path: Path) -> None:
    """Deferred: an unserialisable document makes the flush fail; the file keeps the last
    good state."""
    path = tmp_path / "c.json"
    store = DocumentStore(path)
    table = store.table("t")
    table.insert({"a": 1})
    store.flush()
    table.insert({"b": {1, 2}})
    with pytest.raises(TypeError):
        store.flush()
    assert store.dirty
    assert on_disk(path) == {"t": {"1": {"a": 1}}}


async def test_concurrent_flushes_share_writes(tmp_path: Path) -> None:
    """Many callers awaiting flush_async after their own change cost far fewer file writes."""
    store = DocumentStore(tmp_path / "c.json")
    table = store.table("t")

    async def change_and_persist(n: int) -> None:
        table.insert({"n": n})
        await store.flush_async()

    await asyncio.gather(*(change_and_persist(n) for n in range(200)))
    assert not store.dirty
    assert len(on_disk(tmp_path / "c.json")["t"]) == 200
    assert store.statistics().flushes < 20


def test_failed_flush_keeps_data_dirty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the file cannot be written, flush raises, data stays dirty, a later flush works."""
    path = tmp_path / "c.json"
    store = DocumentStore(path)
    store.table("t").insert({"a": 1})

    def disk_full(*args: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(atomic.os, "fsync", disk_full)
        with pytest.raises(OSError):
            store.flush()
    assert store.dirty
    assert store.statistics().failed_flushes == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    store.flush()
    assert on_disk(path) == {"t": {"1": {"a": 1}}}
    assert not store.dirty


async def test_flush_async_persists_and_keeps_later_writes_dirty(tmp_path: Path) -> None:
    """flush_async writes the file off the loop; a write made meanwhile stays dirty."""
    path = tmp_path / "c.json"
    store = DocumentStore(path)
    store.table("t").insert({"a": 1})
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(store.flush_async())
        await asyncio.sleep(0)  # the flush has taken its snapshot and is in the worker thread
        store.table("t").insert({"a": 2})
    assert on_disk(path) == {"t": {"1": {"a": 1}}}
    assert store.dirty
    await store.flush_async()
    assert not store.dirty
    assert on_disk(path) == {"t": {"1": {"a": 1}, "2": {"a": 2}}}


def test_storage_is_usable_directly_with_tinydb(tmp_path: Path) -> None:
    """AtomicJSONStorage is a plain tinydb Storage: read() is None until something is written."""
    storage = AtomicJSONStorage(tmp_path / "x.json", deferred=False)
    assert storage.read() is None
    storage.write({"t": {"1": {"a": 1}}})
    assert AtomicJSONStorage(tmp_path / "x.json").read() == {"t": {"1": {"a": 1}}}
