"""A capability gap becomes a sandbox-tested tool that the next objective calls (both stacks,
scripted model, real RQ worker)."""

from __future__ import annotations

import json

from engine.llm.scripted import ScriptedRequest, register_script
from engine.storage.models import Evolution
from engine.types import ToolAnnounced
from tests.conftest import Bot
from tests.engine.test_evolution_flow import TENANT, ask, command, rate
from tests.engine.tools.helpers import tool_row


async def test_a_converter_need_becomes_a_tested_announced_tool_the_agent_calls(
    bot: Bot,
) -> None:
    first = await ask(bot, "convert 5 miles to km")
    assert first.version == 1 and first.text == "Answer to: convert 5 miles to km"

    result = await rate(bot, first, 2, "you need a converter")
    assert result.evolution_queued
    await bot.drain()

    [announced] = bot.events("tool")
    assert isinstance(announced, ToolAnnounced)
    assert announced.name == "convert_units"
    assert announced.signature == "convert_units(value: number, from_unit: string, to_unit: string)"
    assert announced.tests_passed == 5 and announced.version == 2
    assert announced.channel_id == "c1"  # where the rated objective was asked
    text = announced.document.plain_text()
    assert "New tool: convert_units (v1 → v2)" in text
    assert "5 tests passed in the sandbox" in text
    assert any(b.action == "rollback" and b.value == "1" for b in announced.document.buttons)

    async with bot.rt.repo(TENANT) as repo:
        active = await repo.active_version()
        [evolution] = await repo.evolutions()
    assert active.version == 2 and active.tools == ["convert_units@1"]
    assert active.created_by == f"evolution:{evolution.id}"
    assert "capability_gap" in evolution.validation["triggers"]  # the need went to the maker
    assert active.prompt.rules == []  # a tool need is not a prompt rule
    tool = await tool_row(bot, "convert_units")
    assert (tool.status, tool.kind, tool.evolution_id) == ("active", "function", evolution.id)
    assert "def convert_units(value, from_unit, to_unit)" in tool.source
    assert "def test_length" in tool.tests

    second = await ask(bot, "convert 10 miles to km")
    assert second.version == 2 and second.footer.startswith("v2 · 1 tool · ")  # it called one
    assert second.text == "Result: 16.09344"
    async with bot.rt.repo(TENANT) as repo:
        execution = await repo.execution(second.execution_id)
    assert execution is not None and execution.status == "succeeded"
    [call] = execution.trace
    assert call["tool"] == "convert_units" and call["ok"]
    assert call["arguments"] == {"value": 10.0, "from_unit": "miles", "to_unit": "km"}
    tool = await tool_row(bot, "convert_units")
    assert (tool.calls, tool.successes) == (1, 1)
    assert tool.total_duration_s > 0 and tool.last_used_at is not None

    listing = (await command(bot, "tools", admin=False)).document.plain_text()
    assert "convert_units v1 (function) [active]: 1 call, 100% ok" in listing
    status = (await command(bot, "status", admin=False)).document.plain_text()
    assert "Tools: python (built-in), convert_units" in status


async def test_a_prompt_rule_evolution_after_a_tool_keeps_the_tool(bot: Bot) -> None:
    first = await ask(bot, "convert 5 miles to km")
    await rate(bot, first, 2, "you need a converter")
    await bot.drain()
    second = await ask(bot, "what is the weather")
    await rate(bot, second, 2, "answer in French please")
    await bot.drain()

    async with bot.rt.repo(TENANT) as repo:
        active = await repo.active_version()
        evolutions = await repo.evolutions()
    assert active.version == 3 and active.tools == ["convert_units@1"]
    assert [r.text for r in active.prompt.rules] == ["Answer in French please."]
    assert [e.decision for e in evolutions] == ["promoted", "skipped"]
    assert isinstance(evolutions[0], Evolution)


async def test_one_evolution_with_a_tool_need_and_a_prompt_rule_applies_both(
    local_bot: Bot,
) -> None:
    bot = local_bot

    def prefers_rules(request: ScriptedRequest) -> str:
        winner = "A" if "[following" in request.data()["A"] else "B"
        return json.dumps({"winner": winner, "reason": "follows the learned rule"})

    register_script("prefers_rules", prefers_rules)
    bot.stack.config = bot.stack.config.model_copy(update={"judge_model": "scripted/prefers_rules"})
    converting = await ask(bot, "convert 5 miles to km")
    chatting = await ask(bot, "what is the weather")
    await rate(bot, converting, 2, "you need a converter")
    await rate(bot, chatting, 2, "answer in French please")  # same evolution as the need
    await bot.drain()

    async with bot.rt.repo(TENANT) as repo:
        active = await repo.active_version()
    assert active.tools == ["convert_units@1"]
    assert [r.text for r in active.prompt.rules] == ["Answer in French please."]
