"""The execute job: claim a pending execution, run the agent, deliver the answer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from engine.files.execution import files_for, keep_outputs
from engine.knowledge.records import ObjectiveContext
from engine.llm.gateway import LLMError, LLMTimeout
from engine.present import footer, tools_used
from engine.redeliver import earlier_pending, hold_answer, partial_answer
from engine.runner import Guidance, RunResult, run_agent
from engine.runtime import Runtime
from engine.storage.cross_tenant import (
    claim_execution,
    fail_unfinished_execution,
    touch_running_execution,
)
from engine.storage.files import thread_files
from engine.storage.models import Execution, StoredFile, utcnow
from engine.streaming import AnswerStream
from engine.tools.box import ToolBox
from engine.tools.registry import ACTIVE_STATUS, OFFERED, STALE, build_toolbox
from engine.types import (
    AgentVersionView,
    AnswerDelta,
    AnswerReady,
    Delivery,
    ExecutionFailed,
    ExecutionStatus,
    MessageRef,
    PrivacyMode,
    SandboxFile,
    TenantId,
    Working,
)

log = logging.getLogger(__name__)

GUIDANCE_ITEMS = 3  # lessons, and learned patterns, added to the prompt at most


async def claim(rt: Runtime, execution_id: int) -> Execution | None:
    """Pending → running, or take over a run whose worker died: the claimed row. None:
    nothing to do."""
    stale_before = utcnow() - timedelta(seconds=rt.settings.stale_running_s)
    return await claim_execution(rt.statements, execution_id, stale_before)


async def toolbox_for(
    rt: Runtime,
    tenant_id: TenantId,
    tool_refs: list[str],
    *,
    model: str | None = None,
    temperature: float | None = None,
) -> ToolBox:
    """The built-in python tool plus the version's own tools that are still offered (not
    archived), all sandboxed; sub-agent tools run on `model` (the version's)."""
    return await build_toolbox(
        rt,
        tenant_id,
        tool_refs,
        model=model or rt.settings.llm_model,
        temperature=rt.settings.temperature if temperature is None else temperature,
    )


@asynccontextmanager
async def heartbeat(rt: Runtime, execution_id: int) -> AsyncIterator[None]:
    """Keep the running row fresh while this worker generates: a row that stops beating for
    EVOBOT_STALE_RUNNING_S belongs to a dead worker, and the reconciler hands it on."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(rt.settings.heartbeat_s)
            try:
                await touch_running_execution(rt.statements, execution_id)
            except Exception:
                log.warning("heartbeat of execution %s failed", execution_id, exc_info=True)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass
class Job:
    """One claimed execution with what answering it needs."""

    row: Execution
    version: AgentVersionView
    history: list[tuple[str, str]]
    privacy_mode: str
    shared_files: list[StoredFile]


async def execute(rt: Runtime, execution_id: int, *, final_attempt: bool = True) -> str:
    """Run one execution. Infra failures re-raise (the job retries) until the final attempt,
    which marks the row failed and tells the user; they are never learned from."""
    row = await claim(rt, execution_id)
    if row is None:
        return "skipped"
    # beating from the claim on: opening the knowledge store alone can take seconds
    async with heartbeat(rt, execution_id):
        return await _answer(rt, row, final_attempt)


async def _answer(rt: Runtime, row: Execution, final_attempt: bool) -> str:
    """The claimed execution: run the agent, streaming its answer, and deliver it."""
    # the knowledge lookup (an embedding, off the event loop) overlaps loading the job
    job, context = await asyncio.gather(_load(rt, row), _objective_context(rt, row))
    # 👀 / typing is a platform round trip the model needn't wait for; whatever is posted
    # waits for it (the answer takes the 👀 away again)
    working = asyncio.create_task(_working(rt, row))
    stream = _answer_stream(rt, row, after=working)
    try:
        result, toolbox = await _generate(rt, job, context, stream)
    except LLMError as exc:
        await working
        await _failed_attempt(rt, row, exc, final_attempt, stream.ref)
        if final_attempt:
            return ExecutionStatus.FAILED
        raise
    except BaseException:  # nothing will be posted
        working.cancel()
        raise
    await working
    await _record_tool_stats(rt, row.tenant_id, result.trace)
    behind_held = await _store_result(rt, row, result, _novelty(context))
    made = await keep_outputs(rt, row, list(toolbox.made.values()))
    await _deliver_answer(rt, job, result, made, stream.ref, behind_held=behind_held)
    return ExecutionStatus.SUCCEEDED


async def _generate(rt: Runtime, job: Job, context: ObjectiveContext | None,
                    stream: AnswerStream) -> tuple[RunResult, ToolBox]:
    """Run the agent on the job's objective (with its thread's files and the tenant's
    lessons), streaming its text; the toolbox holds what its code made."""
    row, version = job.row, job.version
    toolbox = await toolbox_for(
        rt, row.tenant_id, version.tools, model=version.model, temperature=version.temperature
    )
    files = await files_for(rt, job.shared_files)  # read-only in the sandbox
    toolbox.files = files.inputs
    guidance = await _guidance(rt, row, context, job.privacy_mode)
    async with stream:
        result = await run_agent(
            rt.gateway, version, files.objective(row.objective), toolbox=toolbox,
            history=job.history, guidance=guidance, max_steps=rt.settings.max_steps,
            tool_mode=rt.settings.llm_tools, on_text=stream.writer,
        )
    return result, toolbox


async def _working(rt: Runtime, row: Execution) -> None:
    await rt.notifier.deliver(Working(
        tenant_id=row.tenant_id, execution_id=row.id, channel_id=row.channel_id,
        thread_id=row.thread_id, reply_to=row.message_id,
    ))


def _answer_stream(rt: Runtime, row: Execution, *, after: asyncio.Task[None]) -> AnswerStream:
    """The answer streamed as it is written (engine/streaming.py), editing the partial
    message an earlier attempt left, if any; the first partial message is remembered on the
    row at once, so a re-run after this worker dies edits it rather than posting another."""

    async def deliver(text: str, replaces: MessageRef | None) -> Delivery:
        await after
        return await rt.notifier.deliver(AnswerDelta(
            tenant_id=row.tenant_id, execution_id=row.id, channel_id=row.channel_id,
            thread_id=row.thread_id, reply_to=row.message_id, user_id=row.user_id,
            text=text, replaces=replaces,
        ))

    async def remember(ref: MessageRef) -> None:
        await _remember_answer(rt, row, ref)

    return AnswerStream(deliver, every_s=rt.settings.stream_every_s,
                        replaces=partial_answer(row), remember=remember)


async def _load(rt: Runtime, row: Execution) -> Job:
    """Everything else answering the claimed row needs from the database: reads only, so no
    transaction."""
    async with rt.statement(row.tenant_id) as repo:
        version, privacy_mode = await repo.version_and_privacy(row.version)
        assert version is not None
        history = []
        if row.thread_id:
            earlier = await repo.thread_history(row.channel_id, row.thread_id)
            history = [(e.objective, e.output or "") for e in earlier if e.id != row.id]
        shared_files = await thread_files(repo, row)
    return Job(row, version, history, privacy_mode, shared_files)


async def _store_result(rt: Runtime, row: Execution, result: RunResult,
                        novelty: float | None) -> bool:
    """The answer and its cost on the row; True when an earlier answer of the thread is
    still held for redelivery (this one must queue behind it)."""
    found = {"novelty": novelty} if novelty is not None else {}
    async with rt.statement(row.tenant_id) as repo:
        return await repo.store_answer(
            row, output=result.output, trace=result.trace,
            tokens_in=result.usage.tokens_in, tokens_out=result.usage.tokens_out,
            cost_usd=result.usage.cost_usd, duration_s=result.duration_s,
            status=ExecutionStatus.SUCCEEDED, error=None, **found,
        )


async def _deliver_answer(rt: Runtime, job: Job, result: RunResult,
                          files: list[SandboxFile], streamed: MessageRef | None, *,
                          behind_held: bool) -> None:
    """Post the answer (finishing the streamed message, if there is one); remember which
    platform message it became (reactions find it)."""
    row, number = job.row, job.version.version
    tool_count = tools_used(result.trace)  # as a redelivered answer counts them
    if behind_held:  # in order: queue behind the thread's held answer
        await hold_answer(rt, row)
        return
    delivery = await rt.notifier.deliver(AnswerReady(
        tenant_id=row.tenant_id, execution_id=row.id, channel_id=row.channel_id,
        thread_id=row.thread_id, reply_to=row.message_id, user_id=row.user_id,
        text=result.output, version=number, tool_count=tool_count,
        duration_s=result.duration_s,
        footer=footer(number, tool_count, result.duration_s, row.arm), files=files,
        replaces=streamed,
    ))
    if delivery.failed:  # the platform is down or rate-limiting: a job posts it later
        await hold_answer(rt, row)
    elif delivery.ref is not None:
        await _remember_answer(rt, row, delivery.ref)


async def _remember_answer(rt: Runtime, row: Execution, ref: MessageRef) -> None:
    """Which platform message the answer became (reactions to it find the execution)."""
    async with rt.statement(row.tenant_id) as repo:
        await repo.update_execution(row.id, answer_channel_id=ref.channel_id,
                                    answer_message_id=ref.message_id)


async def _failed_attempt(rt: Runtime, row: Execution, exc: LLMError, final: bool,
                          streamed: MessageRef | None) -> None:
    reason = (
        "The model took too long to answer."
        if isinstance(exc, LLMTimeout)
        else "The model could not be reached."
    )
    async with rt.repo(row.tenant_id) as repo:
        stored = await repo.execution(row.id)
        assert stored is not None
        stored.error = str(exc)[:1000]
        # not final: back to pending so the retry (or the reconciler) can claim it again
        stored.status = ExecutionStatus.FAILED if final else ExecutionStatus.PENDING
    if final:
        await _tell_failed(
            rt, row, f"{reason} Please try again — this doesn't count against the agent.",
            streamed,
        )


async def mark_failed(rt: Runtime, execution_id: int, reason: str) -> None:
    """A job that exhausted its retries for a non-LLM reason: tell the user, keep the row."""
    row = await fail_unfinished_execution(rt.sessions, execution_id, reason[:1000])
    if row is None:
        return
    await _tell_failed(
        rt, row, "Something went wrong while answering; it has been logged. Please try again.",
        partial_answer(row),
    )


async def _tell_failed(rt: Runtime, row: Execution, reason: str,
                       replaces: MessageRef | None) -> None:
    """Say the execution failed — in the partial answer's message, if a stream left one;
    after the thread's held answers, and held itself while the platform refuses it."""
    if await earlier_pending(rt, row):
        await hold_answer(rt, row)
        return
    delivery = await rt.notifier.deliver(
        ExecutionFailed(
            tenant_id=row.tenant_id,
            execution_id=row.id,
            channel_id=row.channel_id,
            thread_id=row.thread_id,
            reply_to=row.message_id,
            user_id=row.user_id,
            reason=reason,
            replaces=replaces,
        )
    )
    if delivery.failed:
        await hold_answer(rt, row)


