"""Whether the system clock is synchronised (NTP, or a real-time clock set by it).

A Raspberry Pi has no battery-backed clock: after a power cut it starts with the time it
last saved until NTP answers, and an offline site has no NTP. The kernel knows: the
``adjtimex`` system call (read-only when ``modes`` is 0) returns ``TIME_ERROR`` while
the clock is not synchronised. Elsewhere (not Linux) the answer is unknown (None).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

__all__ = ["clock_synchronised"]

log = logging.getLogger(__name__)

TIME_ERROR = 5  # adjtimex: "clock not synchronized"
_TIMEX_SIZE = 512  # struct timex is ~208 bytes on 64-bit Linux; zeroed: modes = 0, read only


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def clock_synchronised() -> bool | None:
    """True when the kernel says the clock is synchronised, False when it says it is
    not, None when it cannot tell (not Linux, or the call failed)."""
    if _LIBC is None:
        return None
    buffer = ctypes.create_string_buffer(_TIMEX_SIZE)
    state = int(_LIBC.adjtimex(buffer))
    if state < 0:
        return None
    return state != TIME_ERROR
