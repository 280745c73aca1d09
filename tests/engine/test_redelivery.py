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
