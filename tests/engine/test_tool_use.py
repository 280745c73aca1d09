"""LLM_TOOLS: tools are offered in function-calling form to models the capability map lists,
to any model with `on`, and to none with `off`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.wiring import connect_redis
from engine.llm import scripted
from engine.llm.gateway import tool_use
from engine.llm.scripted import ScriptedRequest, register_script
from engine.types import InboundMessage
from tests.conftest import Bot, Stack, _bot, make_config

SELF_HOSTED = "scripted/self-hosted"  # a model litellm's map knows nothing about


def _answer(request: ScriptedRequest) -> str:
    return "42"


register_script("self-hosted", _answer, function_calling=False)


def test_auto_follows_the_capability_map() -> None:
    assert tool_use("scripted/default").offered
    assert not tool_use(SELF_HOSTED).offered
    assert not tool_use("hosted_vllm/my-llama").offered
    assert not tool_use("local/smollm2").offered
    assert "LLM_TOOLS=on" in tool_use("local/smollm2").reason


def test_on_and_off_override_the_map() -> None:
    assert tool_use("hosted_vllm/my-llama", "on").offered
    assert not tool_use("scripted/default", "off").offered


@pytest.fixture(params=["auto", "on", "off"])
async def self_hosted_bot(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bot]:
    config = make_config(tmp_path, LLM_MODEL=SELF_HOSTED, LLM_TOOLS=request.param)
    redis = connect_redis(config)
    async with _bot(Stack("embedded", config, redis)) as bot:
        yield bot
    redis.sync.flushall()


async def test_tools_reach_an_unknown_model_only_when_turned_on(self_hosted_bot: Bot) -> None:
    bot = self_hosted_bot
    await bot.service.handle_message(InboundMessage(
        tenant_id="local:t", channel_id="c", user_id="u", text="6*7?", message_id="m1"))
    await bot.drain()
    (request,) = [r for r in scripted.CALLS if r.purpose == "execute"]
    offered = [t["function"]["name"] for t in request.tools]
    assert ("python" in offered) == (bot.rt.settings.llm_tools == "on")
    assert bot.events("answer")
