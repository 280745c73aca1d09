"""Recording objectives (engine/ingress.py): objectives arriving together share one
transaction, each is recorded exactly once however often it is delivered, a label moved by
another process serves the next message, and an idle tenant leaves nothing cached. Runs on
both stacks."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

import engine.ingress
from bot.wiring import build_runtime, close_runtime
from engine.ingress import IngressWriter
from engine.notify import NotifierRouter
from engine.prompt import default_prompt
from engine.storage.models import Execution, Tenant
from engine.storage.repo import ACTIVE, CANARY
from engine.types import AnswerReady, InboundMessage
from tests.conftest import Bot

TENANT = "slack:T1"


def message(text: str, message_id: str | None, *, user: str = "u1", channel: str = "c1",
            tenant: str = TENANT) -> InboundMessage:
    return InboundMessage(tenant_id=tenant, channel_id=channel, user_id=user, text=text,
                          message_id=message_id)


async def executions(bot: Bot) -> int:
    async with bot.rt.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Execution)) or 0)


async def test_redelivered_messages_arriving_together_are_recorded_once(bot: Bot) -> None:
    # 12 platform messages, each delivered three times at once (the platform's retries),
    # from three tenants, plus two messages without a platform id (never duplicates)
    deliveries = [message(f"objective {i}", f"m{i}", tenant=f"slack:T{i % 3}")
                  for i in range(12) for _ in range(3)]
    deliveries += [message("no id", None), message("no id", None)]
    results = await asyncio.gather(*(bot.service.handle_message(m) for m in deliveries))

    accepted = [r for r in results if r is not None]
    assert len(accepted) == 14
    assert len({r.execution_id for r in accepted}) == 14
    assert await executions(bot) == 14
    again = await bot.service.handle_message(message("objective 4", "m4", tenant="slack:T1"))
    assert again is None  # a later redelivery too
    await bot.drain()
    answered = {e.execution_id for e in bot.events("answer") if isinstance(e, AnswerReady)}
    assert answered == {r.execution_id for r in accepted}  # every one answered, once
    assert len(bot.events("answer")) == 14


async def test_a_label_moved_by_another_process_serves_the_next_message(bot: Bot) -> None:
    first = await bot.service.handle_message(message("hello", "m1"))
    assert first is not None and first.version == 1  # the labels are now cached here

    other = await build_runtime(bot.stack.config, NotifierRouter(), bot.stack.redis)
    try:  # another process promotes v2, then opens a canary v3 for u9
        async with other.repo(TENANT) as repo:
            for parent in (1, 2):
                await repo.create_version(
                    prompt=default_prompt(), model="scripted/default", temperature=0.0,
                    tools=[], parent_version=parent, created_by="test", rationale="test")
            await repo.move_label(ACTIVE, 2, reason="promote")
            await repo.move_label(CANARY, 3, reason="canary")
            await repo.set_label_audience(CANARY, ["u9"])
    finally:
        await close_runtime(other)

    member = await bot.service.handle_message(message("again", "m2", user="u1"))
    asker = await bot.service.handle_message(message("again", "m3", user="u9"))
    assert member is not None and asker is not None
    assert asker.version == 3
    assert member.version in (2, 3)  # v3 also serves a deterministic share of the others
    async with bot.rt.sessions() as session:
        rows = await session.execute(select(Execution.message_id, Execution.arm))
        arms = {message_id: arm for message_id, arm in rows}
    assert arms["m3"] == "canary"


async def test_the_home_channel_follows_the_last_mention(bot: Bot) -> None:
    for i, channel in enumerate(("c1", "c2", "c1")):
        await bot.service.handle_message(message("hi", f"m{i}", channel=channel))
    await bot.service.handle_message(message("by api", "m9", channel="api").model_copy(
        update={"announce_here": False}))
    async with bot.rt.sessions() as session:
        tenant = await session.get(Tenant, TENANT)
    assert tenant is not None and tenant.home_channel_id == "c1"


async def test_an_idle_tenant_leaves_nothing_cached(bot: Bot,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(5):
        await bot.service.handle_message(message("hi", f"m{i}", tenant=f"slack:T{i}"))
    writer = bot.service._ingress()
    assert isinstance(writer, IngressWriter) and len(writer.cache) == 5
    monkeypatch.setattr(engine.ingress, "SERVING_TTL_S", 0.0)  # everyone is idle now
    await bot.service.handle_message(message("still here", "m9", tenant="slack:T0"))
    assert set(writer.cache) <= {"slack:T0"} and set(writer._homes) <= {"slack:T0"}


async def test_a_deleted_tenant_starts_afresh(bot: Bot) -> None:
    from engine.privacy import delete_tenant_data

    await bot.service.handle_message(message("hi", "m1"))
    await delete_tenant_data(bot.rt, TENANT)
    accepted = await bot.service.handle_message(message("hi again", "m2"))
    assert accepted is not None and accepted.version == 1
    async with bot.rt.sessions() as session:
        assert await session.get(Tenant, TENANT) is not None
