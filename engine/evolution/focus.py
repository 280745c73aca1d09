"""Why an evolution runs, settled from what was gathered.

A job queued as plain feedback (or for a new objective type) may turn out to be the fix after
an automatic rollback, or a repeated failure — then it focuses on that failure's group of
similar objectives. A rating on an objective unlike any before is a new objective type. Every
reason that applies is recorded; the first is the evolution's trigger. The facts live in the
database, so a job that was merged into an already queued one still records them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from engine.evolution.attempt import Trigger
from engine.ratings import is_negative
from engine.runtime import Runtime

if TYPE_CHECKING:
    from engine.evolution.gather import Gathered, RatedPair

log = logging.getLogger(__name__)

REFINABLE = (Trigger.FEEDBACK, Trigger.NEW_OBJECTIVE_TYPE)
REPEATED_AT_LEAST = 3  # negative ratings on similar objectives
SIMILAR_OBJECTIVES = 0.35  # cosine distance within which objectives count as the same kind


async def settle_trigger(rt: Runtime, found: Gathered) -> None:
    requested = found.trigger
    if requested not in REFINABLE:
        return
    reasons: list[str] = []
    if found.rolled_back:
        reasons.append(Trigger.ROLLBACK_AND_FIX)
    else:
        group = await repeated_failure(rt, found.pairs)
        if group:
            found.pairs = group
            reasons.append(Trigger.REPEATED_FAILURE)
    fresh = [pair for pair in found.pairs if pair[0].id in found.unused_ids]  # not exemplars
    if any(is_novel(rt, pair) for pair in fresh):
        reasons.append(Trigger.NEW_OBJECTIVE_TYPE)
    reasons.append(requested)
    found.trigger = reasons[0]
    found.triggers = list(dict.fromkeys(reasons[1:]))


def is_novel(rt: Runtime, pair: RatedPair) -> bool:
    novelty = pair[1].novelty
    return novelty is not None and novelty > rt.settings.novelty_distance


async def repeated_failure(rt: Runtime, pairs: list[RatedPair]) -> list[RatedPair] | None:
    """The largest group of 3+ negatively rated, similar objectives (comments or not)."""
    negatives = [p for p in pairs if is_negative(p[0].rating)]
    if len(negatives) < REPEATED_AT_LEAST:
        return None
    try:
        groups = await rt.knowledge.group_similar(
            [e.objective for _, e in negatives], max_distance=SIMILAR_OBJECTIVES
        )
    except Exception:
        log.exception("grouping objectives failed; no repeated failure detected")
        return None
    if not groups or len(groups[0]) < REPEATED_AT_LEAST:
        return None
    return [negatives[i] for i in sorted(groups[0])]
