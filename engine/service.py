"""The one entry the adapters call. Records first (DB), then enqueues, then returns."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.orm.attributes import flag_modified

from engine.commands import dispatch
from engine.evolution.attempt import Trigger
from engine.files.intake import (
    FILES_ONLY_OBJECTIVE,
    CheckedFile,
    check_attachments,
    refusal_text,
    store_inputs,
)
from engine.ingress import IngressWriter, pick_version
from engine.prompt import default_prompt
from engine.ratings import is_negative
from engine.runtime import Runtime
from engine.storage.models import Execution, Feedback, Tenant
from engine.storage.repo import TenantRepo
from engine.types import (
    Accepted,
    Block,
    CommandReply,
    Document,
    ExecutionStatus,
    FeedbackResult,
    InboundCommand,
    InboundFeedback,
    InboundMessage,
    Notice,
    TenantId,
)

log = logging.getLogger(__name__)

# What one person reasonably types; a longer paste is refused with the limit, not truncated
# (an answer to half an objective is wrong) and not recorded. Slack's modal inputs stop at
# 3,000 characters and Telegram's messages at 4,096, so a comment fits in any of them.
MAX_OBJECTIVE_CHARS = 8_000
MAX_COMMENT_CHARS = 4_000


def too_long(what: str, length: int, limit: int) -> str:
    """E.g. "That message is too long (12,345 characters; the limit is 8,000)."."""
    return f"That {what} is too long ({length:,} characters; the limit is {limit:,})."


class EvobotService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._writer: tuple[asyncio.AbstractEventLoop, IngressWriter] | None = None

    async def ensure_tenant(self, repo: TenantRepo) -> Tenant:
        return await repo.ensure_tenant(
            prompt=default_prompt(),
            model=self.rt.settings.llm_model,
            temperature=self.rt.settings.temperature,
        )

    # --- objectives -------------------------------------------------------------

    async def handle_message(self, message: InboundMessage) -> Accepted | None:
        """Record a pending execution and queue it. None: nothing recorded — this platform
        message was seen, it is empty, or it is too long (then the sender is told why)."""
        intake = check_attachments(message.attachments)
        if intake.refusals:
            await self._refuse(message, refusal_text(intake))
        if intake.nothing_usable:
            return None
        text = message.text.strip() or (FILES_ONLY_OBJECTIVE if intake.accepted else "")
        if not text:
            return None
        if len(text) > MAX_OBJECTIVE_CHARS:
            await self._refuse(message, too_long("message", len(text), MAX_OBJECTIVE_CHARS))
            return None
        if not intake.accepted:
            return await self._ingress().record(message, text)
        return await self._record_with_files(message, text, intake.accepted)

    def _ingress(self) -> IngressWriter:
        """Text objectives go through the group-committing writer of this event loop."""
        loop = asyncio.get_running_loop()
        if self._writer is None or self._writer[0] is not loop:
            self._writer = (loop, IngressWriter(self.rt))
        return self._writer[1]

    async def _record_with_files(self, message: InboundMessage, text: str,
                                 files: list[CheckedFile]) -> Accepted | None:
        """An objective with files: its row and theirs in one transaction of its own."""
        async with self.rt.repo(message.tenant_id) as repo:
            await self.ensure_tenant(repo)
            version, arm = await self._serving_version(repo, message.user_id)
            row = await repo.add_execution(
                channel_id=message.channel_id,
                thread_id=message.thread_id,
                message_id=message.message_id,
                user_id=message.user_id,
                objective=text,
                version=version,
                arm=arm,
            )
            if row is None:
                return None
            await store_inputs(repo, self.rt.settings.files_dir, row.id, files)
            if message.announce_here:
                await repo.set_home_channel(message.channel_id)
            accepted = Accepted(execution_id=row.id, version=version)
        await self.rt.queue.enqueue_execution(accepted.execution_id)
        return accepted

    async def _refuse(self, message: InboundMessage, reason: str) -> None:
        """Tell the sender, where they wrote, why nothing happened."""
        log.info("refused a message from %s in %s: %s", message.user_id, message.tenant_id,
                 reason)
        notice = Notice(
            tenant_id=message.tenant_id, channel_id=message.channel_id,
            thread_id=message.thread_id,
            document=Document(summary=reason, blocks=[Block(kind="text", text=reason)]),
        )
        try:
            await self.rt.notifier.deliver(notice)
        except Exception:  # the platform is down: the refusal stands, it is only unsaid
            log.exception("could not tell %s why their message was refused", message.user_id)

    async def _serving_version(self, repo: TenantRepo, user_id: str) -> tuple[int, str]:
        return pick_version(await repo.serving(), repo.tenant_id, user_id,
                            self.rt.settings.canary_share)

    # --- feedback -----------------------------------------------------------------

    async def handle_feedback(self, feedback: InboundFeedback) -> FeedbackResult:
        """Record (or replace, or retract) one user's rating of an answer; maybe evolve."""
        refusal = _oversized(feedback)
        if refusal is not None:
            return refusal
        # found by one statement of its own: a reaction to a message that is not an answer
        # (most of them, in a busy channel) costs one round trip, not a transaction
        async with self.rt.statement(feedback.tenant_id) as lookup:
            target = await lookup.rating_target(
                feedback.user_id, execution_id=feedback.execution_id,
                answer=(feedback.answer_ref.channel_id, feedback.answer_ref.message_id)
                if feedback.answer_ref is not None else None,
            )
        refusal = _unratable(target.execution if target is not None else None)
        if refusal is not None or target is None:
            return refusal or FeedbackResult(recorded=False, message="Nothing to rate.")
        async with self.rt.repo(feedback.tenant_id) as repo:
            earlier = repo.adopt(target.earlier) if target.earlier is not None else None
            if feedback.retract:
                return _retract(earlier, target.execution.id)
            row = await _record(repo, earlier, target.execution.id, feedback)
            rating, comment, execution_id = row.rating, row.comment, target.execution.id
            trigger = None if target.evolution_paused else await self._evolution_trigger(
                repo, rating, comment, novel=self._is_novel(target.execution))
        queued = await self._after_rating(feedback.tenant_id, rating, trigger)
        return FeedbackResult(
            recorded=True, execution_id=execution_id, rating=rating,
            message=_ack(rating, comment), evolution_queued=queued,
            invite_comment=is_negative(rating) and not comment,
        )

    async def _after_rating(self, tenant_id: TenantId, rating: int | None,
                            trigger: str | None) -> bool:
        """Queue the evolution the rating triggered, if any, with the canary/watch review
        running in its job just before it; else the review alone. True when an evolution
        was queued."""
        if trigger is not None:
            await self.rt.queue.enqueue_evolution(
                tenant_id, trigger=trigger, review_first=rating is not None
            )
        elif rating is not None:
            await self.rt.queue.enqueue_review(tenant_id)
        return trigger is not None

    async def _evolution_trigger(self, repo: TenantRepo, rating: int | None,
                                 comment: str | None, *, novel: bool) -> str | None:
        """Why an evolution runs at once (the tenant has not paused evolution): a bad rating
        of a new objective type, a low rating with a comment, or enough waiting ratings. The
        count is read only when it decides."""
        # a new kind of objective that went badly is worth an evolution at once; a good rating
        # of one simply feeds the next evolution
        if novel and is_negative(rating):
            return Trigger.NEW_OBJECTIVE_TYPE.value
        if (rating is not None and rating <= 2 and bool(comment)) or (
            await repo.unused_feedback_count() >= self.rt.settings.evolve_after_ratings
        ):
            return Trigger.FEEDBACK.value
        return None

    def _is_novel(self, execution: Execution) -> bool:
        """An objective farther than `novelty_distance` from every earlier one."""
        novelty = execution.novelty
        return novelty is not None and novelty > self.rt.settings.novelty_distance

    # --- commands and buttons -------------------------------------------------------

    async def handle_command(self, command: InboundCommand) -> CommandReply:
        async with self.rt.repo(command.tenant_id) as repo:
            await self.ensure_tenant(repo)
        return await dispatch.run(self.rt, command)


def _oversized(feedback: InboundFeedback) -> FeedbackResult | None:
    for what, text in (("comment", feedback.comment), ("suggestion", feedback.suggestion)):
        if text is not None and len(text) > MAX_COMMENT_CHARS:
            return FeedbackResult(recorded=False, execution_id=feedback.execution_id,
                                  message=too_long(what, len(text), MAX_COMMENT_CHARS))
    return None


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
