"""One smoke run through the real `local/smollm2` model (llama.cpp), no scripted answers."""

from __future__ import annotations

import pytest

from engine.llm import gateway
from engine.types import FeedbackSource, InboundFeedback, InboundMessage
from tests.conftest import Bot, Stack, _bot

pytestmark = pytest.mark.slow


async def test_objective_feedback_and_evolution_with_the_local_model(embedded: Stack) -> None:
    embedded.config = embedded.config.model_copy(
        update={"llm_model": "local/smollm2", "allow_model_requests": True,
                "llm_timeout_s": 300.0}
    )
    async with _bot(embedded) as bot:
        gateway.ALLOW_MODEL_REQUESTS = True  # this test is the one that may call a real model
        await _run(bot)


async def _run(bot: Bot) -> None:
    tenant = "local:smoke"
    accepted = await bot.service.handle_message(
        InboundMessage(tenant_id=tenant, channel_id="c", user_id="u", text="Name one planet.",
                       message_id="smoke-1")
    )
    assert accepted is not None
    await bot.drain(timeout_s=900)
    [answer] = bot.events("answer")
    assert answer.text.strip() and answer.version == 1

    result = await bot.service.handle_feedback(
        InboundFeedback(tenant_id=tenant, user_id="u", source=FeedbackSource.REACTION, rating=1,
                        comment="answer in one word", execution_id=accepted.execution_id)
    )
    assert result.evolution_queued
    await bot.drain(timeout_s=900)
    async with bot.rt.repo(tenant) as repo:
        [evolution] = await repo.evolutions()
    assert evolution.status == "done"
    assert evolution.decision in {"promoted", "canary", "rejected", "needs_approval", "skipped"}
    assert evolution.reason
