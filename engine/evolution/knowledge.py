"""The evolution's use of the knowledge store: what was learned before, what is learned now.

The store is an aid, never a requirement: when it fails the evolution goes on without it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from engine.evolution.attempt import Attempt
from engine.evolution.checks import text_problems
from engine.evolution.reflect import Learning, RatedExample
from engine.knowledge.records import NewLearning, RatedObjective
from engine.runtime import Runtime

log = logging.getLogger(__name__)

SHARED_PATTERN_MAX_CONFIDENCE = 0.6  # someone else's lesson never promotes straight away
GOOD_AT_LEAST = 4  # a rating this good says the answer worked


SUCCESS_PATTERN = "success_pattern"


@dataclass(frozen=True)
class Lessons:
    """What the knowledge store says about this feedback's objectives."""

    learnings: list[str]  # learned before: the reflection builds on them
    success_patterns: list[str]  # what worked: the reflection keeps doing it


async def past_lessons(rt: Runtime, attempt: Attempt) -> Lessons:
    """Learnings and success patterns relevant to this feedback's objectives."""
    query = " ".join(e.objective for e in attempt.examples)[:1000]
    try:
        hits = await rt.knowledge.relevant_learnings(
            attempt.tenant_id, query, privacy_mode=attempt.privacy, k=10
        )
    except Exception:
        log.exception("knowledge lookup failed; reflecting without it")
        return Lessons([], [])
    return Lessons(
        learnings=[h.text for h in hits if h.type != SUCCESS_PATTERN][:5],
        success_patterns=[h.text for h in hits if h.type == SUCCESS_PATTERN and not h.shared][:5],
    )


async def consolidate_success(rt: Runtime, attempt: Attempt) -> int:
    """What worked (answers rated 4-5) becomes the tenant's success patterns, in one write;
    how many. They hold answer text, so they stay the tenant's own whatever its privacy
    mode."""
    patterns = [
        NewLearning(success_pattern(example), type=SUCCESS_PATTERN,
                    confidence=example.rating / 5, impact=0.5)
        for example in attempt.examples
        if example.rating is not None and example.rating >= GOOD_AT_LEAST and example.answer
    ]
    if not patterns:
        return 0
    try:
        await rt.knowledge.add_learnings(attempt.tenant_id, patterns, privacy_mode="isolated")
    except Exception:
        log.exception("storing the success patterns failed")
        return 0
    return len(patterns)


def success_pattern(example: RatedExample) -> str:
    return (
        f"Rated {example.rating}/5 for \"{example.objective[:160]}\": "
        f"answered \"{example.answer[:240]}\""
    )


async def shared_patterns(rt: Runtime, attempt: Attempt) -> list[Learning]:
    """The best patterns other workspaces shared, as learnings for a bootstrap."""
    try:
        hits = await rt.knowledge.bootstrap_rules(
            attempt.tenant_id, privacy_mode=attempt.privacy, k=3
        )
    except Exception:
        log.exception("bootstrap lookup failed")
        return []
    return [
        Learning(
            suggested_change=hit.text,
            issue="a pattern other workspaces learned",
            rationale=f"shared pattern (confidence {hit.confidence:.2f})",
            confidence=min(hit.confidence, SHARED_PATTERN_MAX_CONFIDENCE),
            impact=hit.impact,
        )
        for hit in hits
    ]


async def record_rated_objectives(rt: Runtime, attempt: Attempt) -> None:
    """Rated objectives become searchable history: badly rated ones carry their lesson —
    the learning drawn from their feedback, else the comment itself. A lesson is later shown
    to the agent, so only text that passed the injection and secret checks is kept. One
    write for them all (see docs/ARCHITECTURE.md, "Flow 2")."""
    lessons = {i: x.suggested_change for x in attempt.learnings for i in x.feedback_ids}
    rated = []
    for example in attempt.examples:
        if example.rating is None or not example.objective.strip():
            continue
        lesson = lessons.get(example.feedback_id) or (example.comment or "")
        if text_problems(lesson):
            lesson = ""
        rated.append(RatedObjective(example.objective, example.rating, lesson[:300]))
    if not rated:
        return
    try:
        await rt.knowledge.record_objectives(attempt.tenant_id, rated)
    except Exception:
        log.exception("recording the rated objectives failed")


async def remember_accepted_learnings(rt: Runtime, attempt: Attempt) -> None:
    """Only learnings that passed validation become knowledge (and, by mode, shared), in one
    write."""
    async with rt.repo(attempt.tenant_id) as repo:
        tenant = await repo.tenant()
        domain = tenant.domain if tenant else "general"
    accepted = [
        NewLearning(x.suggested_change, domain, x.type, x.confidence, x.impact)
        for x in attempt.learnings
        if x.type == "prompt_rule" and x.suggested_change.strip()
    ]
    if not accepted:
        return
    try:
        await rt.knowledge.add_learnings(attempt.tenant_id, accepted, privacy_mode=attempt.privacy)
    except Exception:
        log.exception("storing the learnings failed")
