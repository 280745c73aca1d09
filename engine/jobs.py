"""RQ jobs on Redis: queues `executions` and `evolution`, ids-only arguments.

RQ calls plain functions; each one runs its coroutine on this thread's long-lived event loop
with this thread's Runtime (built once by the factory the composition root installs), so
database pools and HTTP sessions are reused across jobs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, TypeVar

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from rq import Queue, Retry, get_current_job
from rq.job import Job, JobStatus
from sqlalchemy import or_, select

from engine.evolution import evolve, review
from engine.execute import execute, mark_failed
from engine.runtime import Runtime
from engine.storage.models import Execution, Feedback, utcnow
from engine.tools.lifecycle import tenants_due
from engine.types import TenantId

log = logging.getLogger(__name__)
T = TypeVar("T")

EXECUTIONS = "executions"
EVOLUTION = "evolution"

RuntimeFactory = Callable[[], Awaitable[Runtime]]
_factory: RuntimeFactory | None = None
_local = threading.local()


def install_runtime_factory(factory: RuntimeFactory) -> None:
    """Called by the composition root in every process that runs jobs."""
    global _factory
    _factory = factory


def _loop() -> asyncio.AbstractEventLoop:
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
    return loop


def run_in_job_loop(make: Callable[[Runtime], Coroutine[Any, Any, T]]) -> T:
    loop = _loop()

    async def with_runtime() -> T:
        runtime = getattr(_local, "runtime", None)
        if runtime is None:
            if _factory is None:
                raise RuntimeError("no runtime factory installed in this worker process")
            runtime = await _factory()
            _local.runtime = runtime
        return await make(runtime)

    return loop.run_until_complete(with_runtime())


def _final_attempt() -> bool:
    job = get_current_job()
    return job is None or not job.retries_left


# --- job functions (what RQ imports by name) ---------------------------------------


def execute_job(execution_id: int) -> str:
    final = _final_attempt()

    async def run(rt: Runtime) -> str:
        try:
            return await execute(rt, execution_id, final_attempt=final)
        except Exception as exc:
            if final:
                await mark_failed(rt, execution_id, f"{type(exc).__name__}: {exc}")
            raise

    return run_in_job_loop(run)


def evolve_job(tenant_id: TenantId, trigger: str = "feedback") -> str:
    async def run(rt: Runtime) -> str:
        outcome = await evolve(rt, tenant_id, trigger=trigger)
        return f"{outcome.decision.value}: {outcome.reason}"

    return run_in_job_loop(run)


def review_job(tenant_id: TenantId) -> str:
    return run_in_job_loop(lambda rt: _review(rt, tenant_id))


async def _review(rt: Runtime, tenant_id: TenantId) -> str:
    return await review(rt, tenant_id) or "no change"


def reconcile_job() -> dict[str, int]:
    return run_in_job_loop(reconcile)


# --- the queue port ------------------------------------------------------------------


class RQJobQueue:
    """JobQueue on RQ. Enqueueing is a quick Redis call; it runs in a thread to stay async."""

    def __init__(self, redis: Redis, retry_intervals: list[int], job_timeout_s: int = 900) -> None:
        self.redis = redis
        self.executions = Queue(EXECUTIONS, connection=redis)
        self.evolution = Queue(EVOLUTION, connection=redis)
        self.retry_intervals = retry_intervals
        self.job_timeout_s = job_timeout_s

    def _retry(self) -> Retry | None:
        if not self.retry_intervals:
            return None
        return Retry(max=len(self.retry_intervals), interval=self.retry_intervals)

    def _enqueue_unique(self, queue: Queue, job_id: str, func: Callable[..., Any], *args: Any,
                        delay_s: float = 0.0) -> None:
        """One live job per id: an execution or a tenant's evolution is queued at most once."""
        try:
            existing = Job.fetch(job_id, connection=self.redis)
            if existing.get_status(refresh=True) in (
                JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED,
            ):
                return
        except Exception:
            pass  # no such job (or an expired one): enqueue afresh
        options: dict[str, Any] = {
            "job_id": job_id, "retry": self._retry(), "job_timeout": self.job_timeout_s,
            "result_ttl": 3600, "failure_ttl": 86400,
        }
        if delay_s > 0:
            queue.enqueue_in(timedelta(seconds=delay_s), func, *args, **options)
        else:
            queue.enqueue(func, *args, **options)

    async def enqueue_execution(self, execution_id: int) -> None:
        await asyncio.to_thread(
            self._enqueue_unique, self.executions, f"execute-{execution_id}", execute_job,
            execution_id,
        )

    async def enqueue_evolution(
        self, tenant_id: TenantId, *, delay_s: float = 0.0, trigger: str = "feedback"
    ) -> None:
        await asyncio.to_thread(
            self._enqueue_unique, self.evolution, f"evolve-{_job_key(tenant_id)}", evolve_job,
            tenant_id, trigger, delay_s=delay_s,
        )

    async def enqueue_review(self, tenant_id: TenantId) -> None:
        await asyncio.to_thread(
            self._enqueue_unique, self.evolution, f"review-{_job_key(tenant_id)}", review_job,
            tenant_id,
        )


    async def forget_tenant(self, tenant_id: TenantId) -> int:
        return await asyncio.to_thread(self._forget_tenant, tenant_id)

    def _forget_tenant(self, tenant_id: TenantId) -> int:
        """Cancel the tenant's jobs, then delete every key that names the tenant."""
        key = _job_key(tenant_id)
        for job_id in (f"evolve-{key}", f"review-{key}"):
            for queue in (self.executions, self.evolution):
                queue.remove(job_id)
            self.redis.delete(f"rq:job:{job_id}", f"rq:results:{job_id}")
        names: set[bytes] = set()
        # anchored at the end or followed by ":" so "slack:T1" never matches "slack:T12"
        for pattern in (f"*{tenant_id}", f"*{tenant_id}:*", f"*{key}"):
            names.update(self.redis.scan_iter(match=pattern, count=1000))
        if names:
            self.redis.delete(*names)
        return len(names)


