"""The evolve job: a tenant's unused feedback becomes at most one new version.

gather (and settle the trigger) → [periodic: consolidate_success] → reflect → propose →
validate → route → record → announce, under the tenant's evolution lock; then what the
decision taught goes to the knowledge store and any tool needs to the tool maker. Feedback a
focused evolution left aside gets an evolution of its own. See docs/ARCHITECTURE.md,
"Rating → evolution".
"""

from __future__ import annotations

import logging

from engine.evolution.announce import announce
from engine.evolution.attempt import Attempt, Conclusion, Outcome, Trigger
from engine.evolution.gather import open_attempt
from engine.evolution.knowledge import (
    consolidate_success,
    past_lessons,
    record_rated_objectives,
    remember_accepted_learnings,
    shared_patterns,
)
from engine.evolution.lock import tenant_evolution_lock
from engine.evolution.propose import propose_candidate
from engine.evolution.record import mark_failed, record_decision
from engine.evolution.reflect import ReflectResult, reflect
from engine.evolution.route import route
from engine.evolution.tool_needs import hand_tool_needs
from engine.evolution.validate import check_structure, drop_unsafe, replay_gate
from engine.llm.gateway import Usage
from engine.runtime import Runtime
from engine.types import Decision, TenantId

log = logging.getLogger(__name__)


async def evolve(
    rt: Runtime, tenant_id: TenantId, *, trigger: str = Trigger.FEEDBACK.value
) -> Outcome:
    """At most one new version from the tenant's unused feedback (or, for a bootstrap, from
    shared patterns); skipped while another evolution of the tenant runs."""
    async with tenant_evolution_lock(rt, tenant_id) as acquired:
        if not acquired:
            return Outcome(None, Decision.SKIPPED, "another evolution holds the lock")
        opened = await open_attempt(rt, tenant_id, trigger)
        if isinstance(opened, Outcome):
            return opened
        await _decide_record_and_announce(rt, opened)
        # after the announcement: searchable history, not part of the decision
        await record_rated_objectives(rt, opened)
        if opened.creates_version:
            await remember_accepted_learnings(rt, opened)
        # tools after the prompt decision: a tool version built on the same parent first would
        # make the prompt's optimistic label check fail and lose the rule
        await hand_tool_needs(rt, opened)
    await _evolve_what_was_left(rt, opened)
    return opened.outcome()


async def _evolve_what_was_left(rt: Runtime, attempt: Attempt) -> None:
    """A repeated failure focuses on its group: the rest of the feedback gets its own turn."""
    if attempt.trigger != Trigger.REPEATED_FAILURE:
        return
    async with rt.repo(attempt.tenant_id) as repo:
        waiting = await repo.unused_feedback_count()
    if waiting:
        await rt.queue.enqueue_evolution(attempt.tenant_id)


async def _decide_record_and_announce(rt: Runtime, attempt: Attempt) -> None:
    """The evolution row says `failed` (and why) when any step raises."""
    try:
        attempt.conclude(await decide(rt, attempt))
        await record_decision(rt, attempt)
        await announce(rt, attempt)
    except Exception as exc:
        log.exception("evolution %s of %s failed", attempt.evolution_id, attempt.tenant_id)
        await mark_failed(rt, attempt.tenant_id, attempt.evolution_id, str(exc))
        raise


async def decide(rt: Runtime, attempt: Attempt) -> Conclusion:
    """Reflect, propose, validate; the first step that finds nothing worth trying decides,
    else routing does."""
    if attempt.trigger == Trigger.PERIODIC:
        attempt.validation.success_patterns = await consolidate_success(rt, attempt)
    reflection = await learn(rt, attempt)
    attempt.cost = reflection.usage.cost_usd
    attempt.validation.reflect_errors = reflection.errors
    attempt.validation.fallback = reflection.used_fallback
    attempt.learnings, attempt.validation.refused_learnings = drop_unsafe(reflection.learnings)
    if any(x.type in ("tool_need", "workflow_need") for x in attempt.learnings):
        attempt.note_trigger(Trigger.CAPABILITY_GAP)  # the need goes to the tool maker
    stopped = propose_candidate(attempt) or check_structure(attempt)
    if stopped is None:
        stopped = await replay_gate(rt, attempt)
    return consolidated(attempt, stopped) or route(attempt, rt.settings)


def consolidated(attempt: Attempt, stopped: Conclusion | None) -> Conclusion | None:
    """A periodic evolution with nothing to change says what it kept of what worked."""
    kept = attempt.validation.success_patterns
    if stopped is None or kept is None or stopped.decision != Decision.SKIPPED:
        return stopped
    return Conclusion(Decision.SKIPPED, f"consolidated {kept} success patterns; nothing to change")


async def learn(rt: Runtime, attempt: Attempt) -> ReflectResult:
    """Shared patterns for a bootstrap; else a reflection on the feedback (informed by past
    learnings and by what worked); its rated objectives become searchable history once the
    decision is out."""
    if attempt.from_shared_patterns:
        return ReflectResult(await shared_patterns(rt, attempt), Usage(), False, [])
    lessons = await past_lessons(rt, attempt)
    reflection = await reflect(
        rt.gateway,
        rt.settings.evolver,
        attempt.base.prompt,
        examples=attempt.examples,
        past_learnings=lessons.learnings,
        success_patterns=lessons.success_patterns,
        repeated_failure=attempt.trigger == Trigger.REPEATED_FAILURE,
    )
    return reflection
