"""Tool lifecycle: unused → stale → archived (never deleted); failing → retired.

- A tool nobody called for `stale_after` goes `stale`: still offered (a call revives it).
- A stale tool unused for `archive_after` is archived: a new agent version without it.
- A tool with at least `retire_min_calls` calls and a success rate under `retire_below` is
  retired (archived the same way) by the evolution loop's review step, and announced.
Pinned tools are exempt from all three: an admin decided to keep them.

`review_tools` runs under the tenant's evolution lock (the review job holds it); the
reconciler only finds the tenants with something due and queues their review.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from engine.runtime import Runtime
from engine.storage.cross_tenant import offered_unpinned_tools
from engine.storage.models import Tool, utcnow
from engine.tools.announce import retired_document
from engine.tools.registry import (
    ACTIVE_STATUS,
    ARCHIVED,
    OFFERED,
    STALE,
    Republished,
    announce_channel,
    republish,
    without,
)
from engine.types import Notice, TenantId

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    stale_after: timedelta = timedelta(days=14)
    archive_after: timedelta = timedelta(days=45)
    retire_min_calls: int = 5
    retire_below: float = 0.5  # success rate


DEFAULT_POLICY = Policy()


def _aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back naive; they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def idle_since(tool: Tool) -> datetime:
    return _aware(tool.last_used_at or tool.created_at)


def is_failing(tool: Tool, policy: Policy = DEFAULT_POLICY) -> bool:
    if tool.calls < policy.retire_min_calls:
        return False
    return tool.successes / tool.calls < policy.retire_below


def success_summary(tool: Tool) -> str:
    rate = tool.successes / tool.calls if tool.calls else 0.0
    return f"{tool.calls} calls, {rate:.0%} succeeded"


@dataclass
class Due:
    to_stale: list[Tool]
    to_archive: list[Tool]
    failing: list[Tool]

    def __bool__(self) -> bool:
        return bool(self.to_stale or self.to_archive or self.failing)


def due(tools: list[Tool], now: datetime, policy: Policy = DEFAULT_POLICY) -> Due:
    result = Due([], [], [])
    for tool in tools:
        if tool.pinned or tool.status not in OFFERED:
            continue
        if is_failing(tool, policy):
            result.failing.append(tool)
        elif tool.status == STALE and now - idle_since(tool) >= policy.archive_after:
            result.to_archive.append(tool)
        elif tool.status == ACTIVE_STATUS and now - idle_since(tool) >= policy.stale_after:
            result.to_stale.append(tool)
    return result


async def tenants_due(
    rt: Runtime, now: datetime | None = None, policy: Policy = DEFAULT_POLICY
) -> list[TenantId]:
    """Tenants with a lifecycle transition to make (for the reconciler)."""
    now = now or utcnow()
    rows = await offered_unpinned_tools(rt.sessions, OFFERED)
    return sorted({t.tenant_id for t in rows if due([t], now, policy)})


async def review_tools(
    rt: Runtime, tenant_id: TenantId, *, now: datetime | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> str | None:
    """Make the due transitions. The caller holds the tenant's evolution lock."""
    now = now or utcnow()
    async with rt.repo(tenant_id) as repo:
        todo = due(await repo.tools(OFFERED), now, policy)
        for tool in todo.to_stale:
            tool.status = STALE
        stale_names = [t.name for t in todo.to_stale]
        archive = {t.name: f"unused since {idle_since(t):%Y-%m-%d}" for t in todo.to_archive}
        failing = {t.name: f"kept failing ({success_summary(t)})" for t in todo.failing}
    done = []
    if stale_names:
        done.append(f"stale: {', '.join(stale_names)}")
    if archive:
        await retire(rt, tenant_id, archive, actor="lifecycle")
        done.append(f"archived: {', '.join(archive)}")
    if failing:
        await retire(rt, tenant_id, failing, actor="review")
        done.append(f"retired: {', '.join(failing)}")
    return "; ".join(done) or None


async def retire(
    rt: Runtime,
    tenant_id: TenantId,
    reasons: dict[str, str],
    *,
    actor: str,
    evolution_id: int | None = None,
) -> Republished | None:
    """Archive the named tools (each with its reason), publish a version without them and
    announce it. Pinned tools are skipped. None: nothing to retire."""
    async with rt.repo(tenant_id) as repo:
        rows = [t for t in await repo.tools(OFFERED) if t.name in reasons and not t.pinned]
        if not rows:
            return None
        for row in rows:
            row.status, row.note = ARCHIVED, reasons[row.name]
        names = sorted({r.name for r in rows})
        reason = "; ".join(f"{n}: {reasons[n]}" for n in names)
        moved = await republish(repo, without(set(names)), actor=actor, reason=f"retired {reason}")
        channel_id, thread_id = await announce_channel(repo, evolution_id)
    log.info("retired %s for %s: %s", names, tenant_id, reason)
    await rt.notifier.deliver(
        Notice(
            tenant_id=tenant_id,
            channel_id=channel_id,
            thread_id=thread_id,
            document=retired_document(
                names=names, reason=reason, from_version=moved.from_version,
                to_version=moved.to_version,
            ),
        )
    )
    return moved
