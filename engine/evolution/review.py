"""The review job: decide a canary, watch a fresh promotion, then the tools' lifecycle."""

from __future__ import annotations

from engine.evolution.canary import review_canary
from engine.evolution.lock import tenant_evolution_lock
from engine.evolution.watch import watch_for_degradation
from engine.evolution.window import watch_rolling_window
from engine.runtime import Runtime
from engine.tools.lifecycle import review_tools
from engine.tools.registry import OFFERED
from engine.types import TenantId


async def review(rt: Runtime, tenant_id: TenantId) -> str | None:
    """Decide a canary with enough ratings; roll back a clearly worse fresh promotion, or an
    active version clearly worse than a recent one over its last ratings (and queue the fix);
    then the tools' lifecycle: stale, archived, and retire the ones that keep failing.
    What changed, or None (also when an evolution of the tenant is running)."""
    if not await anything_to_review(rt, tenant_id):
        return None
    async with tenant_evolution_lock(rt, tenant_id) as acquired:
        if not acquired:
            return None
        versions = (
            await review_canary(rt, tenant_id)
            or await watch_for_degradation(rt, tenant_id)
            or await watch_rolling_window(rt, tenant_id)
        )
        tools = await review_tools(rt, tenant_id)
        return "; ".join(x for x in (versions, tools) if x) or None


async def anything_to_review(rt: Runtime, tenant_id: TenantId) -> bool:
    """The canary, the watch and the rolling window each compare two versions, and the
    lifecycle is the tools': an agent with one version and no tools (a young one) has nothing
    to review — one short read instead of four, on the way from a rating to its evolution."""
    async with rt.statement(tenant_id) as repo:
        return await repo.has_versions_or_tools(OFFERED)
