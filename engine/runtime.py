"""Everything an engine operation needs, built once per process/event loop by `bot/wiring.py`.
Each collaborator is one of the ports in engine/ports.py (docs/ARCHITECTURE.md, "Ports")."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from engine.llm.gateway import LLMGateway
from engine.ports import JobQueue, KnowledgeStore, Locks, Notifier, Sandbox, Stamps, ToolMaker
from engine.settings import EngineSettings
from engine.storage.repo import TenantRepo
from engine.types import TenantId

log = logging.getLogger(__name__)


def serving_key(tenant_id: TenantId) -> str:
    """The stamp of a tenant's labels and home channel (engine/ingress.py caches them)."""
    return f"evobot:serving:{tenant_id}"


@dataclass
class Runtime:
    settings: EngineSettings
    database: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    statements: async_sessionmaker[AsyncSession]  # work needing no transaction (storage/db.py)
    gateway: LLMGateway
    notifier: Notifier
    queue: JobQueue
    locks: Locks
    sandbox: Sandbox
    knowledge: KnowledgeStore
    tool_maker: ToolMaker
    stamps: Stamps

    @asynccontextmanager
    async def repo(self, tenant_id: TenantId) -> AsyncIterator[TenantRepo]:
        """A tenant-scoped repository in one transaction (committed on success). When the
        transaction moved a label (or the home channel), every process's cached copy is
        marked stale once it is committed."""
        async with self._scoped(self.sessions, tenant_id) as repo:
            yield repo

    @asynccontextmanager
    async def statement(self, tenant_id: TenantId) -> AsyncIterator[TenantRepo]:
        """A tenant-scoped repository for work that needs no transaction: one statement that
        writes, or statements that only read (on PostgreSQL, without a transaction's round
        trips: engine/storage/db.py). Each statement commits by itself, so writes that must
        land together need `repo`."""
        async with self._scoped(self.statements, tenant_id) as repo:
            yield repo

    @asynccontextmanager
    async def _scoped(self, sessions: async_sessionmaker[AsyncSession],
                      tenant_id: TenantId) -> AsyncIterator[TenantRepo]:
        async with sessions() as session, session.begin():
            repo = TenantRepo(session, tenant_id)
            yield repo
        if repo.serving_changed:
            await self.serving_changed(tenant_id)

    async def serving_changed(self, tenant_id: TenantId) -> None:
        """Tell every process its cached labels of this tenant are stale. Committed already,
        so a Redis failure is only logged (the caches expire on their own:
        engine/ingress.py)."""
        try:
            await self.stamps.changed(serving_key(tenant_id))
        except Exception:
            log.warning("could not mark %s's labels changed", tenant_id, exc_info=True)

    async def close(self) -> None:
        """Release the loop-bound resources this runtime owns: the model calls' background
        logging and the database pool."""
        await self.gateway.aclose()
        await self.database.dispose()
