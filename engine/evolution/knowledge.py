"""The evolution's use of the knowledge store: what was learned before, what is learned now.

The store is an aid, never a requirement: when it fails the evolution goes on without it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from engine.evolution.attempt import Attempt
from engine.evolution.checks import text_problems
from engine.evolution.reflect import Learning, RatedExample
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
    """What worked (answers rated 4-5) becomes the tenant's success patterns; how many.
    They hold answer text, so they stay the tenant's own whatever its privacy mode."""
    stored = 0
    for example in attempt.examples:
        if example.rating is None or example.rating < GOOD_AT_LEAST or not example.answer:
            continue
        try:
            await rt.knowledge.add_learning(
                attempt.tenant_id, success_pattern(example), type=SUCCESS_PATTERN,
                confidence=example.rating / 5, impact=0.5, privacy_mode="isolated",
            )
        except Exception:
            log.exception("storing a success pattern failed")
            continue
        stored += 1
    return stored


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
    to the agent, so only text that passed the injection and secret checks is kept."""
    lessons = {i: x.suggested_change for x in attempt.learnings for i in x.feedback_ids}
    for example in attempt.examples:
        if example.rating is None:
            continue
        lesson = lessons.get(example.feedback_id) or (example.comment or "")
        if text_problems(lesson):
            lesson = ""
        try:
            await rt.knowledge.record_objective(
                attempt.tenant_id, example.objective, outcome_rating=example.rating,
                lesson=lesson[:300],
            )
        except Exception:
            log.exception("recording an objective failed")


async def remember_accepted_learnings(rt: Runtime, attempt: Attempt) -> None:
    """Only learnings that passed validation become knowledge (and, by mode, shared)."""
    async with rt.repo(attempt.tenant_id) as repo:
        tenant = await repo.tenant()
        domain = tenant.domain if tenant else "general"
    for learning in attempt.learnings:
        if learning.type != "prompt_rule" or not learning.suggested_change:
            continue
        try:
            await rt.knowledge.add_learning(
                attempt.tenant_id,
                learning.suggested_change,
                domain=domain,
                type=learning.type,
                confidence=learning.confidence,
                impact=learning.impact,
                privacy_mode=attempt.privacy,
            )
        except Exception:
            log.exception("storing a learning failed")
