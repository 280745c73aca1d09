"""Everything an engine operation needs, built once per process/event loop by `bot/wiring.py`.
Each collaborator is one of the ports in engine/ports.py (docs/ARCHITECTURE.md, "Ports")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from engine.llm.gateway import LLMGateway
from engine.ports import JobQueue, KnowledgeStore, Locks, Notifier, Sandbox, ToolMaker
from engine.settings import EngineSettings
from engine.storage.repo import TenantRepo
from engine.types import TenantId


@dataclass
class Runtime:
    settings: EngineSettings
    database: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    gateway: LLMGateway
    notifier: Notifier
    queue: JobQueue
    locks: Locks
    sandbox: Sandbox
    knowledge: KnowledgeStore
    tool_maker: ToolMaker

    @asynccontextmanager
    async def repo(self, tenant_id: TenantId) -> AsyncIterator[TenantRepo]:
        """A tenant-scoped repository in one transaction (committed on success)."""
        async with self.sessions() as session, session.begin():
            yield TenantRepo(session, tenant_id)

    async def close(self) -> None:
        """Release the database pool (the loop-bound resources this runtime owns)."""
        await self.database.dispose()