def _job_key(tenant_id: TenantId) -> str:
    return tenant_id.replace(":", "_")


class RedisLocks:
    """Per-tenant evolution lock on Redis, so any number of workers stay serialized."""

    def __init__(self, redis: AsyncRedis) -> None:
        self.redis = redis

    @asynccontextmanager
    async def lock(self, name: str, timeout_s: float) -> AsyncIterator[bool]:
        lock = self.redis.lock(name, timeout=timeout_s, blocking_timeout=timeout_s)
        acquired = bool(await lock.acquire())
        try:
            yield acquired
        finally:
            if acquired:
                try:
                    await lock.release()
                except Exception:
                    log.warning("lock %s expired before release", name)


# --- reconciler --------------------------------------------------------------------------


async def reconcile(rt: Runtime) -> dict[str, int]:
    """Re-enqueue work whose job was lost (Redis restart, killed worker): the DB is the truth."""
    now = utcnow()
    pending_before = now - timedelta(seconds=rt.settings.pending_grace_s)
    stale_before = now - timedelta(seconds=rt.settings.stale_running_s)
    quiet_before = now - timedelta(seconds=rt.settings.evolve_quiet_s)
    async with rt.sessions() as session:
        execution_ids = list(
            await session.scalars(
                select(Execution.id).where(
                    or_(
                        (Execution.status == "pending") & (Execution.updated_at < pending_before),
                        (Execution.status == "running") & (Execution.updated_at < stale_before),
                    )
                )
            )
        )
        tenants = list(
            await session.scalars(
                select(Feedback.tenant_id).distinct().where(
                    Feedback.used_in_evolution.is_(None),
                    Feedback.retracted.is_(False),
                    Feedback.updated_at < quiet_before,
                )
            )
        )
    for execution_id in execution_ids:
        await rt.queue.enqueue_execution(execution_id)
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


def close_thread_runtime() -> None:
    """Dispose this thread's runtime and loop (tests and embedded workers on exit)."""
    loop = getattr(_local, "loop", None)
    runtime = getattr(_local, "runtime", None)
    if loop is not None and runtime is not None:
        loop.run_until_complete(runtime.close())
    if loop is not None:
        # litellm leaves a logging task on every loop it ran on: cancel before closing
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
    _local.loop = None
    _local.runtime = None
