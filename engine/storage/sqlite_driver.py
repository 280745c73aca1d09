"""SQLAlchemy's aiosqlite driver, one thread hop per statement.

aiosqlite runs each SQLite call in its connection's thread, and every call is a round trip
between that thread and the event loop (about 0.1 ms here, more when the CPU is busy).
SQLAlchemy's adapter makes four of them for a SELECT — open a cursor, execute, fetch,
close — and three for an INSERT or UPDATE, while SQLite itself answers our statements in
microseconds. This cursor does all of it in one call in aiosqlite's thread and keeps what
SQLAlchemy reads afterwards (the rows, the description, the row count, the last row id); and
the rollback the pool makes as it takes a connection back, and the commit of a session that
only read, are skipped when SQLite has no transaction open. It is SQLAlchemy's aiosqlite
dialect otherwise: same SQL, same errors, same transactions (docs/ARCHITECTURE.md,
"Ingress").
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)


class _Ran:
    """What a statement left behind, read as SQLAlchemy reads a DBAPI cursor."""

    arraysize = 1

    def __init__(self, description: Any = None, rowcount: int = -1,
                 lastrowid: int | None = None) -> None:
        self.description = description
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    def close(self) -> None:
        pass  # the SQLite cursor was closed in aiosqlite's thread already


def _run(connection: sqlite3.Connection, operation: str, parameters: Any,
         many: bool) -> tuple[_Ran, list[Any] | None]:
    """In aiosqlite's thread: the statement, its rows (None: it returns none) and the
    cursor's facts; the cursor is closed before returning."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else None
        return _Ran(cursor.description, cursor.rowcount, cursor.lastrowid), rows
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()
    _awaitable_cursor_close = False  # nothing left open to close with a round trip

    def _make_new_cursor(self, connection: Any) -> Any:
        return _Ran()

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._in_thread(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> None:
        await self._in_thread(operation, seq_of_parameters, many=True)

    async def _in_thread(self, operation: Any, parameters: Any, *, many: bool) -> None:
        driver = cast(aiosqlite.Connection, self._connection)
        async with self._adapt_connection._execute_mutex:
            # aiosqlite's own queue of calls for its thread (SQLAlchemy's adapter uses it
            # the same way to set the isolation level)
            ran, rows = await driver._execute(_run, driver._conn, operation, parameters, many)
        self._cursor = ran
        if rows is not None:
            self._rows = collections.deque(rows)

    def nextset(self) -> None:
        return None  # SQLite has one result set per statement


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor

    def commit(self) -> None:
        # A session that only read commits too: SQLite opened no transaction for it (the
        # driver begins one for a write), so there is nothing to commit and the round trip
        # is skipped.
        if not self._in_transaction():
            return
        super().commit()

    def rollback(self) -> None:
        # The pool rolls back every connection handed back to it, most of them just
        # committed: when SQLite has no transaction open there is nothing to undo, and the
        # round trip is skipped.
        if not self._in_transaction():
            return
        super().rollback()

    def _in_transaction(self) -> bool:
        """Read from the event loop: no statement runs on this connection meanwhile
        (SQLAlchemy uses a connection from one task at a time). Unknown (not open yet):
        True, so the call goes through."""
        driver = cast(aiosqlite.Connection, self._connection)
        return driver._connection is None or driver._connection.in_transaction


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module `create_async_engine(module=…)` takes for sqlite+aiosqlite URLs."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        # SQLAlchemy's connect opens the aiosqlite connection (its thread, the daemon flag);
        # only its adapter is swapped for ours (once per pooled connection)
        adapted = super().connect(*arg, **kw)
        return OneHopConnection(self, adapted._connection)
