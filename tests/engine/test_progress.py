"""Progress figures: exact values on a scripted history, and what /status shows."""

from __future__ import annotations

import pytest

from engine.progress import ExecutionRecord, History, agent_progress, reasked_ids
from engine.types import ExecutionStatus
from tests.conftest import Bot
from tests.engine.test_evolution_flow import ask, command, rate

OK, FAILED = ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED


def record(id: int, version: int, ratings: tuple[int, ...] = (), *, status: str = OK,
           thread: str | None = None, user: str = "a", duration: float = 1.0,
           cost: float = 0.0) -> ExecutionRecord:
    return ExecutionRecord(id, version, status, "c", thread, user, duration, cost, ratings)


HISTORY = History(
    executions=[
        record(1, 1, (2,), thread="t1", duration=1.0, cost=0.01),
        record(2, 1, (2,), thread="t1", duration=3.0, cost=0.03),  # re-asks #1
        record(3, 1, status=FAILED),
        record(4, 1, (5,), duration=2.0, cost=0.02),
        record(5, 2, (4,)),
        record(6, 2, (5,), thread="t1", user="b"),  # another user: not a re-ask of #2
        record(7, 2, (4,)),
        record(8, 2, (5,)),
        record(9, 2, (4,), duration=2.0),
    ],
    evolutions=3,
    version_count=2,
)


def test_per_version_figures_are_exact() -> None:
    v1, v2 = agent_progress(HISTORY).versions
    assert (v1.answered, v1.infra_failures, v1.ratings) == (3, 1, 3)
    assert v1.average == pytest.approx(3.0)
    assert v1.success_rate == pytest.approx(1 / 3)
    assert v1.first_try_success == pytest.approx(2 / 3)
    assert (v1.latency_p50_s, v1.latency_p95_s) == (2.0, 3.0)
    assert v1.average_cost_usd == pytest.approx(0.02)
    assert (v2.ratings, v2.average, v2.success_rate) == (5, pytest.approx(4.4), 1.0)
    assert v2.first_try_success == 1.0


def test_agent_figures_are_exact() -> None:
    progress = agent_progress(HISTORY, rules=2, tools=1)
    assert progress.executions == 9
    assert progress.evolutions_per_100 == pytest.approx(100 * 3 / 9)
    # ratings 2,2,5,4,5 → 60 %; with #7's 4 the last five are 2,5,4,5,4 → 80 %
    assert progress.time_to_competence == 7
    assert (progress.rules, progress.tools, progress.version_count) == (2, 1, 2)


def test_a_reask_is_the_same_user_again_in_the_same_thread() -> None:
    assert reasked_ids(HISTORY.executions) == {1}


def test_never_competent_is_none() -> None:
    history = History([record(i, 1, (2,)) for i in range(1, 8)])
    assert agent_progress(history).time_to_competence is None


async def test_status_counts_good_answers_not_infrastructure_success(local_bot: Bot) -> None:
    first = await ask(local_bot, "What is 2+2?")
    second = await ask(local_bot, "What is 3+3?")
    await rate(local_bot, first, 2)
    await rate(local_bot, second, 2)
    reply = await command(local_bot, "status")
    text = reply.document.plain_text()
    assert "v1: 2.0 avg · 2 ratings · 0% good" in text, text
    assert "first try 100%" in text
    assert "Tool use" in text