async def _objective_context(rt: Runtime, row: Execution) -> ObjectiveContext | None:
    """How near the objective is to the tenant's earlier ones, and the lessons of those that
    went badly; None when the knowledge store fails (the answer goes on without)."""
    try:
        return await rt.knowledge.objective_context(
            row.tenant_id, row.objective, k=GUIDANCE_ITEMS,
            learnings_beyond=rt.settings.novelty_distance,
        )
    except Exception:
        log.exception("knowledge lookup failed; answering without lessons")
        return None


def _novelty(context: ObjectiveContext | None) -> float | None:
    """The distance to the nearest earlier objective, recorded on the row; nothing recorded
    yet: far from everything seen (the maximum cosine distance we record)."""
    if context is None:
        return None
    return 1.0 if context.nearest_distance is None else context.nearest_distance


async def _guidance(rt: Runtime, row: Execution, context: ObjectiveContext | None,
                    privacy_mode: str) -> Guidance:
    """Lessons of similar objectives that went badly; and for an objective unlike anything
    this tenant had before (a new objective type), the learnings that look relevant: its own
    came with the context, shared ones are looked up when the privacy mode allows."""
    if context is None:
        return Guidance()
    novel = context.novel(rt.settings.novelty_distance)
    patterns = list(context.own_learnings) if novel else []
    if novel and privacy_mode != PrivacyMode.ISOLATED:
        try:
            patterns = await rt.knowledge.relevant_learnings(
                row.tenant_id, row.objective, privacy_mode=privacy_mode, k=GUIDANCE_ITEMS
            )
        except Exception:
            log.exception("knowledge lookup failed; answering without shared patterns")
    return Guidance(
        lessons=[past.lesson for past in context.bad if past.lesson],
        patterns=[hit.text for hit in patterns],
        novel=novel,
    )


async def _record_tool_stats(
    rt: Runtime, tenant_id: TenantId, trace: list[dict[str, object]]
) -> None:
    if not trace:
        return
    async with rt.repo(tenant_id) as repo:
        tools = {t.name: t for t in await repo.tools(OFFERED)}
        for call in trace:
            tool = tools.get(str(call["tool"]))
            if tool is None:
                continue
            tool.calls += 1
            tool.successes += 1 if call["ok"] else 0
            tool.total_duration_s += float(call["duration_s"])  # type: ignore[arg-type]
            tool.last_used_at = utcnow()
            if tool.status == STALE:
                tool.status = ACTIVE_STATUS
