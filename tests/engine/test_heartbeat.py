"""A running execution beats while its worker lives, so the reconciler leaves it alone; once
the worker is killed the beat stops and the reconciler hands the work on — answered once."""

from __future__ import annotations

import asyncio
import time

from engine.jobs import reconcile
from engine.types import InboundMessage
from tests.conftest import Bot
from tests.engine.test_evolution_flow import TENANT
from tests.engine.test_jobs_resilience import _kill_worker, _status, _worker_process


async def _running(bot: Bot, execution_id: int) -> None:
    deadline = time.monotonic() + 60
    while await _status(bot, execution_id) != "running":
        assert time.monotonic() < deadline, "the worker process never picked the job up"
        await asyncio.sleep(0.05)


async def test_a_live_run_keeps_beating_and_a_dead_one_is_handed_on(bot: Bot) -> None:
    bot.rt.settings.stale_running_s = 3.0  # the reconciler's view, and the drain worker's:
    bot.stack.config = bot.stack.config.model_copy(update={"stale_running_s": 3.0})
    accepted = await bot.service.handle_message(InboundMessage(
        tenant_id=TENANT, channel_id="c1", user_id="u1", text="slow one <<sleep:8>>",
        message_id="m-beat"))
    assert accepted is not None
    worker = _worker_process(bot, EVOBOT_HEARTBEAT_S="0.3")
    try:
        await _running(bot, accepted.execution_id)
        await asyncio.sleep(4.0)  # longer than stale_running_s: only the heartbeat keeps it
        assert (await reconcile(bot.rt))["executions"] == 0
    finally:
        _kill_worker(worker)
    await asyncio.sleep(4.0)  # no more beats
    assert (await reconcile(bot.rt))["executions"] == 1
    await bot.drain()
    assert await _status(bot, accepted.execution_id) == "succeeded"
    assert [e.execution_id for e in bot.events("answer")] == [accepted.execution_id]
