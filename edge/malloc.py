"""Keeping the service's resident memory small on a Pi (glibc allocator tuning)."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache

__all__ = ["limit_malloc_arenas", "release_free_memory"]


@cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None  # not glibc (e.g. musl)
    return libc


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas.

    glibc gives each thread that allocates its own arena (up to 8 per core), and
    freed memory stays in them: on a 1 GB Pi that is resident memory for nothing.
    The journal threads and file-flush workers would otherwise each hold one.
    Same effect as MALLOC_ARENA_MAX; a no-op where glibc is not the allocator.
    """
    libc = _libc()
    if libc is not None:
        m_arena_max = -8  # from <malloc.h>
        libc.mallopt(m_arena_max, arenas)


def release_free_memory() -> None:
    """Give memory freed after a burst (a site reconnecting, a large upload) back to the OS.

    glibc returns only the top of the heap by itself; malloc_trim also releases
    free pages in the middle of it. Cheap when there is nothing to release.
    """
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
