"""The one entry the adapters call. Records first (DB), then enqueues, then returns."""

from __future__ import annotations

import logging

from sqlalchemy.orm.attributes import flag_modified

from engine.commands import dispatch
from engine.evolution.attempt import Trigger
from engine.evolution.stats import in_canary
from engine.prompt import default_prompt
from engine.ratings import is_negative
from engine.runtime import Runtime
from engine.storage.models import Execution, Feedback, Tenant
from engine.storage.repo import ACTIVE, CANARY, TenantRepo
from engine.types import (
    Accepted,
    CommandReply,
    ExecutionStatus,
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
            if message.announce_here and tenant.home_channel_id != message.channel_id:
                tenant.home_channel_id = message.channel_id
            accepted = Accepted(execution_id=row.id, version=version)
        await self.rt.queue.enqueue_execution(accepted.execution_id)
        return accepted

    async def _serving_version(self, repo: TenantRepo, user_id: str) -> tuple[int, str]:
        """The canary serves the people who asked for it, and a deterministic share of the
        others; everyone else gets the active version."""
        canary = await repo.label_row(CANARY)
        if canary is not None and (
            user_id in (canary.audience or [])
            or in_canary(repo.tenant_id, user_id, self.rt.settings.canary_share)
        ):
            return canary.version, "canary"
        active = await repo.label(ACTIVE)
        assert active is not None, "every agent has an active label"
        return active, "active"

    # --- feedback -----------------------------------------------------------------

    async def handle_feedback(self, feedback: InboundFeedback) -> FeedbackResult:
        """Record (or replace, or retract) one user's rating of an answer; maybe evolve."""
        async with self.rt.repo(feedback.tenant_id) as repo:
            execution = await self._target(repo, feedback)
            refusal = _unratable(execution)
            if refusal is not None or execution is None:
                return refusal or FeedbackResult(recorded=False, message="Nothing to rate.")
            row = await repo.feedback_for(execution.id, feedback.user_id)
            if feedback.retract:
                return _retract(row, execution.id)
            row = await _record(repo, row, execution.id, feedback)
            rating, comment, execution_id = row.rating, row.comment, execution.id
            novel = self._is_novel(execution)
            tenant = await repo.tenant()
            paused = bool(tenant and tenant.evolution_paused)
            waiting = await repo.unused_feedback_count()
        queued = await self._after_rating(feedback.tenant_id, rating, comment, paused, waiting,
                                          novel=novel)
        return FeedbackResult(
            recorded=True, execution_id=execution_id, rating=rating,
            message=_ack(rating, comment), evolution_queued=queued,
            invite_comment=is_negative(rating) and not comment,
        )

    async def _after_rating(self, tenant_id: TenantId, rating: int | None, comment: str | None,
                            paused: bool, waiting: int, *, novel: bool = False) -> bool:
        """Queue the canary/watch review, and an evolution at once for a rating of a new
        objective type, a low rating with a comment, or after enough waiting ratings. True
        when an evolution was queued."""
        if rating is not None:
            await self.rt.queue.enqueue_review(tenant_id)
        # a new kind of objective that went badly is worth an evolution at once; a good rating
        # of one simply feeds the next evolution
        if novel and is_negative(rating) and not paused:
            await self.rt.queue.enqueue_evolution(
                tenant_id, trigger=Trigger.NEW_OBJECTIVE_TYPE.value
            )
            return True
        explained_low = rating is not None and rating <= 2 and bool(comment)
        enough = waiting >= self.rt.settings.evolve_after_ratings
        if paused or not (explained_low or enough):
            return False
        await self.rt.queue.enqueue_evolution(tenant_id)
        return True

    def _is_novel(self, execution: Execution) -> bool:
        """An objective farther than `novelty_distance` from every earlier one."""
        novelty = execution.novelty
        return novelty is not None and novelty > self.rt.settings.novelty_distance

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


def _unratable(execution: Execution | None) -> FeedbackResult | None:
    if execution is None:
        return FeedbackResult(recorded=False, message="I couldn't find that answer.")
    if execution.status != ExecutionStatus.SUCCEEDED:
        return FeedbackResult(
            recorded=False, execution_id=execution.id,
            message="That answer didn't complete, so there is nothing to rate.",
        )
    return None


def _retract(row: Feedback | None, execution_id: int) -> FeedbackResult:
    if row is None or row.retracted:
        return FeedbackResult(recorded=False, execution_id=execution_id,
                              message="No rating to remove.")
    row.retracted = True
    _unused_again(row)
    return FeedbackResult(recorded=True, execution_id=execution_id, message="Rating removed.")


async def _record(repo: TenantRepo, row: Feedback | None, execution_id: int,
                  feedback: InboundFeedback) -> Feedback:
    """A user's first rating of an answer, or their newer one replacing it."""
    if row is None:
        return await repo.add_feedback(
            execution_id=execution_id, user_id=feedback.user_id, rating=feedback.rating,
            comment=feedback.comment, category=feedback.category,
            suggestion=feedback.suggestion, from_admin=feedback.from_admin,
            source=feedback.source.value,
        )
    row.rating = feedback.rating if feedback.rating is not None else row.rating
    row.comment = feedback.comment or row.comment
    row.category = feedback.category or row.category
    row.suggestion = feedback.suggestion or row.suggestion
    row.from_admin = row.from_admin or feedback.from_admin
    row.source = feedback.source.value
    row.retracted = False
    _unused_again(row)  # changed feedback is new information
    return row


def _unused_again(row: Feedback) -> None:
    """Written even if this session still holds None: an evolution may have marked the row
    used since it was loaded, and the change must win."""
    row.used_in_evolution = None
    flag_modified(row, "used_in_evolution")


def _ack(rating: int | None, comment: str | None) -> str:
    parts = []
    if rating is not None:
        parts.append(f"rated {rating}/5")
    if comment:
        parts.append("comment noted")
    return "Thanks — " + " and ".join(parts) + "." if parts else "Thanks."
