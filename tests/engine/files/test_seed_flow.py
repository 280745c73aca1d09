"""The seed's first use case end to end: a retail team shares last quarter's sales and asks
for accessory attach rates by device; the numbers are right but there is no chart; 👎 "Good
but need visualizations" evolves the agent, and the next answer in the thread brings one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from engine.types import (
    AnswerReady,
    Attachment,
    EvolutionAnnounced,
    FeedbackSource,
    InboundFeedback,
    InboundMessage,
)
from tests.conftest import Bot, Stack, _bot
from tests.engine.files.helpers import RETAIL, rates_close, sales_csv

TENANT = "local:retail"
OBJECTIVE = "Calculate accessory attach rates by device"


@pytest.fixture
async def retail(embedded: Stack) -> AsyncIterator[Bot]:
    config = embedded.config.model_copy(update={"llm_model": RETAIL, "tool_timeout_s": 60.0})
    async with _bot(Stack(embedded.name, config, embedded.redis)) as bot:
        yield bot


async def ask(bot: Bot, message_id: str, files: list[Attachment]) -> AnswerReady:
    accepted = await bot.service.handle_message(InboundMessage(
        tenant_id=TENANT, channel_id="sales", user_id="dana", text=OBJECTIVE,
        message_id=message_id, thread_id="q3", attachments=files))
    assert accepted is not None
    await bot.drain()
    (answer,) = [e for e in bot.events("answer")
                 if isinstance(e, AnswerReady) and e.execution_id == accepted.execution_id]
    return answer


async def test_the_seed_flow(retail: Bot) -> None:
    data = sales_csv(rows=400, seed=3)
    first = await ask(retail, "m1", [Attachment(name="sales.csv", data=data)])
    assert rates_close(json.loads(first.text.removeprefix("Attach rates: "))["value"], data)
    assert [f.name for f in first.files] == ["attach_rates.csv"]  # numbers, no chart

    rated = await retail.service.handle_feedback(InboundFeedback(
        tenant_id=TENANT, user_id="dana", source=FeedbackSource.REACTION, rating=2,
        comment="Good but need visualizations", execution_id=first.execution_id))
    assert rated.recorded and rated.evolution_queued
    await retail.drain()
    (evolved,) = retail.events("evolution")
    assert isinstance(evolved, EvolutionAnnounced)
    assert evolved.decision == "promoted" and "visualizations" in evolved.diff

    second = await ask(retail, "m2", [])  # the same thread: the CSV is still there
    assert second.version == evolved.to_version
    made = {f.name: f for f in second.files}
    assert sorted(made) == ["attach_rates.csv", "attach_rates.png"]
    assert made["attach_rates.png"].data.startswith(b"\x89PNG")
    assert rates_close(json.loads(second.text.removeprefix("Attach rates: "))["value"], data)
