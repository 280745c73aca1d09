"""Telling an outage from a bug: the database can't be reached or can't write right now
(connection refused or lost, pool exhausted, disk full, locked). Such a request may succeed
later, so the web answers 503 (the platforms retry; nothing was recorded) and jobs retry —
never a 500. See docs/ARCHITECTURE.md, "Limits and failure handling"."""

from __future__ import annotations

import errno

from sqlalchemy import exc as sa

# SQLite reports a full disk, a locked file and I/O errors as OperationalError, like a typo
# in SQL ("no such table"): only these messages mean "try again later"
_SQLITE_TRANSIENT = ("database or disk is full", "database is locked", "disk i/o error",
                     "unable to open database file")


def storage_unavailable(exc: BaseException) -> bool:
    """True for an error (or one it was raised from) that means the database is out of
    reach or out of space, not that the request is wrong."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _transient(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, sa.TimeoutError):  # the connection pool: every connection is stuck
        return True
    if isinstance(exc, sa.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.OperationalError | sa.InterfaceError):
        message = str(exc.orig).lower()
        return "sqlite" not in type(exc.orig).__module__ or message.startswith(_SQLITE_TRANSIENT)
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC
