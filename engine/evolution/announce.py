"""Step 6 — announce: tell the channel the feedback came from what the evolution decided.

A new or proposed version is announced with its diff (its buttons roll back, apply or
dismiss); a rejection says the feedback was heard and why nothing changed; a skip is silent.
"""

from __future__ import annotations

from engine.evolution.attempt import Attempt
from engine.evolution.validate import needs_a_win
from engine.present import evolution_document, text_document
from engine.prompt import unified_diff
from engine.runtime import Runtime
from engine.storage.repo import TenantRepo
from engine.types import (
    Decision,
    Delivery,
    EvolutionAnnounced,
    Notice,
    TenantId,
    is_one_person_tenant,
    tenant_platform,
)

ANNOUNCED = (Decision.PROMOTED, Decision.CANARY, Decision.NEEDS_APPROVAL)


async def announce(rt: Runtime, attempt: Attempt) -> None:
    if attempt.decision in ANNOUNCED:
        delivery = await rt.notifier.deliver(
            evolution_announcement(attempt, rt.settings.canary_share)
        )
        await _keep_announcement_ref(rt, attempt, delivery)
    elif attempt.decision == Decision.REJECTED:
        await rt.notifier.deliver(rejection_notice(attempt))


def evolution_announcement(attempt: Attempt, canary_share: float = 0.2) -> EvolutionAnnounced:
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
            details=evolution_details(attempt, canary_share),
        ),
    )


def evolution_details(attempt: Attempt, canary_share: float) -> str:
    """Where the change comes from, what the replay showed, who gets it, and why it ran:
    "from your comment · replay: no regressions · canary for you and 20% of the workspace"."""
    parts = [origin(attempt), replay_line(attempt), reach(attempt, canary_share),
             "trigger: " + " + ".join(attempt.validation.triggers)]
    return " · ".join(p for p in parts if p)


def origin(attempt: Attempt) -> str:
    if attempt.from_shared_patterns:
        return "from shared patterns"
    if attempt.request is None:
        return "inferred from ratings"
    return "from your comment" if len(attempt.request.user_ids) == 1 else "from your comments"


def replay_line(attempt: Attempt) -> str:
    judge = attempt.validation.judge
    if judge is not None:
        return f"judge too weak to compare answers ({judge['model']}): not replayed"
    report = attempt.report
    if report is None:
        return ""
    if needs_a_win(attempt) or report.count("better"):
        return f"replay: {report.summary()}"
    return f"replay: no regressions ({report.summary()})"


def reach(attempt: Attempt, canary_share: float) -> str:
    request, decision = attempt.request, attempt.decision
    if decision == Decision.NEEDS_APPROVAL:
        return "waiting for an admin"
    if decision == Decision.CANARY:
        share = f"{canary_share:.0%} of the {audience_word(attempt.tenant_id)}"
        if request is None:
            return f"canary for {share}"
        asked = "you" if len(request.user_ids) == 1 else "the people who asked"
        return f"canary for {asked} and {share}"
    if request is not None and is_one_person_tenant(attempt.tenant_id):
        return "promoted (one-person chat)"
    if request is not None and request.from_admin:
        return "promoted at once (an admin asked)"
    return "promoted"


def audience_word(tenant_id: TenantId) -> str:
    return "group" if tenant_platform(tenant_id) == "telegram" else "workspace"


def rejection_notice(attempt: Attempt) -> Notice:
    """Tell the people who gave the feedback that it was heard, and why nothing changed."""
    return Notice(
        tenant_id=attempt.tenant_id,
        channel_id=attempt.channel_id,
        thread_id=attempt.thread_id,
        document=text_document(
            f"Evolution #{attempt.evolution_id}: no change",
            attempt.reason[:500],
            context="The agent stays as it is; this feedback will not be retried. "
            f"(trigger: {' + '.join(attempt.validation.triggers)})",
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
