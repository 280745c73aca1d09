"""Recurring sweeps over every tenant. The reconciler re-enqueues work whose job was lost
(Redis restart, killed worker); the periodic sweep queues each active tenant's periodic
evolution. The database is the truth; enqueueing is idempotent (one live job per id)."""

from __future__ import annotations

import logging
from datetime import timedelta

from engine.runtime import Runtime
from engine.storage.cross_tenant import (
    held_answers,
    stuck_executions,
    tenants_due_for_periodic_evolution,
    tenants_with_waiting_feedback,
)
from engine.storage.models import utcnow
from engine.tools.lifecycle import tenants_due

log = logging.getLogger(__name__)


async def reconcile(rt: Runtime) -> dict[str, int]:
    now = utcnow()
    execution_ids = await stuck_executions(
        rt.sessions,
        pending_before=now - timedelta(seconds=rt.settings.pending_grace_s),
        running_before=now - timedelta(seconds=rt.settings.stale_running_s),
    )
    tenants = await tenants_with_waiting_feedback(
        rt.sessions, now - timedelta(seconds=rt.settings.evolve_quiet_s)
    )
    for execution_id in execution_ids:
        await rt.queue.enqueue_execution(execution_id)
    # a held answer's job is live (queued or waiting to retry) unless Redis lost it
    held = await held_answers(rt.sessions, now - timedelta(seconds=rt.settings.pending_grace_s))
    for execution_id in held:
        await rt.queue.enqueue_redelivery(execution_id)
    for tenant_id in tenants:
        await rt.queue.enqueue_evolution(tenant_id)
    # tools gone unused or failing: their review (under the tenant's lock) makes the move
    tool_tenants = await tenants_due(rt, now)
    for tenant_id in tool_tenants:
        await rt.queue.enqueue_review(tenant_id)
    if execution_ids or tenants or tool_tenants:
        log.info("reconciler re-enqueued %d executions, %d evolutions, %d tool reviews",
                 len(execution_ids), len(tenants), len(tool_tenants))
    return {"executions": len(execution_ids), "evolutions": len(tenants)}


PERIODIC = "periodic"


async def queue_periodic_evolutions(rt: Runtime) -> int:
    """Queue a `periodic` evolution for every tenant with answers rated since its last one
    (and no periodic evolution within EVOBOT_PERIODIC_EVOLUTION_S). Returns how many."""
    if rt.settings.periodic_evolution_s <= 0:
        return 0
    due = await tenants_due_for_periodic_evolution(
        rt.sessions, utcnow() - timedelta(seconds=rt.settings.periodic_evolution_s), PERIODIC
    )
    for tenant_id in due:
        await rt.queue.enqueue_evolution(tenant_id, trigger=PERIODIC)
    if due:
        log.info("queued %d periodic evolutions", len(due))
    return len(due)
