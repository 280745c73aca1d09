"""Generated code that fails its tests or the static checks is never registered: one retry
with the error, then a recorded rejection."""

from __future__ import annotations

import json
from collections.abc import Callable

from engine.evolution.reflect import Learning
from engine.llm import scripted
from engine.llm.default_script import CONVERT_UNITS, default
from engine.llm.scripted import ScriptedReply, ScriptedRequest, register_script
from engine.tools.maker import handle_learning
from tests.conftest import Bot
from tests.engine.test_evolution_flow import TENANT, active_version, ask, rate
from tests.engine.tools.helpers import RecordingSandbox, start_evolution, tool_row

NEED = Learning(type="tool_need", issue="no precise conversions",
                suggested_change="You need a unit converter.")
WRONG_FACTOR = CONVERT_UNITS["source"].replace("1609.344", "1600.0")  # type: ignore[union-attr]
SHELL = "import subprocess\n\ndef convert_units(value, from_unit, to_unit):\n" \
        "    return subprocess.run(['units', str(value)]).stdout\n"


def tool_maker_script(name: str, draft: Callable[[ScriptedRequest], object]) -> str:
    """Register a script that answers tool_maker requests with `draft(request)` (JSON) and
    behaves like scripted/default otherwise; returns its model name."""
    def script(request: ScriptedRequest) -> ScriptedReply | str:
        if request.purpose != "tool_maker":
            return default(request)
        value = draft(request)
        return value if isinstance(value, str) else json.dumps(value)

    register_script(name, script)
    return f"scripted/{name}"


def maker_calls() -> list[ScriptedRequest]:
    return [c for c in scripted.CALLS if c.purpose == "tool_maker"]


async def test_a_tool_failing_its_tests_is_retried_once_then_rejected(bot: Bot) -> None:
    model = tool_maker_script("wrong_factor", lambda r: {**CONVERT_UNITS, "source": WRONG_FACTOR})
    bot.stack.config = bot.stack.config.model_copy(update={"evolver_model": model})

    answer = await ask(bot, "convert 5 miles to km")
    await rate(bot, answer, 2, "you need a converter")
    await bot.drain()

    assert bot.events("tool") == []
    assert await active_version(bot) == 1
    first, retry = maker_calls()
    assert "error" not in first.data()
    assert first.data()["examples"] == [
        {"objective": "convert 5 miles to km", "comment": "you need a converter"}
    ]
    assert retry.data()["error"].startswith("tests failed: AssertionError")
    assert retry.data()["previous_attempt"]["source"] == WRONG_FACTOR
    rejected = await tool_row(bot, "convert_units")
    assert rejected.status == "rejected" and rejected.evolution_id is not None
    assert rejected.note is not None and rejected.note.count("tests failed") == 2
    async with bot.rt.repo(TENANT) as repo:
        assert (await repo.active_version()).tools == []


async def test_static_check_failures_never_reach_the_sandbox(local_bot: Bot) -> None:
    bot = local_bot
    evolution_id = await start_evolution(bot)
    bot.rt.settings.evolver_model = tool_maker_script(
        "shell", lambda r: {**CONVERT_UNITS, "source": SHELL}
    )
    sandbox = RecordingSandbox(bot.rt.sandbox)
    bot.rt.sandbox = sandbox

    result = await handle_learning(bot.rt, TENANT, evolution_id, NEED)

    assert (result.status, result.attempts) == ("rejected", 2)
    assert sandbox.programs == []  # nothing of it ever ran
    assert "static checks failed" in result.note and "subprocess" in result.note
    assert (await tool_row(bot, "convert_units")).status == "rejected"
    assert await active_version(bot) == 1
    assert bot.events("tool") == []


async def test_a_draft_fixed_on_the_retry_is_registered(local_bot: Bot) -> None:
    bot = local_bot
    evolution_id = await start_evolution(bot)

    def fixed_after_error(request: ScriptedRequest) -> object:
        if "error" in request.data():
            return CONVERT_UNITS
        return {**CONVERT_UNITS, "name": "convert"}  # function/tool name mismatch

    bot.rt.settings.evolver_model = tool_maker_script("fixes", fixed_after_error)
    sandbox = RecordingSandbox(bot.rt.sandbox)
    bot.rt.sandbox = sandbox

    result = await handle_learning(bot.rt, TENANT, evolution_id, NEED)

    assert (result.status, result.name, result.attempts) == ("active", "convert_units", 2)
    assert "define a top-level function `def convert(...)`" in maker_calls()[1].data()["error"]
    [program] = sandbox.programs  # only the good draft's tests ran, in the sandbox
    assert "def test_length" in program and program.rstrip().endswith("result = {'passed': 5}")
    [announced] = bot.events("tool")
    assert (announced.channel_id, announced.thread_id) == ("c1", "t9")
    assert await active_version(bot) == result.agent_version == 2


async def test_invalid_json_twice_is_a_recorded_rejection(local_bot: Bot) -> None:
    bot = local_bot
    evolution_id = await start_evolution(bot)
    bot.rt.settings.evolver_model = tool_maker_script("babble", lambda r: "Sure! A converter.")

    result = await handle_learning(bot.rt, TENANT, evolution_id, NEED)

    assert (result.status, result.name) == ("rejected", "unnamed_tool")
    assert result.note.startswith("no valid tool JSON")
    assert len(maker_calls()) == 4  # two attempts, each with the gateway's one JSON repair


async def test_a_declined_need_and_a_repeated_tool_change_nothing(local_bot: Bot) -> None:
    bot = local_bot
    evolution_id = await start_evolution(bot)
    vague = Learning(type="tool_need", issue="meh", suggested_change="You need a better tool.")
    declined = await handle_learning(bot.rt, TENANT, evolution_id, vague)
    assert declined.status == "declined"

    made = await handle_learning(bot.rt, TENANT, evolution_id, NEED)
    again = await handle_learning(bot.rt, TENANT, evolution_id, NEED)
    assert (made.status, again.status) == ("active", "unchanged")
    assert await active_version(bot) == 2
    assert len(bot.events("tool")) == 1


async def test_the_tiny_local_model_is_not_asked_to_write_tools(local_bot: Bot) -> None:
    bot = local_bot
    evolution_id = await start_evolution(bot)
    bot.rt.settings.evolver_model = "local/smollm2"
    result = await handle_learning(bot.rt, TENANT, evolution_id, NEED)
    assert result.status == "ignored" and maker_calls() == []
