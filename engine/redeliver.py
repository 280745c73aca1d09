"""Answers the platform could not take (Slack or Telegram down or rate-limiting for longer
than their clients retry): the stored answer is posted again by a retried job — late, once,
and in order within its thread (docs/ARCHITECTURE.md, "Limits and failure handling")."""

from __future__ import annotations

import logging

from engine.files import store
from engine.present import footer, tools_used
from engine.runtime import Runtime
from engine.storage.cross_tenant import execution_tenant
from engine.storage.files import OUT, execution_files
from engine.storage.models import Execution
from engine.types import AnswerReady, ExecutionFailed, ExecutionStatus, MessageRef, SandboxFile

log = logging.getLogger(__name__)

# long enough for a queued job to finish posting a thread before another one takes it
LOCK_S = 60.0
FAILED_LATE = ("This message could not be answered. Please try again — this doesn't count "
               "against the agent.")


class AnswerNotDelivered(Exception):
    """The platform still refuses: the job raises so RQ retries it later."""


async def earlier_pending(rt: Runtime, row: Execution) -> bool:
    """Whether an earlier answer of this thread still awaits redelivery (a later answer
    queues behind it rather than overtake it)."""
    async with rt.repo(row.tenant_id) as repo:
        return await repo.held_before(row)


async def hold_answer(rt: Runtime, row: Execution) -> None:
    """Mark the stored answer as awaiting redelivery and queue the job that posts it."""
    async with rt.repo(row.tenant_id) as repo:
        stored = await repo.execution(row.id)
        assert stored is not None
        stored.answer_pending = True
    await rt.queue.enqueue_redelivery(row.id)
    log.warning("answer of execution %s not delivered; queued for redelivery", row.id)


async def redeliver(rt: Runtime, execution_id: int) -> str:
    """Post the thread's held answers, oldest first, up to this one; raise while the
    platform still refuses. One job per thread at a time (a lock), so each posts once."""
    tenant_id = await execution_tenant(rt.sessions, execution_id)
    if tenant_id is None:
        return "gone"
    async with rt.repo(tenant_id) as repo:
        row = await repo.execution(execution_id)
    if row is None or not row.answer_pending:
        return "delivered"
    key = f"evobot:redeliver:{tenant_id}:{row.channel_id}:{row.thread_id}"
    async with rt.locks.lock(key, LOCK_S) as acquired:
        if not acquired:
            raise AnswerNotDelivered(f"thread of execution {execution_id} is busy")
        async with rt.repo(tenant_id) as repo:
            held = await repo.pending_answers(row.channel_id, row.thread_id, up_to=row.id)
        for pending in held:
            await _post_held(rt, pending)
    return "redelivered"


async def give_up_redelivery(rt: Runtime, execution_id: int) -> None:
    """The schedule is spent (minutes of refusals, or a permanent one such as a bot the user
    blocked): stop holding the thread's later answers behind this one. Logged as an error."""
    tenant_id = await execution_tenant(rt.sessions, execution_id)
    if tenant_id is None:
        return
    async with rt.repo(tenant_id) as repo:
        row = await repo.execution(execution_id)
        if row is not None and row.answer_pending:
            row.answer_pending = False
            log.error("gave up redelivering the answer of execution %s", execution_id)


async def _post_held(rt: Runtime, row: Execution) -> None:
    delivery = await rt.notifier.deliver(await rebuilt_event(rt, row))
    if delivery.failed:
        raise AnswerNotDelivered(f"the platform still refuses execution {row.id}'s answer")
    posted = ({"answer_channel_id": delivery.ref.channel_id,
               "answer_message_id": delivery.ref.message_id} if delivery.ref else {})
    async with rt.statement(row.tenant_id) as repo:
        await repo.update_execution(row.id, answer_pending=False, **posted)
    log.info("redelivered the answer of execution %s", row.id)


async def rebuilt_event(rt: Runtime, row: Execution) -> AnswerReady | ExecutionFailed:
    """The answer, or for a failed execution the notice (its exact reason isn't stored)."""
    if row.status != ExecutionStatus.FAILED:
        return await rebuilt_answer(rt, row)
    return ExecutionFailed(
        tenant_id=row.tenant_id, execution_id=row.id, channel_id=row.channel_id,
        thread_id=row.thread_id, reply_to=row.message_id, user_id=row.user_id,
        reason=FAILED_LATE, replaces=partial_answer(row),
    )


async def rebuilt_answer(rt: Runtime, row: Execution) -> AnswerReady:
    """The AnswerReady from the stored row: its output, figures and files; it finishes the
    streamed partial message, if one was left."""
    tool_count = tools_used(row.trace or [])
    return AnswerReady(
        tenant_id=row.tenant_id, execution_id=row.id, channel_id=row.channel_id,
        thread_id=row.thread_id, reply_to=row.message_id, user_id=row.user_id,
        text=row.output or "", version=row.version, tool_count=tool_count,
        duration_s=row.duration_s,
        footer=footer(row.version, tool_count, row.duration_s, row.arm),
        files=await _made_files(rt, row), replaces=partial_answer(row),
    )


def partial_answer(row: Execution) -> MessageRef | None:
    """The answer message an earlier attempt of this execution left (a stream cut short)."""
    if row.answer_channel_id is None or row.answer_message_id is None:
        return None
    return MessageRef(channel_id=row.answer_channel_id, message_id=row.answer_message_id,
                      thread_id=row.thread_id)


async def _made_files(rt: Runtime, row: Execution) -> list[SandboxFile]:
    async with rt.repo(row.tenant_id) as repo:
        stored = await execution_files(repo, row.id, OUT)
    return [await store.load(rt.settings.files_dir, f) for f in stored]
