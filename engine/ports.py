"""The ports the engine drives; adapters and the composition root implement them."""

from __future__ import annotations

from typing import Protocol

from engine.types import Delivery, OutboundEvent, TenantId


class Notifier(Protocol):
    """Posts engine events to the platform a tenant lives on."""

    async def deliver(self, event: OutboundEvent) -> Delivery: ...


class JobQueue(Protocol):
    """Background work. Arguments are ids only; the database is the source of truth."""

    async def enqueue_execution(self, execution_id: int) -> None: ...

    async def enqueue_evolution(
        self, tenant_id: TenantId, *, delay_s: float = 0.0, trigger: str = "feedback"
    ) -> None: ...

    async def enqueue_review(self, tenant_id: TenantId) -> None: ...

    async def forget_tenant(self, tenant_id: TenantId) -> int:
        """Drop the tenant's queued jobs and keys; returns how many keys went."""
        ...
