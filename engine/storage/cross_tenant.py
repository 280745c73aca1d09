"""The few queries that are not scoped to one tenant: the job plumbing that starts from an
execution id, the ingress's insert of many tenants' objectives at once, the reconciler's
sweep over every tenant, and GDPR export/delete. Everything tenant-scoped goes through
`TenantRepo` instead."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Table, delete, func, inspect, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import ReturningInsert

from engine.storage.models import (
    Agent,
    AgentVersion,
    Base,
    Evolution,
    Execution,
    Feedback,
    Label,
    LabelMove,
    StoredFile,
    Tenant,
    Tool,
    utcnow,
)
from engine.types import ExecutionStatus, TenantId

Sessions = async_sessionmaker[AsyncSession]

# children before parents, so foreign keys never block a delete
TENANT_TABLES: list[type[Base]] = [
    StoredFile, Feedback, Execution, Evolution, Tool, LabelMove, Label, AgentVersion, Agent,
]


async def insert_executions(session: AsyncSession,
                            rows: Sequence[Mapping[str, Any]]) -> list[int | None]:
    """Record pending executions — each row names its tenant — in one statement (the
    ingress's group commit, engine/ingress.py): each row's id, or None when its platform
    message was already recorded (a redelivery, or an earlier row of these)."""
    ids: list[int | None] = [None] * len(rows)
    first: dict[tuple[str, str, str | None], int] = {}  # unique key → its row in `rows`
    alone = []  # no platform message id: nothing to be a duplicate of
    for i, row in enumerate(rows):
        if row.get("message_id") is None:
            alone.append(i)
        else:
            first.setdefault((row["tenant_id"], row["channel_id"], row["message_id"]), i)
    if first:
        inserted = await _insert_new(session, [rows[i] for i in first.values()])
        for key, i in first.items():
            ids[i] = inserted.get(key)
    for i in alone:
        ids[i] = next(iter((await _insert_new(session, [rows[i]])).values()), None)
    return ids


async def _insert_new(session: AsyncSession, rows: Sequence[Mapping[str, Any]]
                      ) -> dict[tuple[str, str, str | None], int]:
    """INSERT … ON CONFLICT DO NOTHING: (tenant, channel, message) → id of each row inserted.
    Core, not the ORM's bulk layer: the ids are all this needs back."""
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    result = await session.execute(_insert_executions_statement(dialect), list(rows))
    return {(tenant, channel, message): id_ for id_, tenant, channel, message in result}


@cache
def _insert_executions_statement(dialect: str) -> ReturningInsert[Any]:
    """Built once: making the construct costs more than SQLite takes to run it."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    table = cast(Table, Execution.__table__)
    return insert(table).on_conflict_do_nothing().returning(
        table.c.id, table.c.tenant_id, table.c.channel_id, table.c.message_id
    )


async def claim_execution(sessions: Sessions, execution_id: int, stale_before: datetime
                          ) -> Execution | None:
    """Pending → running, or take over a run whose worker died: the row as claimed, in the
    same statement. None: nothing to do."""
    async with sessions() as session, session.begin():
        result = await session.execute(
            update(Execution)
            .where(
                Execution.id == execution_id,
                or_(
                    Execution.status == ExecutionStatus.PENDING,
                    (Execution.status == ExecutionStatus.RUNNING)
                    & (Execution.updated_at < stale_before),
                ),
            )
            .values(
                status=ExecutionStatus.RUNNING,
                attempts=Execution.attempts + 1,
                updated_at=utcnow(),
            )
            .returning(Execution)
            # nothing in this new session to keep in step with the update
            .execution_options(synchronize_session=False)
        )
        return result.scalars().first()


async def touch_running_execution(sessions: Sessions, execution_id: int) -> None:
    """The worker's heartbeat: a running row stays fresh while its worker is alive."""
    async with sessions() as session, session.begin():
        await session.execute(
            update(Execution)
            .where(Execution.id == execution_id, Execution.status == ExecutionStatus.RUNNING)
            .values(updated_at=utcnow())
        )


async def fail_unfinished_execution(
    sessions: Sessions, execution_id: int, error: str
) -> Execution | None:
    """Mark an execution failed unless it succeeded; the row, or None if nothing changed."""
    async with sessions() as session, session.begin():
        row = await session.get(Execution, execution_id)
        if row is None or row.status == ExecutionStatus.SUCCEEDED:
            return None
        row.status, row.error = ExecutionStatus.FAILED, error
        return row


async def execution_tenant(sessions: Sessions, execution_id: int) -> TenantId | None:
    async with sessions() as session:
        return await session.scalar(select(Execution.tenant_id).where(Execution.id == execution_id))


async def stuck_executions(
    sessions: Sessions, *, pending_before: datetime, running_before: datetime
) -> list[int]:
    """Executions whose job was lost: pending too long, or running with a dead worker."""
    async with sessions() as session:
        rows = await session.scalars(
            select(Execution.id).where(
                or_(
                    (Execution.status == ExecutionStatus.PENDING)
                    & (Execution.updated_at < pending_before),
                    (Execution.status == ExecutionStatus.RUNNING)
                    & (Execution.updated_at < running_before),
                )
            )
        )
        return list(rows)


async def held_answers(sessions: Sessions, held_before: datetime) -> list[int]:
    """Answers awaiting redelivery since before `held_before` (their job may have been lost)."""
    async with sessions() as session:
        rows = await session.scalars(
            select(Execution.id).where(
                Execution.answer_pending.is_(True), Execution.updated_at < held_before
            ).order_by(Execution.id)
        )
        return list(rows)


async def tenants_with_waiting_feedback(sessions: Sessions, quiet_before: datetime) -> list[str]:
    """Tenants with live feedback no evolution used yet, quiet since `quiet_before`."""
    async with sessions() as session:
        rows = await session.scalars(
            select(Feedback.tenant_id).distinct().where(
                Feedback.used_in_evolution.is_(None),
                Feedback.retracted.is_(False),
                Feedback.updated_at < quiet_before,
            )
        )
        return list(rows)


async def tenants_due_for_periodic_evolution(
    sessions: Sessions, period_start: datetime, trigger: str
) -> list[str]:
    """Tenants with ratings newer than their last `trigger` evolution, whose last one (if
    any) started before `period_start`."""
    last = (
        select(Evolution.tenant_id, func.max(Evolution.created_at).label("at"))
        .where(Evolution.trigger == trigger)
        .group_by(Evolution.tenant_id)
        .subquery()
    )
    query = (
        select(Feedback.tenant_id).distinct()
        .outerjoin(last, last.c.tenant_id == Feedback.tenant_id)
        .where(
            Feedback.retracted.is_(False),
            Feedback.rating.is_not(None),
            or_(last.c.at.is_(None),
                (last.c.at < period_start) & (Feedback.updated_at > last.c.at)),
        )
    )
    async with sessions() as session:
        return list(await session.scalars(query))


async def offered_unpinned_tools(sessions: Sessions, statuses: Sequence[str]) -> list[Tool]:
    """Every tenant's tools the lifecycle may move (the reconciler's sweep)."""
    async with sessions() as session:
        rows = await session.scalars(
            select(Tool).where(Tool.status.in_(statuses), Tool.pinned.is_(False))
        )
        return list(rows)


async def export_tenant_rows(sessions: Sessions, tenant_id: TenantId) -> dict[str, Any]:
    """Every database row of one tenant, as JSON-ready data (raises LookupError if unknown)."""
    tables: dict[str, Any] = {}
    async with sessions() as session:
        tenant = await session.get(Tenant, tenant_id)
        if tenant is None:
            raise LookupError(f"no tenant {tenant_id!r}")
        tables["tenants"] = [_row(tenant)]
        for model in TENANT_TABLES:
            rows = await session.scalars(
                select(model).where(model.tenant_id == tenant_id)  # type: ignore[attr-defined]
            )
            tables[model.__tablename__] = [_row(r) for r in rows]
    return tables


async def delete_tenant_rows(sessions: Sessions, tenant_id: TenantId) -> dict[str, int]:
    """Delete every row of one tenant; returns the count per table."""
    counts: dict[str, int] = {}
    async with sessions() as session, session.begin():
        for model in TENANT_TABLES:
            result = await session.execute(
                delete(model).where(model.tenant_id == tenant_id)  # type: ignore[attr-defined]
            )
            counts[model.__tablename__] = int(result.rowcount or 0)  # type: ignore[attr-defined]
        result = await session.execute(delete(Tenant).where(Tenant.id == tenant_id))
        counts["tenants"] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    return counts


def _row(row: Base) -> dict[str, Any]:
    mapper = inspect(type(row))
    return {column.key: _plain(getattr(row, column.key)) for column in mapper.column_attrs}


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
