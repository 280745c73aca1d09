"""Step 6 — announce: tell the channel the feedback came from what the evolution decided.

A new or proposed version is announced with its diff (its buttons roll back, apply or
dismiss); a rejection says the feedback was heard and why nothing changed; a skip is silent.
"""

from __future__ import annotations

from engine.evolution.attempt import Attempt
from engine.present import evolution_document, text_document
from engine.prompt import unified_diff
from engine.runtime import Runtime
from engine.storage.repo import TenantRepo
from engine.types import Decision, Delivery, EvolutionAnnounced, Notice

ANNOUNCED = (Decision.PROMOTED, Decision.CANARY, Decision.NEEDS_APPROVAL)


async def announce(rt: Runtime, attempt: Attempt) -> None:
    if attempt.decision in ANNOUNCED:
        delivery = await rt.notifier.deliver(evolution_announcement(attempt))
        await _keep_announcement_ref(rt, attempt, delivery)
    elif attempt.decision == Decision.REJECTED:
        await rt.notifier.deliver(rejection_notice(attempt))


def evolution_announcement(attempt: Attempt) -> EvolutionAnnounced:
    base, candidate = attempt.base, attempt.candidate_prompt
    assert candidate is not None
    shown_version = attempt.new_version or base.version + 1
    diff = unified_diff(base.prompt, candidate, base.version, shown_version)
    summary = attempt.report.summary() if attempt.report else ""
    return EvolutionAnnounced(
        tenant_id=attempt.tenant_id,
        evolution_id=attempt.evolution_id,
        channel_id=attempt.channel_id,
        thread_id=attempt.thread_id,
        decision=attempt.decision,
        from_version=base.version,
        to_version=attempt.new_version,
        diff=diff,
        rationale=attempt.reason,
        replay_summary=summary,
        document=evolution_document(
            decision=attempt.decision,
            from_version=base.version,
            to_version=attempt.new_version,
            diff=diff,
            rationale=attempt.reason,
            replay_summary=summary,
            evolution_id=attempt.evolution_id,
        ),
    )


def rejection_notice(attempt: Attempt) -> Notice:
    """Tell the people who gave the feedback that it was heard, and why nothing changed."""
    return Notice(
        tenant_id=attempt.tenant_id,
        channel_id=attempt.channel_id,
        thread_id=attempt.thread_id,
        document=text_document(
            f"Evolution #{attempt.evolution_id}: no change",
            attempt.reason[:500],
            context="The agent stays as it is; this feedback will not be retried.",
        ),
    )


async def _keep_announcement_ref(rt: Runtime, attempt: Attempt, delivery: Delivery) -> None:
    """Keep on the evolution row where its announcement was posted."""
    if delivery.ref is None:
        return
    async with rt.repo(attempt.tenant_id) as repo:
        row = await repo.evolution(attempt.evolution_id)
        if row is not None:
            row.announcement_ref = f"{delivery.ref.channel_id}:{delivery.ref.message_id}"


async def home_channel(repo: TenantRepo) -> str | None:
    """Where review and watch announcements go: the tenant's home channel."""
    tenant = await repo.tenant()
    return tenant.home_channel_id if tenant else None
