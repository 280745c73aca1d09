"""Is the agent getting better? Per-version and per-agent figures computed from the history.

Pure functions over plain records (`History`), so the figures are exact and testable; one
loader reads them from the database. `/status` shows them; anything else that reports
progress (an API, a dashboard) reuses `agent_progress`.

Definitions:
- success rate: the share of ratings that are 4 or 5 (good answers, not "no crash");
  executions that failed on infrastructure are counted apart and never rated;
- first-try success: the share of answered objectives the same user did not ask again in the
  same thread (a re-ask means the first answer didn't do);
- time to competence: how many executions it took until the rolling success rate over the
  last `COMPETENCE_WINDOW` ratings first reached 80%.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from engine.ratings import is_negative
from engine.storage.repo import TenantRepo
from engine.types import ExecutionStatus

T = TypeVar("T")
COMPETENCE_WINDOW = 5
COMPETENCE_RATE = 0.8


@dataclass(frozen=True)
class ExecutionRecord:
    id: int
    version: int
    status: str
    channel_id: str
    thread_id: str | None
    user_id: str
    duration_s: float
    cost_usd: float
    ratings: tuple[int, ...] = ()  # live ratings of this answer


@dataclass(frozen=True)
class VersionProgress:
    version: int
    answered: int
    infra_failures: int
    ratings: int
    average: float | None
    success_rate: float | None  # share of ratings >= 4
    first_try_success: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    average_cost_usd: float | None


@dataclass(frozen=True)
class AgentProgress:
    versions: list[VersionProgress]
    version_count: int
    executions: int
    evolutions: int
    time_to_competence: int | None  # executions until competent; None: not yet
    rules: int = 0
    tools: int = 0
    subagents: int = 0
    patterns: int = 0

    @property
    def evolutions_per_100(self) -> float:
        return 100 * self.evolutions / self.executions if self.executions else 0.0


@dataclass
class History:
    executions: list[ExecutionRecord] = field(default_factory=list)  # in order of creation
    evolutions: int = 0
    version_count: int = 1


async def load_history(repo: TenantRepo) -> History:
    """The tenant's executions (oldest first) with their live ratings."""
    ratings: dict[int, list[int]] = {}
    for execution_id, rating in await repo.live_ratings():
        ratings.setdefault(execution_id, []).append(rating)
    executions = [
        ExecutionRecord(
            id=row.id, version=row.version, status=row.status, channel_id=row.channel_id,
            thread_id=row.thread_id, user_id=row.user_id, duration_s=row.duration_s,
            cost_usd=row.cost_usd, ratings=tuple(ratings.get(row.id, ())),
        )
        for row in await repo.execution_summaries()
    ]
    return History(executions, await repo.evolution_count(), await repo.version_count())


def version_progress(history: History) -> list[VersionProgress]:
    versions = sorted({e.version for e in history.executions})
    reasked = reasked_ids(history.executions)
    return [_one_version(v, history.executions, reasked) for v in versions]


def _one_version(version: int, executions: list[ExecutionRecord], reasked: set[int]
                 ) -> VersionProgress:
    mine = [e for e in executions if e.version == version]
    answered = [e for e in mine if e.status == ExecutionStatus.SUCCEEDED]
    ratings = [r for e in answered for r in e.ratings]
    durations = [e.duration_s for e in answered]
    return VersionProgress(
        version=version,
        answered=len(answered),
        infra_failures=sum(1 for e in mine if e.status == ExecutionStatus.FAILED),
        ratings=len(ratings),
        average=statistics.fmean(ratings) if ratings else None,
        success_rate=_share(ratings, lambda r: not is_negative(r)),
        first_try_success=_share(answered, lambda e: e.id not in reasked),
        latency_p50_s=_percentile(durations, 0.5),
        latency_p95_s=_percentile(durations, 0.95),
        average_cost_usd=statistics.fmean(e.cost_usd for e in answered) if answered else None,
    )


def reasked_ids(executions: list[ExecutionRecord]) -> set[int]:
    """Executions followed by another objective of the same user in the same thread."""
    last_in_thread: dict[tuple[str, str, str], int] = {}
    reasked: set[int] = set()
    for e in executions:
        if e.thread_id is None:
            continue
        key = (e.channel_id, e.thread_id, e.user_id)
        if key in last_in_thread:
            reasked.add(last_in_thread[key])
        last_in_thread[key] = e.id
    return reasked


def time_to_competence(executions: list[ExecutionRecord]) -> int | None:
    """Executions until the rolling success rate of the last ratings first reaches 80%."""
    window: list[int] = []
    for count, execution in enumerate(executions, 1):
        for rating in execution.ratings:
            window = [*window, rating][-COMPETENCE_WINDOW:]
            good = sum(1 for r in window if not is_negative(r))
            if len(window) == COMPETENCE_WINDOW and good / len(window) >= COMPETENCE_RATE:
                return count
    return None


def agent_progress(history: History, *, rules: int = 0, tools: int = 0, subagents: int = 0,
                   patterns: int = 0) -> AgentProgress:
    return AgentProgress(
        versions=version_progress(history),
        version_count=history.version_count,
        executions=len(history.executions),
        evolutions=history.evolutions,
        time_to_competence=time_to_competence(history.executions),
        rules=rules, tools=tools, subagents=subagents, patterns=patterns,
    )


def _share(items: Sequence[T], good: Callable[[T], bool]) -> float | None:
    if not items:
        return None
    return sum(1 for x in items if good(x)) / len(items)


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]
