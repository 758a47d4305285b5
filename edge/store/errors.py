"""Errors raised by :mod:`edge.store`.

Tree::

    StoreError
    └── JournalClosedError   the journal is not open (before open() or after close())

sqlite3 and OS errors from a failed write are passed through unchanged on the
operation's future (or raised by ``flush()``): the caller logs them and, for a
transaction message, answers the charger with a CallError instead of an ack.
"""

from __future__ import annotations

__all__ = ["JournalClosedError", "StoreError"]


class StoreError(Exception):
    """Base class for the errors of this package."""


class JournalClosedError(StoreError):
    """A write was submitted to a journal that is not open."""
