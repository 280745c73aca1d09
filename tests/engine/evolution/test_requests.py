"""Decisions that respect what users said: a request in a comment needs no regression on
replay, and reaches who asked; an inference from ratings must win; a weak judge is no evidence
(real stack, scripted model)."""

from __future__ import annotations

import json

from sqlalchemy import select

from engine.evolution.stats import in_canary
from engine.llm.default_script import default
from engine.llm.scripted import CALLS, ScriptedReply, ScriptedRequest, register_script
from engine.storage.models import Evolution, Label
from engine.storage.repo import CANARY
from engine.types import EvolutionAnnounced, FeedbackCategory, FeedbackSource, InboundFeedback
from tests.conftest import Bot
from tests.engine.test_evolution_flow import active_version, ask, command, rate

ONE_PERSON = "local:solo"
WORKSPACE = "slack:TREQUESTS"
COMMENT = "put the plan in a table"


def _tie_judge(request: ScriptedRequest) -> ScriptedReply | str:
    """A judge that can't tell answers apart."""
    if request.purpose == "judge":
        return json.dumps({"winner": "tie", "reason": "can't tell"})
    return default(request)


def _inferring_reflector(request: ScriptedRequest) -> ScriptedReply | str:
    """Reflection that infers a rule from the ratings alone (it cites no comment)."""
    if request.purpose != "reflect":
        return default(request)
    ids = [item["feedback_id"] for item in request.data()["feedback"]]
    return json.dumps({"learnings": [{
        "type": "prompt_rule", "issue": "low ratings", "suggested_change": "Be more thorough.",
        "rationale": "answers were rated low", "confidence": 0.9, "impact": 0.6,
        "feedback_ids": ids,
    }]})


def _use(bot: Bot, **models: str) -> None:
    register_script("tie", _tie_judge)
    register_script("inferring", _inferring_reflector)
    bot.stack.config = bot.stack.config.model_copy(update=models)


def _details(announced: EvolutionAnnounced) -> str:
    return [b.text for b in announced.document.blocks if b.kind == "context"][-1]


def _user(tenant: str, *, in_share: bool, skip: tuple[str, ...] = ()) -> str:
    return next(f"user{i}" for i in range(500)
                if in_canary(tenant, f"user{i}", 0.2) == in_share and f"user{i}" not in skip)


async def _only_evolution(bot: Bot, tenant: str) -> Evolution:
    async with bot.rt.repo(tenant) as repo:
        [evolution] = await repo.evolutions()
    return evolution


async def test_a_request_in_a_one_person_chat_is_promoted_when_the_replay_ties(bot: Bot) -> None:
    _use(bot, judge_model="scripted/tie")
    answer = await ask(bot, "Plan my week", tenant=ONE_PERSON)
    await rate(bot, answer, 2, COMMENT, tenant=ONE_PERSON)
    await bot.drain()

    [announced] = bot.events("evolution")
    assert (announced.decision, announced.to_version) == ("promoted", 2)
    assert announced.replay_summary == "replayed 1: 1 same"
    assert _details(announced).startswith(
        "from your comment · replay: no regressions (replayed 1: 1 same) · "
        "promoted (one-person chat) · trigger: new_objective_type"
    )
    assert await active_version(bot, ONE_PERSON) == 2
    evolution = await _only_evolution(bot, ONE_PERSON)
    assert evolution.validation["request"] == {"askers": ["u1"], "from_admin": False}


async def test_a_request_in_a_workspace_is_a_canary_for_whoever_asked(bot: Bot) -> None:
    _use(bot, judge_model="scripted/tie")
    asker = _user(WORKSPACE, in_share=False)
    answer = await ask(bot, "Plan my week", user=asker, tenant=WORKSPACE)
    await rate(bot, answer, 2, COMMENT, user=asker, tenant=WORKSPACE)
    await bot.drain()

    [announced] = bot.events("evolution")
    assert (announced.decision, announced.to_version) == ("canary", 2)
    assert "from your comment · replay: no regressions (replayed 1: 1 same) · canary for you " \
           "and 20% of the workspace" in _details(announced)
    async with bot.rt.repo(WORKSPACE) as repo:
        label = await repo.session.scalar(select(Label).where(Label.name == CANARY,
                                                              Label.tenant_id == WORKSPACE))
    assert label is not None and (label.version, label.audience) == (2, [asker])
    assert await active_version(bot, WORKSPACE) == 1

    mine = await ask(bot, "Plan my next week", user=asker, tenant=WORKSPACE)
    assert mine.version == 2 and "canary" in mine.footer and "Put the plan in a table." in mine.text
    outsider = _user(WORKSPACE, in_share=False, skip=(asker,))
    assert (await ask(bot, "Plan my week", user=outsider, tenant=WORKSPACE)).version == 1
    insider = _user(WORKSPACE, in_share=True)
    assert (await ask(bot, "Plan my week", user=insider, tenant=WORKSPACE)).version == 2


