"""Queries of the `files` table, scoped to one tenant through its `TenantRepo`."""

from __future__ import annotations

from sqlalchemy import select

from engine.storage.models import Execution, StoredFile
from engine.storage.repo import TenantRepo

IN = "in"
OUT = "out"


async def add_file(repo: TenantRepo, **values: object) -> StoredFile:
    row = StoredFile(tenant_id=repo.tenant_id, **values)
    repo.session.add(row)
    await repo.session.flush()
    return row


async def execution_files(repo: TenantRepo, execution_id: int, direction: str
                          ) -> list[StoredFile]:
    rows = await repo.session.scalars(
        select(StoredFile)
        .where(StoredFile.tenant_id == repo.tenant_id, StoredFile.execution_id == execution_id,
               StoredFile.direction == direction)
        .order_by(StoredFile.id)
    )
    return list(rows)


async def thread_files(repo: TenantRepo, execution: Execution) -> list[StoredFile]:
    """The files shared in the execution's message and earlier in its thread, oldest first
    (a follow-up such as "now chart it" works on the file shared with the first question)."""
    same_thread = select(Execution.id).where(
        Execution.tenant_id == repo.tenant_id, Execution.channel_id == execution.channel_id,
        Execution.thread_id == execution.thread_id, Execution.id <= execution.id,
    )
    where = (StoredFile.execution_id.in_(same_thread) if execution.thread_id
             else StoredFile.execution_id == execution.id)
    rows = await repo.session.scalars(
        select(StoredFile)
        .where(StoredFile.tenant_id == repo.tenant_id, StoredFile.direction == IN, where)
        .order_by(StoredFile.id)
    )
    return list(rows)


async def tenant_file(repo: TenantRepo, file_id: int) -> StoredFile | None:
    return await repo.session.scalar(
        select(StoredFile).where(StoredFile.tenant_id == repo.tenant_id,
                                 StoredFile.id == file_id)
    )


async def tenant_files(repo: TenantRepo) -> list[StoredFile]:
    rows = await repo.session.scalars(
        select(StoredFile).where(StoredFile.tenant_id == repo.tenant_id)
        .order_by(StoredFile.id)
    )
    return list(rows)
