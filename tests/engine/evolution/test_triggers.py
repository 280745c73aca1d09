"""Every trigger is a real path: each fires from its condition and is recorded by name on the
evolution row (real stack, scripted model, real embeddings)."""

from __future__ import annotations

from sqlalchemy import select

from engine.jobs.reconciler import queue_periodic_evolutions
from engine.llm.scripted import CALLS
from engine.storage.models import Evolution, Feedback
from tests.conftest import Bot
from tests.engine.test_evolution_flow import TENANT, active_version, ask, rate
from tests.engine.tools.helpers import install_tool

ECHO = "def echo_text(text):\n    return text.upper()\n"


async def _evolutions(bot: Bot) -> list[Evolution]:
    async with bot.rt.repo(TENANT) as repo:
        return list(reversed(await repo.evolutions(25)))  # oldest first


async def _feedback_ids(bot: Bot, execution_ids: list[int]) -> list[int]:
    async with bot.rt.repo(TENANT) as repo:
        rows = await repo.session.scalars(
            select(Feedback).where(Feedback.execution_id.in_(execution_ids))
        )
        return sorted(f.id for f in rows)


async def test_a_new_objective_type_evolves_at_once_and_a_familiar_one_is_feedback(
    bot: Bot,
) -> None:
    first = await ask(bot, "What is the capital of France?")
    assert not (await rate(bot, first, 5)).evolution_queued  # a good rating just feeds one
    result = await rate(bot, first, 3)  # not good, no comment: only its novelty queues it
    assert result.evolution_queued
    await bot.drain()

    second = await ask(bot, "What is the capital of Spain?")
    async with bot.rt.repo(TENANT) as repo:
        execution = await repo.execution(second.execution_id)
    assert execution is not None and execution.novelty is not None
    assert execution.novelty < bot.rt.settings.novelty_distance  # seen this kind before
    await rate(bot, second, 2, "answer in French please")
    await bot.drain()

    novel, familiar = await _evolutions(bot)
    assert (novel.trigger, novel.validation["triggers"]) == (
        "new_objective_type", ["new_objective_type"])
    assert (familiar.trigger, familiar.decision) == ("feedback", "promoted")
    [announced] = bot.events("evolution")
    assert "trigger: feedback" in announced.document.plain_text()


async def test_repeated_failures_on_similar_objectives_focus_an_evolution(bot: Bot) -> None:
    objectives = ["How do I reset my password?", "How can I reset my password?",
                  "I forgot my password, how do I reset it?"]
    similar = [await ask(bot, text) for text in objectives]
    unrelated = await ask(bot, "Recommend a good pizza place")
    for answer in [*similar, unrelated]:
        await rate(bot, answer, 1)  # no comments at all
    await bot.drain()

    focused, rest = await _evolutions(bot)
    assert focused.trigger == "repeated_failure"
    assert focused.validation["triggers"][0] == "repeated_failure"
    assert focused.feedback_ids == await _feedback_ids(bot, [a.execution_id for a in similar])
    reflection = next(c for c in CALLS if c.purpose == "reflect")
    data = reflection.data()
    assert sorted(data["repeated_failure"]["objectives"]) == sorted(objectives)
    assert [f["objective"] for f in data["feedback"]] == objectives
    # inferred from ratings alone, and the judge sees no difference: not promoted
    assert focused.decision == "rejected" and focused.reason.startswith("replay gate:")
    assert await active_version(bot) == 1
    # the feedback it left aside got its own evolution
    assert rest.feedback_ids == await _feedback_ids(bot, [unrelated.execution_id])
    assert rest.trigger != "repeated_failure"


async def test_a_rolling_window_rolls_back_and_fixes_from_the_failures(bot: Bot) -> None:
    for i in range(5):  # v1 is liked
        answer = await ask(bot, f"Question {i}", user=f"fan{i}")
        await rate(bot, answer, 5, user=f"fan{i}")
    await bot.drain()
    # a version no evolution made (so the parent watch leaves it alone)
    assert await install_tool(bot, "echo_text", ECHO) == 2

    failures = []
    for i in range(5):
        answer = await ask(bot, f"Another thing {i}", user=f"user{i}")
        assert answer.version == 2
        failures.append(answer.execution_id)
        await rate(bot, answer, 1, user=f"user{i}")
        if i == 2:  # an evolution reads the first three before the window has enough
            await bot.rt.queue.enqueue_evolution(TENANT)
            await bot.drain()
            assert await active_version(bot) == 2
            async with bot.rt.repo(TENANT) as repo:
                left = await repo.unused_feedback()
                assert left == [], [(f.rating, e.objective, f.used_in_evolution) for f, e in left]
    await bot.drain()

    assert await active_version(bot) == 1
    [rolled] = bot.events("rollback")
    assert rolled.automatic and (rolled.from_version, rolled.to_version) == (2, 1)
    assert rolled.reason.startswith("rolling window: v2: 0 of its last 5 ratings good vs v1's "
                                    "5 of 5")
    fix = (await _evolutions(bot))[-1]
    assert fix.trigger == "rollback_and_fix"
    assert set(await _feedback_ids(bot, failures)) <= set(fix.feedback_ids)


async def test_a_periodic_evolution_consolidates_what_worked(bot: Bot) -> None:
    for text, rating in (("Summarise the sales call", 5), ("Draft a welcome email", 5),
                         ("List the open tickets", 4)):
        await rate(bot, await ask(bot, text), rating)
    await bot.drain()

    assert await queue_periodic_evolutions(bot.rt) == 1
    await bot.drain()
    periodic = (await _evolutions(bot))[-1]
    assert periodic.trigger == "periodic" and periodic.decision == "skipped"
    assert periodic.reason == "consolidated 3 success patterns; nothing to change"
    assert len(periodic.feedback_ids) == 3  # good answers other evolutions had read too
    hits = await bot.rt.knowledge.relevant_learnings(TENANT, "sales call", k=10)
    patterns = [h.text for h in hits if h.type == "success_pattern"]
    assert len(patterns) == 3
    assert 'Rated 5/5 for "Summarise the sales call"' in " ".join(patterns)

    CALLS.clear()
    answer = await ask(bot, "Summarise the support call")
    await rate(bot, answer, 2, "list the action items")
    await bot.drain()
    [reflection] = [c for c in CALLS if c.purpose == "reflect"]
    kept = reflection.last_user.split("<keep_doing>", 1)[1].split("</keep_doing>", 1)[0]
    assert 'Rated 5/5 for \\"Summarise the sales call\\"' in kept
    assert "</data>" in reflection.last_user.split("<keep_doing>", 1)[0]  # apart from the data
