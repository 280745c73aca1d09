"""Routing by confidence into a canary, the canary's verdict, and the degradation watch."""

from __future__ import annotations

import json

from engine.evolution.stats import in_canary
from engine.llm.default_script import default
from engine.llm.scripted import ScriptedReply, ScriptedRequest, register_script
from engine.storage.repo import CANARY
from engine.types import InboundMessage
from tests.conftest import Bot
from tests.engine.test_evolution_flow import TENANT, active_version, ask, rate

SHARED = "slack:TCANARY"  # a workspace: a request made there starts as a canary


def _medium_confidence(request: ScriptedRequest) -> ScriptedReply | str:
    """The default model, but reflection is only 0.6 confident (a canary either way: a request
    made in a workspace starts as one)."""
    if request.purpose != "reflect":
        return default(request)
    learnings = json.loads(str(default(request)))["learnings"]
    for learning in learnings:
        learning["confidence"] = 0.6
    return json.dumps({"learnings": learnings})


def _users(share: float, *, inside: bool, count: int) -> list[str]:
    found = [f"user{i}" for i in range(500) if in_canary(SHARED, f"user{i}", share) == inside]
    return found[:count]


async def _start_canary(bot: Bot) -> None:
    register_script("medium", _medium_confidence)
    bot.stack.config = bot.stack.config.model_copy(update={"evolver_model": "scripted/medium"})
    answer = await ask(bot, "Write the release note", user="seed", tenant=SHARED)
    await rate(bot, answer, 2, "mention the version number", user="seed", tenant=SHARED)
    await bot.drain()
    [announced] = bot.events("evolution")
    assert announced.decision == "canary" and announced.to_version == 2
    async with bot.rt.repo(SHARED) as repo:
        assert await repo.label(CANARY) == 2
    assert await active_version(bot, SHARED) == 1


def test_the_canary_split_is_deterministic_per_user() -> None:
    share = 0.2
    assignments = [in_canary(TENANT, f"user{i}", share) for i in range(2000)]
    assert assignments == [in_canary(TENANT, f"user{i}", share) for i in range(2000)]
    assert 0.15 < sum(assignments) / len(assignments) < 0.25
    # the same user id in another tenant is assigned independently
    others = [in_canary("local:other", f"user{i}", share) for i in range(2000)]
    assert others != assignments


async def test_canary_users_get_the_canary_and_good_ratings_promote_it(bot: Bot) -> None:
    await _start_canary(bot)
    share = bot.rt.settings.canary_share
    inside = _users(share, inside=True, count=5)
    outside = _users(share, inside=False, count=2)

    for user in outside:
        answer = await ask(bot, f"Status for {user}", user=user, tenant=SHARED)
        assert answer.version == 1
        await rate(bot, answer, 4, user=user, tenant=SHARED)
    for user in inside:
        answer = await ask(bot, f"Status for {user}", user=user, tenant=SHARED)
        assert answer.version == 2 and "canary" in answer.footer
        await rate(bot, answer, 5, user=user, tenant=SHARED)
    await bot.drain()

    assert await active_version(bot, SHARED) == 2
    async with bot.rt.repo(SHARED) as repo:
        assert await repo.label(CANARY) is None
        moves = [m.reason for m in await repo.label_moves()]
    assert "canary_promoted" in moves
    assert any("Canary promoted: v1 → v2" in n.document.summary for n in bot.events("notice"))


async def test_a_canary_rated_worse_is_dropped(bot: Bot) -> None:
    await _start_canary(bot)
    share = bot.rt.settings.canary_share
    for user in _users(share, inside=False, count=3):
        answer = await ask(bot, f"Status for {user}", user=user, tenant=SHARED)
        await rate(bot, answer, 5, user=user, tenant=SHARED)
    for user in _users(share, inside=True, count=5):
        answer = await ask(bot, f"Status for {user}", user=user, tenant=SHARED)
        assert answer.version == 2
        await rate(bot, answer, 1, user=user, tenant=SHARED)
    await bot.drain()

    assert await active_version(bot, SHARED) == 1
    async with bot.rt.repo(SHARED) as repo:
        assert await repo.label(CANARY) is None
        assert "canary_dropped" in [m.reason for m in await repo.label_moves()]
    assert any("dropped" in n.document.summary for n in bot.events("notice"))


async def test_a_promoted_version_rated_clearly_worse_is_rolled_back(bot: Bot) -> None:
    for i in range(5):  # v1 is liked
        answer = await ask(bot, f"Question {i}", user=f"fan{i}")
        await rate(bot, answer, 5, user=f"fan{i}")
    answer = await ask(bot, "One more", user="critic")
    await rate(bot, answer, 2, "always answer in one word", user="critic")
    await bot.drain()
    assert await active_version(bot) == 2

    for i in range(5):  # v2 is disliked by everyone
        answer = await bot.service.handle_message(
            InboundMessage(tenant_id=TENANT, channel_id="c1", user_id=f"user{i}",
                           text=f"Another {i}", message_id=f"after-{i}")
        )
        assert answer is not None
    await bot.drain()
    for event in bot.events("answer")[-5:]:
        assert event.version == 2
        await rate(bot, event, 1, user=event.user_id)
    await bot.drain()

    assert await active_version(bot) == 1
    [rolled] = bot.events("rollback")
    assert rolled.automatic and (rolled.from_version, rolled.to_version) == (2, 1)
    assert "P(worse)" in rolled.reason and "5 ratings" in rolled.reason
    async with bot.rt.repo(TENANT) as repo:
        assert (await repo.label_moves(1))[0].reason == "auto_rollback"
        fix = (await repo.evolutions(1))[0]
    assert fix.trigger == "rollback_and_fix"  # the failures go to a fix
