"""The worker inside a platform process (`evobot chat`, or a web process without REDIS_URL):
stopping it lets the job under way finish, so the process exiting right after cuts nothing
off."""

from __future__ import annotations

import asyncio
import time

from bot.wiring import build_runtime, close_runtime
from bot.worker import EmbeddedWorker
from engine.fakes import RecordingNotifier
from engine.notify import NotifierRouter
from engine.runtime import Runtime
from engine.service import EvobotService
from engine.storage.models import Execution
from engine.types import AnswerReady, ExecutionStatus, InboundMessage
from tests.conftest import Stack


async def _status(runtime: Runtime, execution_id: int) -> str:
    async with runtime.sessions() as session:
        row = await session.get(Execution, execution_id)
        assert row is not None
        return str(row.status)


async def test_stopping_while_it_answers_waits_for_the_answer(stack: Stack) -> None:
    notifier = RecordingNotifier()

    def router() -> NotifierRouter:
        return NotifierRouter({"local": notifier})

    runtime = await build_runtime(stack.config, router(), stack.redis)
    worker = EmbeddedWorker(stack.config, router, stack.redis).start()
    try:
        accepted = await EvobotService(runtime).handle_message(InboundMessage(
            tenant_id="local:t", channel_id="c", user_id="u", text="think <<sleep:2>>",
            message_id="m1"))
        assert accepted is not None
        deadline = time.monotonic() + 60
        while await _status(runtime, accepted.execution_id) != ExecutionStatus.RUNNING:
            assert time.monotonic() < deadline, "the worker never picked the job up"
            await asyncio.sleep(0.05)

        await worker.stop()

        assert not worker.thread.is_alive()
        assert await _status(runtime, accepted.execution_id) == ExecutionStatus.SUCCEEDED
        answers = [e for e in notifier.events if isinstance(e, AnswerReady)]
        assert [a.execution_id for a in answers] == [accepted.execution_id]
    finally:
        await worker.stop()
        await close_runtime(runtime)
