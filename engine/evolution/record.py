"""Step 5 — record: the decision, and the new version it makes, in one transaction.

Labels move with an optimistic check: when the active version moved while the evolution ran
(a rollback, another version), the candidate was built on a stale parent and is skipped — its
version row rolls back with the label move, so no unlabelled version is left behind.
"""

from __future__ import annotations

from engine.evolution.attempt import Attempt
from engine.runtime import Runtime
from engine.storage.models import utcnow
from engine.storage.repo import ACTIVE, CANARY, StaleLabel, TenantRepo
from engine.types import AgentVersionView, Decision, EvolutionStatus, StructuredPrompt, TenantId


async def record_decision(rt: Runtime, attempt: Attempt) -> None:
    """Store what the attempt found and decided; create and label the version it makes; mark
    its feedback used (it is never retried). The evolution row is written once, at the end.
    A version built on a parent that is no longer active is not kept: its transaction rolls
    back, and the attempt is recorded as skipped."""
    if attempt.creates_version:
        try:
            async with rt.repo(attempt.tenant_id) as repo:
                await _create_version(repo, attempt)
                await _write_findings(repo, attempt)
            return
        except StaleLabel as exc:  # raised before the version's number is kept
            attempt.decision, attempt.reason = Decision.SKIPPED, f"superseded: {exc}"
    async with rt.repo(attempt.tenant_id) as repo:
        await _write_findings(repo, attempt)


async def _create_version(repo: TenantRepo, attempt: Attempt) -> None:
    assert attempt.candidate_prompt is not None
    attempt.new_version = await create_and_label_version(
        repo, attempt.evolution_id, attempt.candidate_prompt, attempt.base, attempt.decision,
        attempt.reason, audience=canary_audience(attempt),
    )


async def _write_findings(repo: TenantRepo, attempt: Attempt) -> None:
    await repo.update_evolution(attempt.evolution_id, **_findings(attempt))
    await repo.mark_feedback_used(attempt.consumes, attempt.evolution_id)


def canary_audience(attempt: Attempt) -> list[str] | None:
    """A canary that carries out a request always serves the people who asked."""
    if attempt.decision != Decision.CANARY or attempt.request is None:
        return None
    return list(attempt.request.user_ids)


def _findings(attempt: Attempt) -> dict[str, object]:
    """The evolution row's columns: what the attempt found, and what it decided."""
    prompt = attempt.candidate_prompt
    return {
        "learnings": [x.model_dump() for x in attempt.learnings],
        "ops": [op.model_dump() for op in attempt.ops],
        "validation": attempt.validation.as_json(),
        "candidate_prompt": prompt.model_dump() if prompt is not None else None,
        "cost_usd": attempt.cost, "finished_at": utcnow(), "status": EvolutionStatus.DONE,
        "decision": attempt.decision.value, "reason": attempt.reason,
        "candidate_version": attempt.new_version,
    }


async def create_and_label_version(
    repo: TenantRepo, evolution_id: int, prompt: StructuredPrompt, base: AgentVersionView,
    decision: Decision, reason: str, *, audience: list[str] | None = None,
) -> int:
    """The evolution's candidate `prompt` as a new version of `base`, made active (promoted)
    or the canary (which always serves `audience`, beside the usual share). Raises StaleLabel
    when the active version is no longer `base`."""
    actor = f"evolution:{evolution_id}"
    number = await repo.create_version(
        prompt=prompt,
        model=base.model,
        temperature=base.temperature,
        tools=base.tools,
        parent_version=base.version,
        created_by=actor,
        rationale=reason,
    )
    if decision == Decision.PROMOTED:
        await repo.move_label(ACTIVE, number, reason="promote", actor=actor, expect=base.version)
    else:
        if await repo.label(ACTIVE) != base.version:
            raise StaleLabel("active moved during the evolution")
        await repo.move_label(CANARY, number, reason="canary", actor=actor)
        await set_canary_audience(repo, audience)
    return number


async def set_canary_audience(repo: TenantRepo, audience: list[str] | None) -> None:
    await repo.set_label_audience(CANARY, audience)


async def mark_failed(rt: Runtime, tenant_id: TenantId, evolution_id: int, error: str) -> None:
    async with rt.repo(tenant_id) as repo:
        row = await repo.evolution(evolution_id)
        if row is not None:
            row.status, row.reason = EvolutionStatus.FAILED, f"error: {error}"
            row.finished_at = utcnow()