async def test_a_request_an_admin_made_is_promoted_at_once(bot: Bot) -> None:
    _use(bot, judge_model="scripted/tie")
    answer = await ask(bot, "Plan my week", user="boss", tenant=WORKSPACE)
    await rate(bot, answer, 2, COMMENT, user="boss", tenant=WORKSPACE, admin=True)
    await bot.drain()

    [announced] = bot.events("evolution")
    assert (announced.decision, announced.to_version) == ("promoted", 2)
    assert "· promoted at once (an admin asked) ·" in _details(announced)
    assert await active_version(bot, WORKSPACE) == 2
    assert (await ask(bot, "Plan my week", user="someone", tenant=WORKSPACE)).version == 2


async def test_an_inference_from_ratings_alone_is_not_promoted_on_a_tie(bot: Bot) -> None:
    _use(bot, judge_model="scripted/tie", evolver_model="scripted/inferring")
    answer = await ask(bot, "Plan my week", tenant=ONE_PERSON)
    await rate(bot, answer, 1, tenant=ONE_PERSON)
    await bot.drain()

    assert bot.events("evolution") == []
    assert await active_version(bot, ONE_PERSON) == 1
    evolution = await _only_evolution(bot, ONE_PERSON)
    assert (evolution.decision, evolution.reason) == ("rejected", "replay gate: replayed 1: 1 same")
    assert "request" not in evolution.validation
    [notice] = [n for n in bot.events("notice") if "no change" in n.document.summary]
    assert f"Evolution #{evolution.id}: no change" in notice.document.summary


async def test_a_weak_judge_is_recorded_and_never_asked(bot: Bot) -> None:
    _use(bot, judge_model="local/smollm2")  # never loaded: the weak-judge path doesn't call it
    answer = await ask(bot, "Plan my week", tenant=ONE_PERSON)
    await rate(bot, answer, 2, COMMENT, tenant=ONE_PERSON)
    await bot.drain()

    [announced] = bot.events("evolution")
    assert announced.decision == "promoted" and announced.replay_summary == ""
    assert "from your comment · judge too weak to compare answers (local/smollm2): not " \
           "replayed · promoted (one-person chat)" in _details(announced)
    evolution = await _only_evolution(bot, ONE_PERSON)
    assert evolution.validation["judge"]["model"] == "local/smollm2"
    assert evolution.validation["judge"]["weak"] is True
    assert "replay" not in evolution.validation
    assert not [c for c in CALLS if c.purpose in ("judge", "replay")]
    listing = (await command(bot, "evolutions", tenant=ONE_PERSON)).document.plain_text()
    assert "not replayed (judge local/smollm2 too weak)" in listing


async def test_with_a_weak_judge_an_inference_is_not_promoted(bot: Bot) -> None:
    _use(bot, judge_model="local/smollm2", evolver_model="scripted/inferring")
    answer = await ask(bot, "Plan my week", tenant=ONE_PERSON)
    await rate(bot, answer, 1, tenant=ONE_PERSON)
    await bot.drain()

    assert await active_version(bot, ONE_PERSON) == 1
    evolution = await _only_evolution(bot, ONE_PERSON)
    assert evolution.decision == "rejected"
    assert evolution.reason.startswith("no evidence without a capable judge: local/smollm2")
    assert evolution.validation["judge"]["weak"] is True
    assert not [c for c in CALLS if c.purpose in ("judge", "replay")]


async def test_categories_and_suggestions_reach_the_reflection(bot: Bot) -> None:
    answer = await ask(bot, "Explain the outage", tenant=ONE_PERSON)
    await bot.service.handle_feedback(InboundFeedback(
        tenant_id=ONE_PERSON, user_id="u1", source=FeedbackSource.COMMENT, rating=2,
        comment="far too wordy", category=FeedbackCategory.TOO_LONG,
        suggestion="Two sentences: what broke, and when it was fixed.",
        execution_id=answer.execution_id,
    ))
    await bot.drain()

    [reflection] = [c for c in CALLS if c.purpose == "reflect"]
    [item] = reflection.data()["feedback"]
    assert item["category"] == "too_long"
    assert item["suggestion"] == "Two sentences: what broke, and when it was fixed."
    assert item["comment"] == "far too wordy"
