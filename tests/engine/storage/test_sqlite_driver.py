"""The SQLite driver: SQLAlchemy's results, errors and transactions, with one round trip to
aiosqlite's thread per statement."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from engine.storage.db import create_engine, migrate, session_factory
from engine.storage.models import Execution


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'evobot.db'}")
    await migrate(engine)
    yield engine
    await engine.dispose()


def _row(message_id: str | None, **more: Any) -> dict[str, Any]:
    return {"tenant_id": "local:t", "channel_id": "c", "user_id": "u", "objective": "o",
            "version": 1, "message_id": message_id, **more}


@pytest.fixture
def thread_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every function sent to an aiosqlite connection's thread from now on."""
    calls: list[str] = []
    sent = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await sent(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return calls


async def test_rows_counts_and_ids_come_back_as_from_sqlalchemys_driver(
        engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        first = await connection.execute(insert(Execution).values(**_row("m1")))
        assert first.inserted_primary_key == (first.lastrowid,)
        await connection.execute(insert(Execution), [_row("m2"), _row("m3")])  # executemany
        changed = await connection.execute(
            update(Execution).where(Execution.message_id != "m1").values(objective="changed"))
        assert changed.rowcount == 2
        rows = (await connection.execute(
            select(Execution.message_id, Execution.objective).order_by(Execution.id))).all()
        assert rows == [("m1", "o"), ("m2", "changed"), ("m3", "changed")]
        many = await connection.execute(select(Execution.id).order_by(Execution.id))
        assert many.keys() == ["id"]
        assert many.fetchone() == (first.lastrowid,)
        assert len(many.fetchall()) == 2  # the rest, still there after the cursor closed
        nothing = await connection.execute(select(Execution.id).where(Execution.id < 0))
        assert nothing.all() == []


async def test_an_orm_session_reads_and_writes_through_it(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        session.add(Execution(**_row("m1")))
    async with sessions() as session, session.begin():
        row = await session.scalar(select(Execution).where(Execution.message_id == "m1"))
        assert row is not None
        row.objective = "edited"  # the ORM checks the UPDATE's row count
    async with sessions() as session:
        assert await session.scalar(select(Execution.objective)) == "edited"


async def test_a_failed_statement_raises_sqlalchemys_error_and_rolls_back(
        engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(Execution).values(**_row("m1")))
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(insert(Execution).values(**_row("m2")))
            await connection.execute(insert(Execution).values(**_row("m1")))  # same message
    async with engine.connect() as connection:
        kept = (await connection.execute(select(Execution.message_id))).scalars().all()
        assert kept == ["m1"]  # m2 went with its transaction
        with pytest.raises(Exception, match="no such table"):
            await connection.execute(text("SELECT * FROM nowhere"))
        assert (await connection.execute(text("SELECT 1"))).scalar() == 1  # still usable


async def test_each_statement_is_one_round_trip_to_aiosqlites_thread(
        engine: AsyncEngine, thread_calls: list[str]) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("SELECT 1"))  # the pool's connection is open now
        thread_calls.clear()
        await connection.execute(insert(Execution).values(**_row("m1")))
        await connection.execute(select(Execution).where(Execution.message_id == "m1"))
        await connection.execute(update(Execution).values(objective="changed"))
        assert len(thread_calls) == 3


async def _sessions_with_a_row(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose pool holds an open connection, and a row written through them."""
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        session.add(Execution(**_row("m0")))
    return sessions


async def test_a_committed_connection_goes_back_to_the_pool_without_a_rollback(
        engine: AsyncEngine, thread_calls: list[str]) -> None:
    sessions = await _sessions_with_a_row(engine)
    thread_calls.clear()
    async with sessions() as session, session.begin():
        session.add(Execution(**_row("m1")))
    assert thread_calls == ["_run", "commit"]  # the statement and its commit, nothing more


async def test_a_session_that_only_read_commits_without_a_round_trip(
        engine: AsyncEngine, thread_calls: list[str]) -> None:
    sessions = await _sessions_with_a_row(engine)
    thread_calls.clear()
    async with sessions() as session, session.begin():
        found = await session.scalar(select(Execution.objective))
    assert found == "o"
    assert thread_calls == ["_run"]  # the statement alone: SQLite had nothing to commit


async def test_a_connection_handed_back_mid_transaction_is_still_rolled_back(
        engine: AsyncEngine) -> None:
    # what the pool's rollback is for: a transaction nobody finished (raw DBAPI use) is
    # undone before the connection serves anyone else
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE scratch (x INTEGER)"))
    async with engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        await raw.execute("INSERT INTO scratch VALUES (1)")  # SQLite begins a transaction
        assert raw._connection.in_transaction
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT x FROM scratch"))).all() == []
