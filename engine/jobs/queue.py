"""The JobQueue port on RQ: queues `executions` and `evolution`, one live job per id,
`rq.Retry` with backoff. RQ's client is synchronous, so most enqueueing runs in a thread; the
hot path, fresh executions from ingress, has RQ write its commands into a pipeline that is
never executed, and the async client sends them: the event loop hands nothing to a thread
(docs/ARCHITECTURE.md, "Ingress")."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.utils import as_text

from engine.jobs.functions import evolve_job, execute_job, redeliver_job, review_job
from engine.types import TenantId

EXECUTIONS = "executions"
EVOLUTION = "evolution"
_WAITING = {JobStatus.QUEUED.value, JobStatus.SCHEDULED.value, JobStatus.DEFERRED.value}


class RQJobQueue:
    def __init__(self, redis: Redis, aio: AsyncRedis, retry_intervals: list[int],
                 job_timeout_s: int = 900, redeliver_after_s: list[int] | None = None) -> None:
        self.redis = redis
        self.aio = aio  # the same server, through this event loop's async client
        self.executions = Queue(EXECUTIONS, connection=redis)
        self.evolution = Queue(EVOLUTION, connection=redis)
        self.retry_intervals = retry_intervals
        self.job_timeout_s = job_timeout_s
        self.redeliver_after_s = redeliver_after_s or [5, 15, 30, 60, 120, 300]

    def _retry(self, intervals: list[int] | None = None) -> Retry | None:
        intervals = self.retry_intervals if intervals is None else intervals
        if not intervals:
            return None
        return Retry(max=len(intervals), interval=intervals)

    def _enqueue_unique(self, queue: Queue, job_id: str, func: Callable[..., Any], *args: Any,
                        delay_s: float = 0.0, retry: Retry | None = None,
                        kwargs: dict[str, Any] | None = None) -> bool:
        """One live job per id: an execution or a tenant's evolution is queued at most once.
        False when it was already waiting."""
        if self._waiting(job_id):
            return False
        options: dict[str, Any] = {
            "job_id": job_id, "retry": retry or self._retry(), "job_timeout": self.job_timeout_s,
            "result_ttl": 3600, "failure_ttl": 86400, "args": args, "kwargs": kwargs or {},
        }
        if delay_s > 0:
            queue.enqueue_in(timedelta(seconds=delay_s), func, **options)
        else:
            queue.enqueue(func, **options)
        return True

    def _waiting(self, job_id: str) -> bool:
        """The job's status field alone (what `Job.get_status` reads), not the whole job:
        no job, or one that ran or expired, is not waiting."""
        status = self.redis.hget(Job.key_for(job_id), "status")
        return status is not None and as_text(status) in _WAITING

    async def enqueue_execution(self, execution_id: int) -> None:
        await asyncio.to_thread(
            self._enqueue_unique, self.executions, f"execute-{execution_id}", execute_job,
            execution_id,
        )

    async def enqueue_executions(self, execution_ids: Sequence[int]) -> None:
        """Fresh executions in one MULTI/EXEC: their ids were just allocated, so no live job
        can have them (a stray one would only be claimed once — `claim_execution`)."""
        if not execution_ids:
            return
        if not self.executions.redis_server_version:  # RQ's one read (INFO), then cached
            await asyncio.to_thread(self.executions.get_redis_server_version)
        async with self.aio.pipeline(transaction=True) as pipe:
            for args, options in self._fresh_job_commands(list(execution_ids)):
                pipe.execute_command(*args, **options)
            await pipe.execute()

    def _fresh_job_commands(self, execution_ids: list[int]) -> list[tuple[Any, Any]]:
        """The commands RQ's `enqueue_many` issues for these jobs, recorded, not sent: given a
        pipeline, RQ only adds writes to it (once the server version is known)."""
        recorder = self.redis.pipeline(transaction=True)
        self.executions.enqueue_many([
            Queue.prepare_data(execute_job, (execution_id,), job_id=f"execute-{execution_id}",
                               retry=self._retry(), timeout=self.job_timeout_s,
                               result_ttl=3600, failure_ttl=86400)
            for execution_id in execution_ids
        ], pipeline=recorder)
        return list(recorder.command_stack)

    async def enqueue_redelivery(self, execution_id: int) -> None:
        """Retried on EVOBOT_REDELIVER_AFTER_S (minutes in all) while the platform refuses."""
        await asyncio.to_thread(
            self._enqueue_unique, self.executions, f"redeliver-{execution_id}", redeliver_job,
            execution_id, retry=self._retry(self.redeliver_after_s),
        )

    async def enqueue_evolution(
        self, tenant_id: TenantId, *, delay_s: float = 0.0, trigger: str = "feedback",
        review_first: bool = False,
    ) -> None:
        await asyncio.to_thread(self._enqueue_evolution, tenant_id, delay_s, trigger,
                                review_first)

    def _enqueue_evolution(self, tenant_id: TenantId, delay_s: float, trigger: str,
                           review_first: bool) -> None:
        key = _job_key(tenant_id)
        queued = self._enqueue_unique(
            self.evolution, f"evolve-{key}", evolve_job, tenant_id, trigger, delay_s=delay_s,
            kwargs={"review_first": True} if review_first else None,
        )
        if review_first and not queued:  # the evolution waiting may not review: a job that does
            self._enqueue_unique(self.evolution, f"review-{key}", review_job, tenant_id)

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

