"""Pooled database connections survive the server closing them (a restart, an idle timeout):
the next session gets a working connection, not an error."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import text

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
