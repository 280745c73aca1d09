"""Everything the engine relies on from outside, as typed Protocols.

The composition root (`bot/wiring.py`) builds one implementation of each into a `Runtime`;
`engine/fakes.py` holds a fake of each for tests and for processes that don't need the real
thing. See docs/ARCHITECTURE.md, "Ports".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from engine.knowledge.records import (
    CrossDomainPattern,
    KnowledgeHit,
    NewLearning,
    ObjectiveContext,
    RatedObjective,
)
from engine.types import Delivery, OutboundEvent, SandboxResult, TenantId

if TYPE_CHECKING:
    from engine.evolution.reflect import Learning
    from engine.runtime import Runtime


class Notifier(Protocol):
    """Posts engine events to the platform a tenant lives on."""

    async def deliver(self, event: OutboundEvent) -> Delivery: ...


class JobQueue(Protocol):
    """Background work. Arguments are ids only; the database is the source of truth."""

    async def enqueue_execution(self, execution_id: int) -> None: ...

    async def enqueue_executions(self, execution_ids: Sequence[int]) -> None:
        """Just-recorded executions, in one round trip (no job can exist for them yet)."""
        ...

    async def enqueue_evolution(
        self, tenant_id: TenantId, *, delay_s: float = 0.0, trigger: str = "feedback",
        review_first: bool = False,
    ) -> None:
        """One waiting evolution per tenant; `review_first`: the tenant's review (canary,
        watch, tools) runs just before it, as `enqueue_review` would have."""
        ...

    async def enqueue_review(self, tenant_id: TenantId) -> None: ...

    async def enqueue_redelivery(self, execution_id: int) -> None:
        """Post a stored answer the platform refused, retried for minutes until it takes it."""
        ...

    async def forget_tenant(self, tenant_id: TenantId) -> int:
        """Drop the tenant's queued jobs and keys; returns how many keys went."""
        ...


class Locks(Protocol):
    """Named locks shared by every worker process (one evolution per tenant at a time)."""

    def lock(self, name: str, timeout_s: float) -> AbstractAsyncContextManager[bool]: ...


class Stamps(Protocol):
    """Change stamps shared by every process: a key's token changes whenever what it stands
    for changes (`changed`, after the commit), so a process may cache that thing for as long
    as the token it read before loading it is still current."""

    async def current(self, keys: Sequence[str]) -> list[str]: ...

    async def changed(self, key: str) -> None: ...


# Files handed to a sandbox run: a plain file name -> its content, or a host file to copy.
InputFiles = Mapping[str, bytes | Path]


class Sandbox(Protocol):
    """Runs untrusted Python. The convention every implementation follows is described in
    `engine/sandbox/limits.py`."""

    name: str

    async def run(
        self,
        code: str,
        *,
        inputs: dict[str, Any] | None = None,
        files: InputFiles | None = None,
        timeout_s: float = 5.0,
        memory_mb: int = 256,
    ) -> SandboxResult: ...


class KnowledgeStore(Protocol):
    """Learnings, tool recipes and past objectives, private per tenant and shared (anonymized)
    by privacy mode. Implemented on chromadb by `engine/knowledge/store.py`."""

    async def add_learning(
        self, tenant: str, text: str, *, domain: str = "general", type: str = "prompt_rule",
        confidence: float = 0.5, impact: float = 0.5, privacy_mode: str = "isolated",
    ) -> str: ...

    async def add_learnings(
        self, tenant: str, learnings: Sequence[NewLearning], *, privacy_mode: str = "isolated",
    ) -> list[str]: ...

    async def record_objective(
        self, tenant: str, objective: str, *, outcome_rating: int, lesson: str = "",
        domain: str = "general",
    ) -> str: ...

    async def record_objectives(
        self, tenant: str, objectives: Sequence[RatedObjective]
    ) -> list[str]: ...

    async def relevant_learnings(
        self, tenant: str, query: str, *, privacy_mode: str = "isolated", k: int = 5
    ) -> list[KnowledgeHit]: ...

    async def objective_context(
        self, tenant: str, objective: str, *, k: int = 3, learnings_beyond: float | None = None
    ) -> ObjectiveContext: ...

    async def group_similar(
        self, texts: Sequence[str], *, max_distance: float = 0.35
    ) -> list[list[int]]: ...

    async def bootstrap_rules(
        self, tenant: str, *, privacy_mode: str, k: int = 5
    ) -> list[KnowledgeHit]: ...

    async def cross_domain_patterns(self, min_domains: int = 3) -> list[CrossDomainPattern]: ...

    async def withdraw_shared(self, tenant: str, *, privacy_mode: str) -> int: ...

    async def export_tenant(self, tenant: str) -> dict[str, Any]: ...

    async def delete_tenant(self, tenant: str) -> int: ...


class ToolMaker(Protocol):
    """Turns a `tool_need` / `tool_removal` learning into a tested tool (or a retirement)."""

    async def __call__(
        self, rt: Runtime, tenant_id: TenantId, evolution_id: int, learning: Learning
    ) -> object: ...
