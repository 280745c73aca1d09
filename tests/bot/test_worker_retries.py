"""The embedded worker runs no RQ scheduler (it would fork), so its cron thread queues the
retries (and delayed jobs) whose time has come — a redelivery waiting out an outage too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rq import Queue

from bot.worker import enqueue_due_retries
from engine.jobs import EXECUTIONS, reconcile_job
from tests.conftest import Stack


async def test_due_retries_are_queued_and_later_ones_wait(stack: Stack) -> None:
    queue = Queue(EXECUTIONS, connection=stack.redis.sync)
    due = queue.enqueue_at(datetime.now(UTC) - timedelta(seconds=1), reconcile_job)
    later = queue.enqueue_at(datetime.now(UTC) + timedelta(hours=1), reconcile_job)
    assert due.id not in queue.get_job_ids()

    enqueue_due_retries([queue])

    assert due.id in queue.get_job_ids()
    assert later.id not in queue.get_job_ids()
    assert later.id in queue.scheduled_job_registry.get_job_ids()
    later.delete()
    queue.empty()
