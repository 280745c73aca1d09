"""Work that needs no transaction runs without one (engine/storage/db.py): on PostgreSQL
an objective of a tenant whose labels are cached, an answer's job (its claim, load, stored
answer and the message it became), a reaction to a message that is no answer, and an
evolution's gathering of its feedback and opening of its row cost no BEGIN and COMMIT
round trips — and a connection that served such work serves whole
transactions again. Counted at asyncpg, the driver that sends them."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg.transaction
import pytest
from sqlalchemy import select

from engine.evolution.attempt import Attempt
from engine.evolution.gather import open_attempt
from engine.evolution.review import anything_to_review
from engine.execute import execute
from engine.storage.models import Evolution, Execution, Feedback
from engine.types import AnswerReady, FeedbackSource, InboundFeedback, InboundMessage, MessageRef
from tests.conftest import Bot

pytestmark = pytest.mark.parametrize("stack", ["services"], indirect=True)

TENANT = "slack:T1"


def reaction(answer: MessageRef, rating: int | None, *, retract: bool = False
             ) -> InboundFeedback:
    return InboundFeedback(tenant_id=TENANT, user_id="u1", source=FeedbackSource.REACTION,
                           rating=rating, retract=retract, answer_ref=answer)


def message(text: str, message_id: str, channel: str = "c1") -> InboundMessage:
    return InboundMessage(tenant_id=TENANT, channel_id=channel, user_id="u1", text=text,
                          message_id=message_id)


async def answered(bot: Bot, text: str, message_id: str) -> int:
    """An objective recorded, and its job run here: the execution id."""
    accepted = await bot.service.handle_message(message(text, message_id))
    assert accepted is not None
    assert await execute(bot.rt, accepted.execution_id) == "succeeded"
    return accepted.execution_id


@pytest.fixture
def committed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every transaction asyncpg commits from now on (a BEGIN … COMMIT on the wire; a
    pooled connection's ping rolls back, so it doesn't count)."""
    commits: list[str] = []
    original = asyncpg.transaction.Transaction.commit

    async def commit(self: asyncpg.transaction.Transaction) -> None:
        commits.append("COMMIT")
        await original(self)

    monkeypatch.setattr(asyncpg.transaction.Transaction, "commit", commit)
    yield commits


async def test_an_objective_of_a_known_tenant_is_one_insert(bot: Bot,
                                                             committed: list[str]) -> None:
    first = await bot.service.handle_message(message("hello", "m1"))
    assert first is not None
    assert len(committed) == 1  # the first message creates the tenant: a transaction

    later = await bot.service.handle_message(message("again", "m2"))
    again = await bot.service.handle_message(message("again", "m2"))  # a redelivery
    assert later is not None and again is None
    assert len(committed) == 1  # both were the INSERT alone

    moved = await bot.service.handle_message(message("elsewhere", "m3", channel="c2"))
    assert moved is not None
    assert len(committed) == 2  # the home channel moves with it: one transaction
    async with bot.rt.sessions() as session:
        recorded = list(await session.scalars(select(Execution.message_id)))
    assert sorted(recorded) == ["m1", "m2", "m3"]


async def test_an_answer_opens_no_transaction(bot: Bot, committed: list[str]) -> None:
    accepted = await bot.service.handle_message(message("what is 2+2", "m1"))
    assert accepted is not None
    committed.clear()
    assert await execute(bot.rt, accepted.execution_id) == "succeeded"  # the job's work
    answers = [e for e in bot.events("answer") if isinstance(e, AnswerReady)]
    assert [a.execution_id for a in answers] == [accepted.execution_id]
    # claim, load, stored answer and the message it became: one write each, or reads
    assert committed == []
    async with bot.rt.sessions() as session:
        row = await session.get(Execution, accepted.execution_id)
    assert row is not None and row.status == "succeeded" and row.output
    assert row.answer_message_id is not None  # remembered: reactions to it find the answer


async def test_a_connection_back_from_one_statement_serves_transactions(bot: Bot) -> None:
    accepted = await bot.service.handle_message(message("hello", "m1"))
    assert accepted is not None
    for attempt in range(8):  # more than the pool holds: every connection has served one
        await bot.service.handle_message(message("again", f"n{attempt}"))
        with pytest.raises(RuntimeError):
            async with bot.rt.repo(TENANT) as repo:
                await repo.update_execution(accepted.execution_id, objective="changed")
                raise RuntimeError("the transaction fails after its first statement")
    async with bot.rt.sessions() as session:
        row = await session.get(Execution, accepted.execution_id)
    assert row is not None and row.objective == "hello"  # rolled back every time


async def test_a_reaction_to_a_message_that_is_no_answer_is_one_select(
    bot: Bot, committed: list[str]
) -> None:
    execution_id = await answered(bot, "what is 2+2", "m1")
    async with bot.rt.sessions() as session:
        row = await session.get(Execution, execution_id)
    assert row is not None and row.answer_message_id is not None
    answer_ref = MessageRef(channel_id=row.answer_channel_id, message_id=row.answer_message_id)
    committed.clear()

    elsewhere = MessageRef(channel_id="c1", message_id="someone else's message")
    ignored = await bot.service.handle_feedback(reaction(elsewhere, 5))
    assert not ignored.recorded
    assert committed == []  # found nothing in one statement

    # a rating, changed, then taken back: each recorded in one transaction
    for feedback in (reaction(answer_ref, 5), reaction(answer_ref, 1),
                     reaction(answer_ref, None, retract=True)):
        result = await bot.service.handle_feedback(feedback)
        assert result.recorded and result.execution_id == execution_id
    assert len(committed) == 3
    async with bot.rt.sessions() as session:
        [rating] = list(await session.scalars(select(Feedback)))
    assert (rating.rating, rating.retracted) == (1, True)


async def test_an_evolution_gathers_and_opens_without_a_transaction(
    bot: Bot, committed: list[str]
) -> None:
    execution_id = await answered(bot, "what is 2+2", "m1")
    rated = await bot.service.handle_feedback(InboundFeedback(
        tenant_id=TENANT, user_id="u1", source=FeedbackSource.REACTION, rating=1,
        comment="answer in French please", execution_id=execution_id))
    assert rated.evolution_queued
    committed.clear()

    assert not await anything_to_review(bot.rt, TENANT)  # one version, no tools yet
    attempt = await open_attempt(bot.rt, TENANT, "feedback")
    assert committed == []  # reads, then one INSERT
    async with bot.rt.sessions() as session:
        [evolution] = list(await session.scalars(select(Evolution)))
    assert isinstance(attempt, Attempt) and attempt.evolution_id == evolution.id
    assert evolution.feedback_ids and evolution.base_version == 1
