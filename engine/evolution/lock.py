"""One evolution or review per tenant at a time, across every worker process."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from engine.runtime import Runtime
from engine.types import TenantId

LOCK_TIMEOUT_S = 900.0


def tenant_evolution_lock(rt: Runtime, tenant_id: TenantId) -> AbstractAsyncContextManager[bool]:
    """Yields False when another evolution or review of the tenant holds it past the timeout."""
    return rt.locks.lock(f"evobot:evolve:{tenant_id}", LOCK_TIMEOUT_S)
