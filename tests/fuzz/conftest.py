"""Fuzzing every way in with Hypothesis: Slack (signed HTTP), Telegram (webhook and polling),
the console and the REST API, each against the real app over the embedded stack.

Profiles: "ci" (the default: a bounded run inside the normal test command) and "nightly"
(HYPOTHESIS_PROFILE=nightly: many more examples). Examples share one app per test (the
function-scoped fixtures are deliberate), so every property also holds for a bot that has
already seen everything the earlier examples threw at it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import func, select

from engine.runtime import Runtime
from engine.storage.models import Execution, Feedback

_SHARED = dict(
    deadline=None,  # an example runs the real stack: its time says nothing about the code
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.large_base_example],
    print_blob=True,
)
settings.register_profile("ci", max_examples=60, **_SHARED)  # type: ignore[arg-type]
settings.register_profile("nightly", max_examples=2_000, **_SHARED)  # type: ignore[arg-type]
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


class Errors(logging.Handler):
    """Every ERROR record logged anywhere while a fuzz test runs (listener failures, Bolt's
    and PTB's error handlers, background tasks)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("aiohttp.server"):  # the doubles' own HTTP servers
            return
        if _litellm_logging_task_collected(record):
            return
        self.records.append(record)

    def take(self) -> list[str]:
        found = [f"{r.name}: {r.getMessage()} {r.exc_info[1] if r.exc_info else ''}"
                 for r in self.records]
        self.records.clear()
        return found


def _litellm_logging_task_collected(record: logging.LogRecord) -> bool:
    """litellm logs every model call from one background task per process, which it moves to
    whichever event loop last called a model, leaving the old one pending on its loop. When
    an earlier test's loop is collected during this test, asyncio reports that task: not
    something this test did."""
    message = record.getMessage()
    return (record.name == "asyncio" and "Task was destroyed but it is pending" in message
            and "LoggingWorker._worker_loop" in message)


@pytest.fixture
def errors() -> Iterator[Errors]:
    handler = Errors()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


async def consistent(rt: Runtime, queued: int) -> tuple[int, int]:
    """Nothing half-recorded: every pending execution has its job queued (`queued`: jobs in
    the executions queue), and every rating belongs to an answer of the same tenant.
    (executions, feedback) counts."""
    async with rt.sessions() as session:
        executions = await session.scalar(select(func.count()).select_from(Execution)) or 0
        pending = await session.scalar(select(func.count()).select_from(Execution).where(
            Execution.status == "pending")) or 0
        feedback = await session.scalar(select(func.count()).select_from(Feedback)) or 0
        orphans = await session.scalar(
            select(func.count()).select_from(Feedback).outerjoin(
                Execution, Feedback.execution_id == Execution.id).where(
                (Execution.id.is_(None)) | (Execution.tenant_id != Feedback.tenant_id)))
    assert pending == queued, f"{pending} pending executions, {queued} jobs queued"
    assert orphans == 0
    return executions, feedback


def queued_executions(redis: object) -> int:
    from rq import Queue

    from engine.jobs import EXECUTIONS

    return Queue(EXECUTIONS, connection=redis).count  # type: ignore[arg-type]
