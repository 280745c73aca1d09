"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from engine.storage.db import create_engine, migrate
from engine.storage.models import Base
from tests.conftest import Stack

# slack_sdk creates its own OAuth tables; they are not the models' business
OWN_TABLES = {table.name for table in Base.metadata.sorted_tables}


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    diffs = compare_metadata(context, Base.metadata)
    return [d for d in diffs if not (isinstance(d, tuple) and d[0] == "remove_table")]


async def test_migrated_schema_matches_the_models(stack: Stack) -> None:
    engine = create_engine(stack.config.resolved_database_url)
    try:
        await migrate(engine)
        async with engine.connect() as connection:
            diffs = await connection.run_sync(_differences)
    finally:
        await engine.dispose()
    assert diffs == []
