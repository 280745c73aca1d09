"""Answers the platform refuses for longer than its client retries are held on the row and
posted by the redelivery job: given up after its schedule (so the thread flows again), and
queued again by the reconciler when Redis lost the job. Both stacks."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator

import pytest
from rq import Queue
from sqlalchemy import select

from engine.fakes import RecordingNotifier
from engine.jobs import EXECUTIONS, reconcile
from engine.storage.models import Execution
from engine.types import AnswerReady, Delivery, InboundMessage, OutboundEvent
from tests.conftest import Bot, Stack, _bot

TENANT = "local:acme"


class DownNotifier(RecordingNotifier):
    """A platform that refuses every answer while `down` (its notifier raises)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.refused: list[int] = []

    async def deliver(self, event: OutboundEvent) -> Delivery:
        if self.down and isinstance(event, AnswerReady):
            self.refused.append(event.execution_id)
            raise ConnectionError("the platform is down")
        return await super().deliver(event)


@pytest.fixture
async def down_bot(stack: Stack, request: pytest.FixtureRequest) -> AsyncIterator[Bot]:
    schedule = getattr(request, "param", "0,0")
    config = stack.config.model_copy(update={"redeliver_after_s": schedule})
    async with _bot(dataclasses.replace(stack, config=config)) as bot:
        bot.notifier = DownNotifier()
        bot.rt.notifier = bot.router()
        yield bot


async def ask(bot: Bot, text: str) -> int:
    accepted = await bot.service.handle_message(InboundMessage(
        tenant_id=TENANT, channel_id="c1", thread_id="t1", user_id="u1", text=text,
        message_id=f"m-{text}"))
    assert accepted is not None
    await bot.drain()
    return accepted.execution_id


async def held(bot: Bot) -> list[bool]:
    async with bot.rt.sessions() as session:
        rows = await session.scalars(select(Execution).order_by(Execution.id))
        return [row.answer_pending for row in rows]


async def test_a_refusal_that_never_ends_is_given_up_and_the_thread_flows_again(
    down_bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = down_bot.notifier
    assert isinstance(notifier, DownNotifier)
    with caplog.at_level(logging.INFO, logger="engine.redeliver"):
        first = await ask(down_bot, "question one")
    assert notifier.refused == [first] * 4  # the answer, then the job and its two retries
    assert "gave up redelivering the answer of execution" in caplog.text
    assert await held(down_bot) == [False]

    notifier.down = False
    second = await ask(down_bot, "question two")  # not held behind the given-up answer
    assert [e.execution_id for e in down_bot.events("answer")] == [second]


@pytest.mark.parametrize("down_bot", ["3600"], indirect=True)
async def test_the_reconciler_queues_a_held_answer_whose_job_redis_lost(down_bot: Bot) -> None:
    notifier = down_bot.notifier
    assert isinstance(notifier, DownNotifier)
    first = await ask(down_bot, "question one")  # held; its job's retry waits an hour
    assert await held(down_bot) == [True]
    registry = Queue(EXECUTIONS, connection=down_bot.stack.redis.sync).scheduled_job_registry
    for job_id in registry.get_job_ids():
        registry.remove(job_id, delete_job=True)  # Redis lost it

    notifier.down = False
    down_bot.rt.settings.pending_grace_s = 0
    await reconcile(down_bot.rt)
    await down_bot.drain()
    answers = [e for e in down_bot.events("answer") if isinstance(e, AnswerReady)]
    assert [a.execution_id for a in answers] == [first]
    assert "question one" in answers[0].text and answers[0].footer.startswith("v1 · ")
    assert await held(down_bot) == [False]


async def test_storing_an_answer_tells_whether_an_earlier_one_of_its_thread_is_held(
        bot: Bot) -> None:
    """It then queues behind that one: only for an earlier answer of the same tenant, channel
    and thread (no thread counts as one) that still awaits redelivery."""
    async def record(tenant: str, thread: str | None, n: int) -> Execution:
        accepted = await bot.service.handle_message(InboundMessage(
            tenant_id=tenant, channel_id="c1", thread_id=thread, user_id="u1",
            text=f"question {n}", message_id=f"m{n}"))
        assert accepted is not None
        async with bot.rt.repo(tenant) as repo:
            row = await repo.execution(accepted.execution_id)
        assert row is not None
        return row

    held_t1, held_none = await record(TENANT, "t1", 1), await record(TENANT, None, 2)
    later_t1, other_thread = await record(TENANT, "t1", 3), await record(TENANT, "t2", 4)
    later_none, other_tenant = await record(TENANT, None, 5), await record("local:zeta", "t1", 6)
    for row in (held_t1, held_none):
        async with bot.rt.repo(TENANT) as repo:
            await repo.update_execution(row.id, answer_pending=True)

    async def store(row: Execution) -> bool:
        async with bot.rt.repo(row.tenant_id) as repo:
            return await repo.store_answer(row, output=f"answer {row.id}", status="succeeded")

    assert [await store(row) for row in (later_t1, later_none, other_thread, other_tenant,
                                         held_t1)] == [True, True, False, False, False]
    async with bot.rt.sessions() as session:
        outputs = list(await session.scalars(select(Execution.output).order_by(Execution.id)))
    assert outputs == [f"answer {held_t1.id}", None, f"answer {later_t1.id}",
                       f"answer {other_thread.id}", f"answer {later_none.id}",
                       f"answer {other_tenant.id}"]
