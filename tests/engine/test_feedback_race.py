"""A comment that arrives while an evolution is running is never lost: the evolution marks
only the feedback it read as it read it, and a changed rating is unused again even if an
evolution marked it in between."""

from __future__ import annotations

from engine.service import _record
from engine.storage.models import Feedback
from engine.types import FeedbackSource, InboundFeedback
from tests.conftest import Bot
from tests.engine.test_evolution_flow import TENANT, ask, rate


async def _feedback(bot: Bot, feedback_id: int) -> Feedback:
    async with bot.rt.sessions() as session:
        row = await session.get(Feedback, feedback_id)
        assert row is not None
        return row


async def test_a_comment_after_the_evolution_read_the_rating_stays_for_the_next_one(
    bot: Bot,
) -> None:
    answer = await ask(bot, "Summarise the sales call")
    await rate(bot, answer, 2)  # the 👎, without a comment yet
    async with bot.rt.repo(TENANT) as repo:  # an evolution reads the waiting feedback …
        [(feedback, _)] = await repo.unused_feedback()
        read = {feedback.id: feedback.updated_at}
        evolution = await repo.add_evolution(trigger="feedback", base_version=1)
    await rate(bot, answer, 2, "answer in French please")  # … the comment lands meanwhile …
    async with bot.rt.repo(TENANT) as repo:  # … and the evolution finishes
        assert await repo.mark_feedback_used(read, evolution.id) == []
    row = await _feedback(bot, feedback.id)
    assert (row.comment, row.used_in_evolution) == ("answer in French please", None)


async def test_a_change_wins_over_a_mark_made_after_it_was_loaded(bot: Bot) -> None:
    answer = await ask(bot, "Summarise the sales call")
    await rate(bot, answer, 2)
    async with bot.rt.repo(TENANT) as repo:
        [(feedback, _)] = await repo.unused_feedback()
        evolution = await repo.add_evolution(trigger="feedback", base_version=1)
    comment = InboundFeedback(tenant_id=TENANT, user_id="u1", source=FeedbackSource.COMMENT,
                              comment="answer in French please")
    async with bot.rt.repo(TENANT) as comment_repo:
        loaded = await comment_repo.feedback_for(answer.execution_id, "u1")  # unused here …
        assert loaded is not None and loaded.used_in_evolution is None
        async with bot.rt.repo(TENANT) as evolution_repo:  # … an evolution marks it used …
            await evolution_repo.mark_feedback_used(
                {feedback.id: feedback.updated_at}, evolution.id
            )
        await _record(comment_repo, loaded, answer.execution_id, comment)  # … the comment
    row = await _feedback(bot, feedback.id)
    assert (row.comment, row.used_in_evolution) == ("answer in French please", None)
