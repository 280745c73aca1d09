"""A fake beside each port in engine/ports.py: for tests, and for processes that don't need
the real thing (a runtime without a knowledge store still answers, it just learns nothing
across objectives)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from engine.knowledge.records import (
    CrossDomainPattern,
    KnowledgeHit,
    NewLearning,
    ObjectiveContext,
    RatedObjective,
)
from engine.types import (
    AnswerDelta,
    AnswerReady,
    Delivery,
    ExecutionFailed,
    MessageRef,
    OutboundEvent,
    SandboxResult,
    TenantId,
)

if TYPE_CHECKING:
    from engine.evolution.reflect import Learning
    from engine.ports import (
        InputFiles,
        JobQueue,
        KnowledgeStore,
        Locks,
        Notifier,
        Sandbox,
        ToolMaker,
    )
    from engine.runtime import Runtime


class RecordingNotifier:
    """Keeps every event it is given. Like a chat platform's notifier, it posts an answer as
    a new message (`posted`) — except that an answer being streamed stays in the message its
    first delta posted (state of this process, see `forget_streams`), and an event that
    `replaces` a message edits that one."""

    def __init__(self) -> None:
        self.events: list[OutboundEvent] = []
        self.posted: list[MessageRef] = []
        self._streams: dict[int, MessageRef] = {}  # execution id → its partial message

    async def deliver(self, event: OutboundEvent) -> Delivery:
        self.events.append(event)
        if isinstance(event, AnswerDelta):
            ref = event.replaces or self._streams.get(event.execution_id) or self._post(event)
            self._streams[event.execution_id] = ref
            return Delivery(ref=ref)
        if isinstance(event, AnswerReady):
            streamed = self._streams.pop(event.execution_id, None)
            return Delivery(ref=event.replaces or streamed or self._post(event))
        if isinstance(event, ExecutionFailed):  # said in the partial answer, if there is one
            streamed = self._streams.pop(event.execution_id, None)
            return Delivery(ref=event.replaces or streamed)
        return Delivery()

    def _post(self, event: AnswerDelta | AnswerReady) -> MessageRef:
        ref = MessageRef(channel_id=event.channel_id, message_id=f"posted-{len(self.posted) + 1}",
                         thread_id=event.thread_id)
        self.posted.append(ref)
        return ref

    def forget_streams(self) -> None:
        """The process died: what it knew of the answers it was streaming is gone."""
        self._streams.clear()

    def of_type(self, type_: str) -> list[OutboundEvent]:
        return [e for e in self.events if e.type == type_]


class RecordingQueue:
    """Remembers what would have been enqueued, runs nothing."""

    def __init__(self) -> None:
        self.executions: list[int] = []
        self.evolutions: list[tuple[TenantId, str]] = []
        self.reviews: list[TenantId] = []
        self.redeliveries: list[int] = []

    async def enqueue_execution(self, execution_id: int) -> None:
        self.executions.append(execution_id)

    async def enqueue_executions(self, execution_ids: Sequence[int]) -> None:
        self.executions.extend(execution_ids)

    async def enqueue_evolution(
        self, tenant_id: TenantId, *, delay_s: float = 0.0, trigger: str = "feedback",
        review_first: bool = False,
    ) -> None:
        self.evolutions.append((tenant_id, trigger))
        if review_first:
            self.reviews.append(tenant_id)

    async def enqueue_review(self, tenant_id: TenantId) -> None:
        self.reviews.append(tenant_id)

    async def enqueue_redelivery(self, execution_id: int) -> None:
        self.redeliveries.append(execution_id)

    async def forget_tenant(self, tenant_id: TenantId) -> int:
        self.evolutions = [e for e in self.evolutions if e[0] != tenant_id]
        self.reviews = [r for r in self.reviews if r != tenant_id]
        return 0


class MemoryStamps:
    """Change stamps for a single process (no Redis)."""

    def __init__(self) -> None:
        self._tokens: dict[str, str] = {}

    async def current(self, keys: Sequence[str]) -> list[str]:
        return [self._tokens.setdefault(key, uuid.uuid4().hex) for key in keys]

    async def changed(self, key: str) -> None:
        self._tokens.pop(key, None)


class LocalLocks:
    """Locks for a single process (no Redis): the name's lock, or False after the timeout."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def lock(self, name: str, timeout_s: float) -> AsyncIterator[bool]:
        lock = self._locks.setdefault(name, asyncio.Lock())
        try:
            await asyncio.wait_for(lock.acquire(), timeout_s)
        except TimeoutError:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()


class NoSandbox:
    """Refuses to run anything: tools then report that they are unavailable."""

    name = "none"

    async def run(
        self, code: str, *, inputs: dict[str, Any] | None = None,
        files: InputFiles | None = None, timeout_s: float = 5.0, memory_mb: int = 256,
    ) -> SandboxResult:
        return SandboxResult(error="no sandbox is configured in this process")


class NullKnowledge:
    """A knowledge store that remembers nothing and finds nothing."""

    async def add_learning(self, tenant: str, text: str, **_: Any) -> str:
        return ""

    async def add_learnings(
        self, tenant: str, learnings: Sequence[NewLearning], **_: Any
    ) -> list[str]:
        return ["" for _ in learnings]

    async def record_objective(self, tenant: str, objective: str, **_: Any) -> str:
        return ""

    async def record_objectives(
        self, tenant: str, objectives: Sequence[RatedObjective]
    ) -> list[str]:
        return ["" for _ in objectives]

    async def relevant_learnings(self, tenant: str, query: str, **_: Any) -> list[KnowledgeHit]:
        return []

    async def objective_context(
        self, tenant: str, objective: str, *, k: int = 3, learnings_beyond: float | None = None
    ) -> ObjectiveContext:
        return ObjectiveContext(None, ())

    async def group_similar(
        self, texts: Sequence[str], *, max_distance: float = 0.35
    ) -> list[list[int]]:
        """Only identical texts are similar (no embeddings here)."""
        groups: dict[str, list[int]] = {}
        for index, text in enumerate(texts):
            groups.setdefault(text.strip().lower(), []).append(index)
        return sorted(groups.values(), key=len, reverse=True)

    async def bootstrap_rules(self, tenant: str, **_: Any) -> list[KnowledgeHit]:
        return []

    async def cross_domain_patterns(self, min_domains: int = 3) -> list[CrossDomainPattern]:
        return []

    async def withdraw_shared(self, tenant: str, *, privacy_mode: str) -> int:
        return 0

    async def export_tenant(self, tenant: str) -> dict[str, Any]:
        return {}

    async def delete_tenant(self, tenant: str) -> int:
        return 0


async def no_tool_maker(
    rt: Runtime, tenant_id: TenantId, evolution_id: int, learning: Learning
) -> None:
    """Ignores tool needs (a runtime that makes no tools)."""
    return None


if TYPE_CHECKING:  # mypy checks that every fake satisfies its port
    _notifier: Notifier = RecordingNotifier()
    _queue: JobQueue = RecordingQueue()
    _locks: Locks = LocalLocks()
    _sandbox: Sandbox = NoSandbox()
    _knowledge: KnowledgeStore = NullKnowledge()
    _maker: ToolMaker = no_tool_maker
