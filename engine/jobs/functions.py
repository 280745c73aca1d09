"""The job functions RQ imports by name. Arguments are ids only; the database is the truth."""

from __future__ import annotations

from rq import get_current_job

from engine.evolution.evolve import evolve
from engine.evolution.review import review
from engine.execute import execute, mark_failed
from engine.jobs.reconciler import queue_periodic_evolutions, reconcile
from engine.jobs.worker_runtime import run_in_job_loop
from engine.redeliver import give_up_redelivery, redeliver
from engine.runtime import Runtime
from engine.types import TenantId


def _final_attempt() -> bool:
    job = get_current_job()
    return job is None or not job.retries_left


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


def redeliver_job(execution_id: int) -> str:
    """Raises while the platform still refuses the answer, so RQ retries it on its schedule;
    the final attempt gives up on it, so the thread's later answers are not held forever."""
    final = _final_attempt()

    async def run(rt: Runtime) -> str:
        try:
            return await redeliver(rt, execution_id)
        except Exception:
            if final:
                await give_up_redelivery(rt, execution_id)
            raise

    return run_in_job_loop(run)


def evolve_job(tenant_id: TenantId, trigger: str = "feedback", *,
               review_first: bool = False) -> str:
    """`review_first`: a rating's review (canary, watch) runs in this job, just before the
    evolution it triggered — in order, without a job of its own in between."""

    async def run(rt: Runtime) -> str:
        if review_first:
            await review(rt, tenant_id)
        outcome = await evolve(rt, tenant_id, trigger=trigger)
        return f"{outcome.decision.value}: {outcome.reason}"

    return run_in_job_loop(run)


def review_job(tenant_id: TenantId) -> str:
    async def run(rt: Runtime) -> str:
        return await review(rt, tenant_id) or "no change"

    return run_in_job_loop(run)


def reconcile_job() -> dict[str, int]:
    return run_in_job_loop(reconcile)


def periodic_job() -> int:
    return run_in_job_loop(queue_periodic_evolutions)
