"""The README's first example through the real `local/smollm2` model (llama.cpp), no scripted
answers: an answer, a comment that asks for French, v2 with that rule announced with its diff,
and the next answer served by v2."""

from __future__ import annotations

import pytest

from engine.llm import gateway
from engine.types import Decision, EvolutionAnnounced, FeedbackSource, InboundFeedback
from tests.conftest import Bot, Stack, _bot
from tests.engine.test_evolution_flow import ask

pytestmark = pytest.mark.slow
TENANT = "local:default"  # the console's tenant: one person


async def test_the_readme_example_on_the_local_model(embedded: Stack) -> None:
    embedded.config = embedded.config.model_copy(
        update={"llm_model": "local/smollm2", "allow_model_requests": True,
                "llm_timeout_s": 300.0}
    )
    async with _bot(embedded) as bot:
        gateway.ALLOW_MODEL_REQUESTS = True  # this test is the one that may call a real model
        await _readme_example(bot)


async def _readme_example(bot: Bot) -> None:
    first = await ask(bot, "What is the capital of France?", tenant=TENANT)
    assert first.text.strip() and first.version == 1
    assert first.tool_count == 0  # the local model can't call functions: none used

    result = await bot.service.handle_feedback(InboundFeedback(
        tenant_id=TENANT, user_id="u1", source=FeedbackSource.REACTION, rating=2,
        comment="answer in French please", execution_id=first.execution_id, from_admin=True))
    assert result.evolution_queued
    await bot.drain(timeout_s=900)

    [announced] = bot.events("evolution")
    assert isinstance(announced, EvolutionAnnounced)
    assert announced.decision == Decision.PROMOTED
    assert (announced.from_version, announced.to_version) == (1, 2)
    assert "+1. Answer in French please." in announced.diff
    shown = announced.document.plain_text()
    assert "from your comment" in shown and "promoted (one-person chat)" in shown
    assert "too weak" in shown  # the tiny judge is not taken as evidence

    second = await ask(bot, "What is the capital of Italy?", tenant=TENANT)
    assert second.version == 2 and second.text.strip()
