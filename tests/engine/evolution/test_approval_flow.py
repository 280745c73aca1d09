"""A low-confidence evolution waits for an admin: apply, dismiss, or find it outdated."""

from __future__ import annotations

import json

from engine.llm.default_script import default
from engine.llm.scripted import ScriptedReply, ScriptedRequest, register_script
from engine.storage.repo import ACTIVE
from engine.types import EvolutionAnnounced
from tests.conftest import Bot
from tests.engine.test_evolution_flow import TENANT, active_version, ask, command, rate


def _hesitant(request: ScriptedRequest) -> ScriptedReply | str:
    """The default model, but reflection is only 0.3 confident and cites no feedback: a
    lesson inferred, not a request carried out — an admin must approve it."""
    if request.purpose != "reflect":
        return default(request)
    learnings = json.loads(str(default(request)))["learnings"]
    for learning in learnings:
        learning["confidence"] = 0.3
        learning["feedback_ids"] = []
    return json.dumps({"learnings": learnings})


async def _propose(bot: Bot) -> EvolutionAnnounced:
    register_script("hesitant", _hesitant)
    bot.stack.config = bot.stack.config.model_copy(update={"evolver_model": "scripted/hesitant"})
    answer = await ask(bot, "Write the release note")
    await rate(bot, answer, 2, "mention the version number")
    await bot.drain()
    [announced] = bot.events("evolution")
    assert isinstance(announced, EvolutionAnnounced)
    return announced


async def test_an_admin_applies_a_proposal_that_waits_for_approval(bot: Bot) -> None:
    proposal = await _propose(bot)
    assert proposal.decision == "needs_approval" and proposal.to_version is None
    assert "+1. Mention the version number." in proposal.diff
    buttons = {b.action: b.value for b in proposal.document.buttons}
    assert buttons == {"apply": str(proposal.evolution_id), "dismiss": str(proposal.evolution_id)}
    assert await active_version(bot) == 1

    applied = await command(bot, "apply", str(proposal.evolution_id))
    assert "Applied: v2 is now active." in applied.document.plain_text()
    assert await active_version(bot) == 2
    assert any(n.document.summary == "Approved by admin: v1 → v2" for n in bot.events("notice"))
    again = await command(bot, "apply", str(proposal.evolution_id))
    assert "not waiting for approval" in again.document.plain_text()


async def test_a_dismissed_proposal_can_no_longer_be_applied(bot: Bot) -> None:
    proposal = await _propose(bot)
    dismissed = await command(bot, "dismiss", str(proposal.evolution_id))
    assert "Dismissed." in dismissed.document.plain_text()
    later = await command(bot, "apply", str(proposal.evolution_id))
    assert "not waiting for approval" in later.document.plain_text()
    assert await active_version(bot) == 1
    async with bot.rt.repo(TENANT) as repo:
        [evolution] = await repo.evolutions()
    assert (evolution.decision, evolution.reason) == ("rejected", "dismissed by admin")


async def test_a_proposal_made_for_an_older_version_is_outdated(bot: Bot) -> None:
    proposal = await _propose(bot)
    async with bot.rt.repo(TENANT) as repo:  # an admin changed the agent meanwhile
        base = await repo.active_version()
        newer = await repo.create_version(
            prompt=base.prompt, model=base.model, temperature=base.temperature, tools=[],
            parent_version=base.version, created_by="human", rationale="edited by hand",
        )
        await repo.move_label(ACTIVE, newer, reason="promote", actor="admin")

    reply = await command(bot, "apply", str(proposal.evolution_id))
    assert "The agent changed since (now v2); this proposal is outdated." in (
        reply.document.plain_text()
    )
    assert await active_version(bot) == 2
    async with bot.rt.repo(TENANT) as repo:
        [evolution] = await repo.evolutions()
    assert evolution.decision == "skipped"
