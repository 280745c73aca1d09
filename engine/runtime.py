"""Everything an engine operation needs, built once per process/event loop by `bot`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.llm.gateway import LLMGateway
from engine.ports import JobQueue, Notifier
from engine.settings import EngineSettings
from engine.storage.repo import TenantRepo
from engine.types import TenantId


class Locks(Protocol):
    def lock(self, name: str, timeout_s: float) -> AbstractAsyncContextManager[bool]: ...


@dataclass
class Runtime:
    settings: EngineSettings
    sessions: async_sessionmaker[AsyncSession]
    gateway: LLMGateway
    notifier: Notifier
    queue: JobQueue
    locks: Locks
    sandbox: Any = None  # engine.sandbox.Sandbox when tools are enabled
    knowledge: Any = None  # engine.knowledge.KnowledgeStore when configured
    extras: dict[str, Any] = field(default_factory=dict)

    @asynccontextmanager
    async def repo(self, tenant_id: TenantId) -> AsyncIterator[TenantRepo]:
        """A tenant-scoped repository in one transaction (committed on success)."""
        async with self.sessions() as session, session.begin():
            yield TenantRepo(session, tenant_id)
