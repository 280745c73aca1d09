"""Database engine creation and migrations (Alembic, applied on start)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

from engine.storage.sqlite_driver import OneHopDBAPI

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# a pooled connection back in the pool for less than this is handed out without a ping
PING_AFTER_IDLE_S = 1.0


def create_engine(database_url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL and a busy timeout so worker and web can share it,
    and a small pool: opening a connection (aiosqlite starts a thread for each, then the
    pragmas) cost more than the insert that records a message."""
    if database_url.startswith("sqlite"):
        engine = create_async_engine(
            database_url, connect_args={"timeout": 30}, pool_size=4, max_overflow=8,
            module=OneHopDBAPI(),
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(database_url, pool_size=5, max_overflow=10)
    _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """SQLAlchemy's pool_pre_ping, only for a connection that sat in the pool for a while.

    A server restart or idle timeout ends pooled connections, and a ping at checkout finds
    that before a transaction fails. On asyncpg a ping is three round trips (BEGIN, a
    query, ROLLBACK), which under load costs as much as the transaction it guards. A
    connection returned within PING_AFTER_IDLE_S was working then, and one whose server
    end has gone since is usually known closed already (the event loop saw the socket
    close), so only a connection idle for longer, or known closed, is pinged; a failed ping
    replaces every pooled connection, as pool_pre_ping does (docs/ARCHITECTURE.md, "Limits
    and failure handling")."""

    def returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle = time.monotonic() - record.info.get("returned_at", 0.0)
        if idle < PING_AFTER_IDLE_S and not _known_closed(dbapi_connection):
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise InvalidatePoolError(f"pooled connection failed its ping: {exc}") from exc

    event.listen(engine.sync_engine.pool, "connect", returned)
    event.listen(engine.sync_engine.pool, "checkin", returned)
    event.listen(engine.sync_engine.pool, "checkout", checkout)


def _known_closed(dbapi_connection: Any) -> bool:
    """asyncpg's `is_closed()` (psycopg's `closed`); a driver that tells neither: unknown."""
    driver = dbapi_connection.driver_connection
    is_closed = getattr(driver, "is_closed", None)
    if callable(is_closed):
        return bool(is_closed())
    return bool(getattr(driver, "closed", False))


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def statement_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for work that needs no transaction: one statement that writes (atomic by
    itself), or statements that only read (under PostgreSQL's READ COMMITTED each statement
    reads its own snapshot inside a transaction too). On PostgreSQL they run in autocommit:
    asyncpg sends BEGIN and COMMIT as round trips of their own, two of the three a
    one-statement transaction costs. On SQLite, whose driver begins a transaction only for
    a write and within the statement's own call, they are ordinary sessions
    (docs/ARCHITECTURE.md, "Ingress")."""
    if engine.dialect.name != "postgresql":
        return session_factory(engine)
    return session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


# Alembic keeps module-level state: two threads (embedded workers) migrating at once corrupt it
_MIGRATION_LOCK = threading.Lock()


def _upgrade(connection: Connection) -> None:
    with _MIGRATION_LOCK:
        command.upgrade(_alembic_config(connection), "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)
