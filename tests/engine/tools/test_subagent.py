"""Sub-agents as tools: an evolution creates a specialist the main agent calls as one tool."""

from __future__ import annotations

from engine.llm import scripted
from engine.tools.subagent import parse_spec
from tests.conftest import Bot
from tests.engine.test_evolution_flow import TENANT, ask, rate
from tests.engine.tools.helpers import install_tool, tool_row

CONVERT = "def convert_units(value, from_unit, to_unit):\n    return value\n"
CONVERT_SCHEMA = {
    "type": "object",
    "properties": {"value": {"type": "number"}, "from_unit": {"type": "string"},
                   "to_unit": {"type": "string"}},
    "required": ["value", "from_unit", "to_unit"],
}


async def test_a_specialist_need_becomes_a_subagent_tool_the_agent_calls(bot: Bot) -> None:
    first = await ask(bot, "plan my travel to Lisbon")
    await rate(bot, first, 2, "you need a travel specialist for this")
    await bot.drain()

    [announced] = bot.events("tool")
    assert announced.name == "travel_specialist"
    assert announced.signature == "travel_specialist(task: string)"
    assert announced.tests_passed == 1 and announced.version == 2
    assert "New specialist sub-agent: travel_specialist (v1 → v2)" in (
        announced.document.plain_text()
    )
    tool = await tool_row(bot, "travel_specialist")
    assert (tool.kind, tool.status) == ("subagent", "active")
    spec = parse_spec(tool.source)
    assert spec.prompt.persona == "You are a travel specialist. Answer travel questions precisely."
    assert [r.text for r in spec.prompt.rules] == [
        "Give concrete travel details.", "Say which assumptions you made."
    ]

    second = await ask(bot, "plan my travel to Porto")
    assert second.text == (
        "Result: Answer to: plan my travel to Porto "
        "[following: Give concrete travel details.; Say which assumptions you made.]"
    )
    async with bot.rt.repo(TENANT) as repo:
        execution = await repo.execution(second.execution_id)
    assert execution is not None
    [call] = execution.trace
    assert call["tool"] == "travel_specialist" and call["ok"]
    assert call["arguments"] == {"task": "plan my travel to Porto"}
    assert (await tool_row(bot, "travel_specialist")).calls == 1


async def test_a_subagent_gets_its_function_tools_but_never_another_subagent(
    local_bot: Bot,
) -> None:
    bot = local_bot
    await ask(bot, "hello")
    await install_tool(bot, "convert_units", CONVERT, parameters=CONVERT_SCHEMA,
                       description="Convert a value between units.")
    first = await ask(bot, "plan my travel to Lisbon")
    await rate(bot, first, 2, "you need a travel specialist")
    await bot.drain()
    spec = parse_spec((await tool_row(bot, "travel_specialist")).source)
    assert spec.tools == ["convert_units"]

    scripted.CALLS.clear()
    await ask(bot, "plan my travel to Faro")
    [sub_request] = [c for c in scripted.CALLS if c.purpose == "subagent"]
    offered = [t["function"]["name"] for t in sub_request.tools]
    assert offered == ["python", "convert_units"]  # no sub-agent inside a sub-agent
    main = next(c for c in scripted.CALLS if c.purpose == "execute")
    assert [t["function"]["name"] for t in main.tools] == [
        "python", "convert_units", "travel_specialist"
    ]
    assert main.tools[2]["function"]["parameters"]["required"] == ["task"]
