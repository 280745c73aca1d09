"""An admin applies or dismisses an evolution that waits for approval."""

from __future__ import annotations

from engine.evolution.record import create_and_label_version
from engine.present import text_document
from engine.runtime import Runtime
from engine.types import Decision, Notice, StructuredPrompt, TenantId

NOT_WAITING = "That evolution is not waiting for approval."


async def apply_approved(rt: Runtime, tenant_id: TenantId, evolution_id: int, actor: str) -> str:
    """Promote the proposal, unless the agent changed since it was made. Returns the reply."""
    async with rt.repo(tenant_id) as repo:
        row = await repo.evolution(evolution_id)
        if row is None or row.decision != Decision.NEEDS_APPROVAL.value:
            return NOT_WAITING
        base = await repo.active_version()
        if base.version != row.base_version:
            row.decision, row.reason = Decision.SKIPPED.value, "superseded before approval"
            return f"The agent changed since (now v{base.version}); this proposal is outdated."
        number = await create_and_label_version(
            repo, row.id, StructuredPrompt.model_validate(row.candidate_prompt), base,
            Decision.PROMOTED, row.reason,
        )
        row.decision, row.candidate_version = Decision.PROMOTED.value, number
        row.reason = f"{row.reason} (approved by {actor})"
        channel_id, thread_id = row.channel_id, row.thread_id
    await rt.notifier.deliver(
        Notice(
            tenant_id=tenant_id,
            channel_id=channel_id,
            thread_id=thread_id,
            document=text_document(f"Approved by {actor}: v{base.version} → v{number}"),
        )
    )
    return f"Applied: v{number} is now active."


async def dismiss_approval(rt: Runtime, tenant_id: TenantId, evolution_id: int, actor: str) -> str:
    async with rt.repo(tenant_id) as repo:
        row = await repo.evolution(evolution_id)
        if row is None or row.decision != Decision.NEEDS_APPROVAL.value:
            return NOT_WAITING
        row.decision, row.reason = Decision.REJECTED.value, f"dismissed by {actor}"
    return "Dismissed."
