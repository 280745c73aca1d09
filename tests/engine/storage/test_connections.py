"""Pooled database connections survive the server closing them (a restart, an idle timeout):
the next session gets a working connection, not an error."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from engine.storage import db
from engine.storage.db import create_engine
from tests.conftest import PG_ADMIN_URL, Stack


async def test_a_connection_the_server_closed_is_replaced_at_checkout(stack: Stack) -> None:
    engine = create_engine(stack.config.resolved_database_url)
    try:
        async with engine.connect() as connection:
            before = await connection.scalar(text("SELECT 1"))
        assert before == 1
        if stack.name == "services":  # every connection of this database, pooled ones too
            admin = await asyncpg.connect(PG_ADMIN_URL)
            try:
                ended = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = $1", engine.url.database)
            finally:
                await admin.close()
            assert ended >= 1
            await asyncio.sleep(0.1)  # the pooled connection's end reaches this event loop
        async with engine.connect() as connection:
            after = await connection.scalar(text("SELECT 2"))
        assert after == 2
    finally:
        await engine.dispose()


def _queries_sent(connection: AsyncConnection) -> list[str]:
    """The statements the pooled asyncpg connection sends from now on, as its query logger
    sees them (the transaction's BEGIN and ROLLBACK, a ping's ";"; not prepared ones)."""
    sent: list[str] = []
    driver = connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    driver.add_query_logger(lambda record: sent.append(record.query))
    return sent


@pytest.fixture
async def pinging_engine(postgres_url: str,
                         monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AsyncEngine]:
    """An engine on PostgreSQL that pings a connection idle for 0.2 s or more."""
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.2)
    engine = create_engine(postgres_url)
    yield engine
    await engine.dispose()


async def test_a_connection_back_from_a_moment_ago_goes_out_without_a_ping(
        pinging_engine: AsyncEngine) -> None:
    async with pinging_engine.connect() as connection:
        sent = _queries_sent(connection)
    async with pinging_engine.connect() as connection:  # busy a moment ago: no ping
        await connection.scalar(text("SELECT 2"))
    assert sent == ["BEGIN;", "ROLLBACK;"]
    await asyncio.sleep(0.3)
    async with pinging_engine.connect() as connection:  # idle for a while: pinged first
        await connection.scalar(text("SELECT 3"))
    assert sent[2:] == ["BEGIN;", ";", "ROLLBACK;", "BEGIN;", "ROLLBACK;"]


def _end_connections_unseen(database: str) -> int:
    """Ends every connection of `database` from another thread while this event loop is
    blocked, so the loop has not seen the sockets close when the next checkout comes."""
    ended: list[int] = []

    async def end() -> None:
        admin = await asyncpg.connect(PG_ADMIN_URL)
        try:
            ended.append(await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1", database))
        finally:
            await admin.close()

    thread = threading.Thread(target=asyncio.run, args=(end(),))
    thread.start()
    thread.join()
    time.sleep(0.3)  # the server has closed them by now; this loop has not run since
    return ended[0]


async def test_an_idle_connection_whose_end_went_unseen_is_replaced_at_checkout(
        pinging_engine: AsyncEngine) -> None:
    async with pinging_engine.connect() as connection:
        await connection.scalar(text("SELECT 1"))
    assert _end_connections_unseen(pinging_engine.url.database or "") >= 1
    async with pinging_engine.connect() as connection:
        assert await connection.scalar(text("SELECT 2")) == 2
