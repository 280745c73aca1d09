"""The evolve job: a tenant's unused feedback becomes at most one new version.

gather → reflect → propose → validate → route → record → announce, under the tenant's
evolution lock; then what the decision taught goes to the knowledge store and any tool needs
to the tool maker. See docs/ARCHITECTURE.md, "Rating → evolution".
"""

from __future__ import annotations

import logging

from engine.evolution.announce import announce
from engine.evolution.attempt import Attempt, Conclusion, Outcome, Trigger
from engine.evolution.gather import open_attempt
from engine.evolution.knowledge import (
    past_learnings,
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
        if opened.creates_version:
            await remember_accepted_learnings(rt, opened)
        # tools after the prompt decision: a tool version built on the same parent first would
        # make the prompt's optimistic label check fail and lose the rule
        await hand_tool_needs(rt, opened)
        return opened.outcome()


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
    reflection = await learn(rt, attempt)
    attempt.cost = reflection.usage.cost_usd
    attempt.validation.reflect_errors = reflection.errors
    attempt.validation.fallback = reflection.used_fallback
    attempt.learnings, attempt.validation.refused_learnings = drop_unsafe(reflection.learnings)
    stopped = propose_candidate(attempt) or check_structure(attempt)
    if stopped is None:
        stopped = await replay_gate(rt, attempt)
    return stopped or route(attempt, rt.settings)


async def learn(rt: Runtime, attempt: Attempt) -> ReflectResult:
    """Shared patterns for a bootstrap; else a reflection on the feedback (informed by past
    learnings), whose rated objectives are kept as searchable history."""
    if attempt.from_shared_patterns:
        return ReflectResult(await shared_patterns(rt, attempt), Usage(), False, [])
    reflection = await reflect(
        rt.gateway,
        rt.settings.evolver,
        attempt.base.prompt,
        examples=attempt.examples,
        past_learnings=await past_learnings(rt, attempt),
    )
    await record_rated_objectives(rt, attempt, reflection.learnings)
    return reflection
