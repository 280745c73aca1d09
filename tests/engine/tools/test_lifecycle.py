"""Tool lifecycle: unused → stale → archived (never deleted), failing → retired by the
review step, pinned tools exempt; pin/unpin are admin-only; tool_removal learnings."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from engine.evolution.review import anything_to_review, review
from engine.execute import toolbox_for
from engine.jobs import reconcile
from engine.storage.models import Tool, utcnow
from engine.tools.lifecycle import review_tools
from tests.conftest import Bot
from tests.engine.test_evolution_flow import TENANT, active_version, ask, command, rate
from tests.engine.tools.helpers import install_tool, tool_row

ECHO = "def echo_text(text):\n    return text.upper()\n"
BROKEN = "def flaky_lookup(text):\n    raise RuntimeError('backend gone')\n"


async def set_tool(bot: Bot, name: str, **values: object) -> None:
    async with bot.rt.sessions() as session, session.begin():
        await session.execute(update(Tool).where(Tool.name == name).values(**values))


async def offered(bot: Bot) -> list[str]:
    async with bot.rt.repo(TENANT) as repo:
        version = await repo.active_version()
    return list((await toolbox_for(bot.rt, TENANT, version.tools)).tools)


async def test_unused_tools_go_stale_then_archived_and_a_call_revives_a_stale_one(
    local_bot: Bot,
) -> None:
    bot = local_bot
    await ask(bot, "hello")
    await install_tool(bot, "echo_text", ECHO, description="Shout some text loudly.")
    assert await review_tools(bot.rt, TENANT) is None  # fresh: nothing due

    await set_tool(bot, "echo_text", created_at=utcnow() - timedelta(days=20))
    assert await review_tools(bot.rt, TENANT) == "stale: echo_text"
    assert (await tool_row(bot, "echo_text")).status == "stale"
    assert await active_version(bot) == 2  # stale: still on the agent, still offered
    assert await offered(bot) == ["python", "echo_text"]

    revived = await ask(bot, "shout this text")
    assert revived.text == "Result: SHOUT THIS TEXT"
    assert (await tool_row(bot, "echo_text")).status == "active"

    await set_tool(bot, "echo_text", status="stale", last_used_at=utcnow() - timedelta(days=50))
    assert await review_tools(bot.rt, TENANT) == "archived: echo_text"
    archived = await tool_row(bot, "echo_text")
    assert archived.status == "archived" and archived.note.startswith("unused since")
    assert await active_version(bot) == 3 and await offered(bot) == ["python"]
    [notice] = bot.events("notice")
    assert "Tool retired: echo_text (v2 → v3)" in notice.document.plain_text()
    listing = (await command(bot, "tools")).document.plain_text()
    assert "Archived: echo_text v1 (unused since" in listing


async def test_pinned_tools_are_exempt(local_bot: Bot) -> None:
    bot = local_bot
    await ask(bot, "hello")
    await install_tool(bot, "echo_text", ECHO)
    await set_tool(bot, "echo_text", pinned=True, calls=10, successes=1,
                   created_at=utcnow() - timedelta(days=400))
    assert await review_tools(bot.rt, TENANT) is None
    assert (await tool_row(bot, "echo_text")).status == "active"


async def test_a_tool_that_keeps_failing_is_retired_by_the_review_step(local_bot: Bot) -> None:
    bot = local_bot
    await ask(bot, "hello")
    await install_tool(bot, "flaky_lookup", BROKEN, description="Lookup records in the backend.")
    answers = [await ask(bot, f"lookup records {i}") for i in range(5)]
    assert all(a.text.startswith("Result: error: RuntimeError: backend gone") for a in answers)
    tool = await tool_row(bot, "flaky_lookup")
    assert (tool.calls, tool.successes, tool.status) == (5, 0, "active")

    await rate(bot, answers[-1], 3)  # any rating queues the review step
    await bot.drain()

    retired = await tool_row(bot, "flaky_lookup")
    assert retired.status == "archived" and retired.note == "kept failing (5 calls, 0% succeeded)"
    async with bot.rt.repo(TENANT) as repo:
        active = await repo.active_version()
    assert active.version == 3 and active.tools == [] and active.created_by == "review"
    [notice] = bot.events("notice")
    assert "Tool retired: flaky_lookup" in notice.document.plain_text()
    assert notice.channel_id == "c1"


async def test_the_reconciler_queues_the_review_of_tools_that_are_due(local_bot: Bot) -> None:
    bot = local_bot
    await ask(bot, "hello")
    await install_tool(bot, "echo_text", ECHO)
    await reconcile(bot.rt)
    await bot.drain()
    assert (await tool_row(bot, "echo_text")).status == "active"

    await set_tool(bot, "echo_text", created_at=utcnow() - timedelta(days=15))
    await reconcile(bot.rt)
    await bot.drain()
    assert (await tool_row(bot, "echo_text")).status == "stale"


async def test_pin_and_unpin_are_admin_only(local_bot: Bot) -> None:
    bot = local_bot
    await ask(bot, "hello")
    await install_tool(bot, "echo_text", ECHO)
    await set_tool(bot, "echo_text", status="stale")

    refused = await command(bot, "pin", "echo_text", admin=False)
    assert not refused.ok and "Only workspace or chat admins" in refused.document.plain_text()
    assert not (await tool_row(bot, "echo_text")).pinned

    assert (await command(bot, "pin", "echo_text")).ok
    pinned = await tool_row(bot, "echo_text")
    assert pinned.pinned and pinned.status == "active"  # pinning revives a stale tool
    assert "[active] 📌 pinned" in (await command(bot, "tools")).document.plain_text()

    assert not (await command(bot, "unpin", "echo_text", admin=False)).ok
    assert (await command(bot, "unpin", "echo_text")).ok
    assert not (await tool_row(bot, "echo_text")).pinned
    assert not (await command(bot, "pin", "nothing_here")).ok
    assert not (await command(bot, "pin")).ok


async def test_a_tool_removal_learning_retires_the_named_tool(local_bot: Bot) -> None:
    bot = local_bot
    await ask(bot, "hello")
    await install_tool(bot, "echo_text", ECHO, description="Shout some text loudly.")
    answer = await ask(bot, "shout this text")
    await rate(bot, answer, 1, "please remove the echo_text tool, it is annoying")
    await bot.drain()

    assert (await tool_row(bot, "echo_text")).status == "archived"
    async with bot.rt.repo(TENANT) as repo:
        active = await repo.active_version()
    assert active.tools == [] and active.created_by.startswith("evolution:")
    [notice] = bot.events("notice")
    assert "users asked: Please remove the echo_text tool" in notice.document.plain_text()


async def test_crashing_tool_calls_are_reported_and_the_execution_succeeds(
    local_bot: Bot,
) -> None:
    bot = local_bot
    await ask(bot, "hello")
    await install_tool(bot, "flaky_lookup", BROKEN, description="Lookup records in the backend.")
    answer = await ask(bot, "lookup records for ACME")
    assert answer.text.startswith("Result: error: RuntimeError: backend gone")
    async with bot.rt.repo(TENANT) as repo:
        execution = await repo.execution(answer.execution_id)
    assert execution is not None and execution.status == "succeeded"
    [call] = execution.trace
    assert call["tool"] == "flaky_lookup" and not call["ok"]
    assert call["arguments"] == {"text": "lookup records for ACME"}
    tool = await tool_row(bot, "flaky_lookup")
    assert (tool.calls, tool.successes) == (1, 0)


async def test_review_with_nothing_due_reports_nothing(local_bot: Bot) -> None:
    await ask(local_bot, "hello")
    assert await review(local_bot.rt, TENANT) is None


async def test_a_young_agent_has_nothing_to_review_until_it_has_a_tool(local_bot: Bot) -> None:
    bot = local_bot
    await ask(bot, "hello")
    assert not await anything_to_review(bot.rt, TENANT)  # one version, no tools
    await install_tool(bot, "echo_text", ECHO, description="Shout some text loudly.")
    assert await anything_to_review(bot.rt, TENANT)  # a tool (and with it a second version)
