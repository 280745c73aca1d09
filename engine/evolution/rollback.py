"""An automatic rollback and the fix that follows it.

Both watches (the parent comparison in watch.py, the rolling window in window.py) roll back
the same way: move the active label back, give the failing ratings back to the evolution
(even if an earlier one had read them), announce it, and queue a `rollback_and_fix`
evolution whose input is those failures.
"""

from __future__ import annotations

from datetime import datetime

from engine.evolution.announce import home_channel
from engine.evolution.attempt import Trigger
from engine.present import rollback_document
from engine.ratings import is_negative
from engine.runtime import Runtime
from engine.storage.repo import ACTIVE, TenantRepo
from engine.types import RolledBack, TenantId

ACTOR = "watch"
AUTO_ROLLBACK = "auto_rollback"

Rated = tuple[int, int]  # (feedback id, rating)


async def version_ratings(
    repo: TenantRepo, version: int, *, since: datetime | None = None, limit: int | None = None
) -> list[Rated]:
    """The live ratings of a version's answers, newest first."""
    return await repo.version_ratings(version, since=since, limit=limit)


def failures(ratings: list[Rated]) -> list[int]:
    return [feedback_id for feedback_id, rating in ratings if is_negative(rating)]


async def roll_back(
    repo: TenantRepo, from_version: int, to_version: int, reason: str, failing: list[int]
) -> str | None:
    """Move the active label back and free the failures for the fix; the home channel."""
    await repo.move_label(
        ACTIVE, to_version, reason=AUTO_ROLLBACK, actor=ACTOR, note=reason, expect=from_version
    )
    await repo.mark_feedback_unused(failing)
    return await home_channel(repo)


async def announce_and_fix(
    rt: Runtime, tenant_id: TenantId, channel_id: str | None, from_version: int,
    to_version: int, reason: str,
) -> None:
    await rt.notifier.deliver(
        RolledBack(
            tenant_id=tenant_id, channel_id=channel_id, thread_id=None,
            from_version=from_version, to_version=to_version, automatic=True, reason=reason,
            actor=ACTOR,
            document=rollback_document(
                from_version=from_version, to_version=to_version, automatic=True,
                reason=reason, actor=ACTOR,
            ),
        )
    )
    await rt.queue.enqueue_evolution(tenant_id, trigger=Trigger.ROLLBACK_AND_FIX.value)
