"""The one entry the adapters call. Records first (DB), then enqueues, then returns."""

from __future__ import annotations

import logging

from engine.commands import dispatch
from engine.evolution.stats import in_canary
from engine.prompt import default_prompt
from engine.ratings import is_negative
from engine.runtime import Runtime
from engine.storage.models import Execution, Tenant
from engine.storage.repo import ACTIVE, CANARY, TenantRepo
from engine.types import (
    Accepted,
    CommandReply,
    FeedbackResult,
    InboundCommand,
    InboundFeedback,
    InboundMessage,
    TenantId,
)

log = logging.getLogger(__name__)


class EvobotService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def ensure_tenant(self, repo: TenantRepo) -> Tenant:
        return await repo.ensure_tenant(
            prompt=default_prompt(),
            model=self.rt.settings.llm_model,
            temperature=self.rt.settings.temperature,
        )

    # --- objectives -------------------------------------------------------------

    async def handle_message(self, message: InboundMessage) -> Accepted | None:
        """Record a pending execution and queue it. None: this platform message was seen."""
        text = message.text.strip()
        if not text:
            return None
        async with self.rt.repo(message.tenant_id) as repo:
            tenant = await self.ensure_tenant(repo)
            version, arm = await self._serving_version(repo, message.user_id)
            row = await repo.add_execution(
                channel_id=message.channel_id,
                thread_id=message.thread_id,
                message_id=message.message_id,
                user_id=message.user_id,
                objective=text[:8000],
                version=version,
                arm=arm,
            )
            if row is None:
                return None
            if tenant.home_channel_id != message.channel_id:  # where announcements go
                tenant.home_channel_id = message.channel_id
            accepted = Accepted(execution_id=row.id, version=version)
        await self.rt.queue.enqueue_execution(accepted.execution_id)
        return accepted

    async def _serving_version(self, repo: TenantRepo, user_id: str) -> tuple[int, str]:
        canary = await repo.label(CANARY)
        if canary is not None and in_canary(repo.tenant_id, user_id, self.rt.settings.canary_share):
            return canary, "canary"
        active = await repo.label(ACTIVE)
        assert active is not None, "every agent has an active label"
        return active, "active"

    async def is_answer(self, tenant_id: TenantId, channel_id: str, message_id: str) -> bool:
        """Whether a platform message is one of the bot's answers (threads, reactions)."""
        async with self.rt.repo(tenant_id) as repo:
            return await repo.execution_by_answer(channel_id, message_id) is not None

    # --- feedback -----------------------------------------------------------------

    async def handle_feedback(self, feedback: InboundFeedback) -> FeedbackResult:
        async with self.rt.repo(feedback.tenant_id) as repo:
            execution = await self._target(repo, feedback)
            if execution is None:
                return FeedbackResult(recorded=False, message="I couldn't find that answer.")
            if execution.status != "succeeded":
                return FeedbackResult(
                    recorded=False, execution_id=execution.id,
                    message="That answer didn't complete, so there is nothing to rate.",
                )
            row = await repo.feedback_for(execution.id, feedback.user_id)
            if feedback.retract:
                if row is None or row.retracted:
                    return FeedbackResult(recorded=False, execution_id=execution.id,
                                          message="No rating to remove.")
                row.retracted = True
                row.used_in_evolution = None
                return FeedbackResult(recorded=True, execution_id=execution.id,
                                      message="Rating removed.")
            if row is None:
                row = await repo.add_feedback(
                    execution_id=execution.id, user_id=feedback.user_id,
                    rating=feedback.rating, comment=feedback.comment,
                    source=feedback.source.value,
                )
            else:
                row.rating = feedback.rating if feedback.rating is not None else row.rating
                row.comment = feedback.comment if feedback.comment else row.comment
                row.source = feedback.source.value
                row.retracted = False
                row.used_in_evolution = None  # changed feedback is new information
            rating, comment = row.rating, row.comment
            tenant = await repo.tenant()
            paused = bool(tenant and tenant.evolution_paused)
            pending = await repo.unused_feedback_count()
            execution_id = execution.id
        trigger_now = rating is not None and rating <= 2 and bool(comment)
        enough = pending >= self.rt.settings.evolve_after_ratings
        queued = False
        if rating is not None:
            await self.rt.queue.enqueue_review(feedback.tenant_id)
        if not paused and (trigger_now or enough):
            await self.rt.queue.enqueue_evolution(feedback.tenant_id)
            queued = True
        return FeedbackResult(
            recorded=True, execution_id=execution_id, rating=rating,
            message=_ack(rating, comment), evolution_queued=queued,
            invite_comment=is_negative(rating),
        )

    async def _target(self, repo: TenantRepo, feedback: InboundFeedback) -> Execution | None:
        if feedback.execution_id is not None:
            return await repo.execution(feedback.execution_id)
        if feedback.answer_ref is not None:
            return await repo.execution_by_answer(
                feedback.answer_ref.channel_id, feedback.answer_ref.message_id
            )
        return await repo.latest_execution_for_user(feedback.user_id)

    # --- commands and buttons -------------------------------------------------------

    async def handle_command(self, command: InboundCommand) -> CommandReply:
        async with self.rt.repo(command.tenant_id) as repo:
            await self.ensure_tenant(repo)
        return await dispatch.run(self.rt, command)


def _ack(rating: int | None, comment: str | None) -> str:
    parts = []
    if rating is not None:
        parts.append(f"rated {rating}/5")
    if comment:
        parts.append("comment noted")
    return "Thanks — " + " and ".join(parts) + "." if parts else "Thanks."
