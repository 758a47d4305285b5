"""Writing a file so a crash or a power cut leaves the old content or the new, never a mix.

The one way every file of the service is replaced: write a temporary file in the same
directory, fsync it, rename it over the target, fsync the directory. Without the last
step a power cut may revert the rename on ext4 and on the FAT/ext4 of SD cards.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["fsync_directory", "remove_leftovers", "replace_durably", "write_atomic"]


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Make the directory's entries (a rename, a new file) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(source: Path, target: Path, *, durable: bool = True) -> None:
    """Rename `source` (already written and fsynced) over `target`, durably."""
    os.replace(source, target)
    if durable:
        fsync_directory(target.parent)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, durable: bool = True) -> None:
    """Replace `path` with `data` atomically (see the module docstring).

    Args:
        mode: permissions of the new file (0o600 for secrets).
        durable: False skips the fsyncs (tests and benchmarks only).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        replace_durably(Path(tmp), path, durable=durable)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def remove_leftovers(path: Path) -> int:
    """Remove temporary files a crash left beside `path` (the file itself is whole);
    returns how many."""
    removed = 0
    for leftover in path.parent.glob(f".{path.name}.tmp-*"):
        with contextlib.suppress(OSError):
            leftover.unlink()
            removed += 1
    return removed
