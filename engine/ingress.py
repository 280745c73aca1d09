"""Recording inbound objectives at the speed of the platform's acknowledgement.

An objective is acknowledged only once its execution row is committed (the database is the
truth; a Redis restart loses queued jobs, never objectives — docs/ARCHITECTURE.md,
"Ingress"). To make that cheap:

- group commit: objectives that arrive while a write is in flight share the next one — one
  transaction, one multi-row INSERT for every tenant's rows (`cross_tenant.insert_executions`:
  ON CONFLICT DO NOTHING on the unique platform message, so a redelivery is recorded exactly
  once), then
  one Redis pipeline that enqueues every new job — while the next batch is already being
  written; a caller returns once its job is queued. Nothing waits for company: a lone
  message is written at once.
- the tenant's labels are cached per process, each entry valid while the
  tenant's stamp in Redis (engine/jobs/stamps.py, read once per batch, before the database)
  is the one read when it was loaded; `Runtime.repo` changes the stamp after any commit that
  moves a label. An entry expires after SERVING_TTL_S — so an idle tenant costs no memory,
  and a stamp change lost to a Redis failure right after a commit is outlived; while Redis
  is down nothing is cached and objectives are still recorded (the reconciler enqueues
  them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from engine.evolution.stats import in_canary
from engine.futures import resolve
from engine.prompt import default_prompt
from engine.runtime import Runtime, serving_key
from engine.storage.cross_tenant import insert_executions
from engine.storage.repo import Serving, TenantRepo
from engine.types import Accepted, InboundMessage, TenantId

log = logging.getLogger(__name__)

MAX_BATCH = 256  # rows per transaction: bounds one statement's size and one commit's wait
SERVING_TTL_S = 60.0


def pick_version(serving: Serving, tenant_id: TenantId, user_id: str,
                 canary_share: float) -> tuple[int, str]:
    """The canary serves the people who asked for it, and a deterministic share of the
    others; everyone else gets the active version."""
    if serving.canary is not None and (
        user_id in serving.audience or in_canary(tenant_id, user_id, canary_share)
    ):
        return serving.canary, "canary"
    return serving.active, "active"


@dataclass
class _Waiting:
    message: InboundMessage
    objective: str
    future: asyncio.Future[Accepted | None]


@dataclass
class _Batch:
    """One transaction's worth of objectives and what writing them found."""

    waiting: list[_Waiting]
    at: float = field(default_factory=time.monotonic)  # "now" for every check of the batch
    serving: dict[TenantId, Serving] = field(default_factory=dict)
    loaded: dict[TenantId, tuple[str, float, Serving]] = field(default_factory=dict)
    homes: dict[TenantId, tuple[str, float]] = field(default_factory=dict)
    results: list[Accepted | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.results = [None] * len(self.waiting)


class IngressWriter:
    """Per event loop (a Runtime's pool is loop-bound): the waiting objectives and the
    serving cache of one process."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.cache: dict[TenantId, tuple[str, float, Serving]] = {}  # token, loaded at, …
        self._homes: dict[TenantId, tuple[str, float]] = {}  # home channel this process set
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self._finishing: set[asyncio.Task[None]] = set()
        self._swept_at = time.monotonic()

    async def record(self, message: InboundMessage, objective: str) -> Accepted | None:
        """Commit a pending execution and enqueue it; None when this platform message was
        already recorded."""
        future: asyncio.Future[Accepted | None] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(message, objective, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            waiting, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                await self._settle(waiting)
            except BaseException as exc:  # cancelled (shutdown): nobody may wait forever
                for one in waiting + self._waiting:
                    resolve(one.future, exc)
                self._waiting = []
                raise
        self._forget_idle()

    def _forget_idle(self) -> None:
        """An idle tenant costs nothing: entries past SERVING_TTL_S would be reloaded
        anyway. Swept a few times per TTL, not after every write: a sweep reads every
        tenant's entry, and the time per message must not grow with the tenant count."""
        now = time.monotonic()
        if now - self._swept_at < SERVING_TTL_S / 10:
            return
        self._swept_at = now
        stale_before = now - SERVING_TTL_S
        for tenant_id in [t for t, (_, at, _) in self.cache.items() if at < stale_before]:
            del self.cache[tenant_id]
        for tenant_id in [t for t, (_, at) in self._homes.items() if at < stale_before]:
            del self._homes[tenant_id]

    async def _settle(self, waiting: list[_Waiting]) -> None:
        """Write a batch; if it fails, write each objective alone, so that one bad row
        fails only its own request."""
        batch = _Batch(waiting)
        try:
            await self._write(batch)
        except Exception as exc:
            if len(waiting) > 1:
                for one in waiting:
                    await self._settle([one])
                return
            resolve(waiting[0].future, exc)
            return
        finishing = asyncio.create_task(self._finish(batch))
        self._finishing.add(finishing)
        finishing.add_done_callback(self._finishing.discard)

    async def _finish(self, batch: _Batch) -> None:
        await self._enqueue(batch)
        for one, result in zip(batch.waiting, batch.results, strict=True):
            resolve(one.future, result)

    async def _write(self, batch: _Batch) -> None:
        """One transaction for the batch, or, when the batch is a single INSERT, that
        statement alone: it commits by itself."""
        tenants = sorted({w.message.tenant_id for w in batch.waiting})
        tokens = await self._tokens(tenants)
        cached = {t: self._cached(t, token, batch.at) for t, token in zip(tenants, tokens,
                                                                           strict=True)}
        alone = None not in cached.values() and self._one_insert(batch)
        sessions = self.rt.statements if alone else self.rt.sessions
        async with sessions() as session, session.begin():
            for tenant_id, token in zip(tenants, tokens, strict=True):
                serving = cached[tenant_id]
                if serving is None:
                    serving = await self._load_serving(TenantRepo(session, tenant_id), token,
                                                       batch)
                batch.serving[tenant_id] = serving
            await self._insert(session, batch)
        self.cache.update(batch.loaded)  # only what was committed
        self._homes.update(batch.homes)

    async def _tokens(self, tenants: list[TenantId]) -> list[str | None]:
        """The tenants' stamps, read before the database; None: unknown, cache nothing."""
        try:
            return list(await self.rt.stamps.current([serving_key(t) for t in tenants]))
        except Exception:
            log.warning("serving stamps unavailable; reading labels from the database",
                        exc_info=True)
            return [None] * len(tenants)

    def _cached(self, tenant_id: TenantId, token: str | None, now: float) -> Serving | None:
        cached = self.cache.get(tenant_id)
        if cached is not None and cached[0] == token and now - cached[1] < SERVING_TTL_S:
            return cached[2]
        return None

    async def _load_serving(self, repo: TenantRepo, token: str | None,
                            batch: _Batch) -> Serving:
        serving = await repo.existing_serving()
        if serving is None:  # the tenant's first message creates it
            await repo.ensure_tenant(prompt=default_prompt(), model=self.rt.settings.llm_model,
                                     temperature=self.rt.settings.temperature)
            serving = await repo.serving()
        if token is not None:
            batch.loaded[repo.tenant_id] = (token, batch.at, serving)
        return serving

    async def _insert(self, session: AsyncSession, batch: _Batch) -> None:
        """Every tenant's rows of the batch in one statement."""
        rows = [self._row(w, batch.serving[w.message.tenant_id]) for w in batch.waiting]
        ids = await insert_executions(session, rows)
        homes: dict[TenantId, str] = {}  # each tenant's last channel addressed
        for position, (w, execution_id, row) in enumerate(
                zip(batch.waiting, ids, rows, strict=True)):
            if execution_id is not None:
                batch.results[position] = Accepted(execution_id=execution_id,
                                                   version=row["version"])
                if w.message.announce_here:
                    homes[w.message.tenant_id] = w.message.channel_id
        for tenant_id, channel_id in homes.items():
            await self._move_home(TenantRepo(session, tenant_id), channel_id, batch)

    def _one_insert(self, batch: _Batch) -> bool:
        """Whether the batch's rows go in one INSERT and nothing else: no home channel
        moves, and each row has a platform message id (`insert_executions` inserts a row
        without one by itself), or there is one row."""
        return not any(
            w.message.announce_here
            and not self._home_written(w.message.tenant_id, w.message.channel_id, batch.at)
            for w in batch.waiting
        ) and (len(batch.waiting) == 1
               or all(w.message.message_id is not None for w in batch.waiting))

    def _home_written(self, tenant_id: TenantId, channel_id: str, now: float) -> bool:
        """This process wrote this home channel within SERVING_TTL_S (another process's
        write in between only moves announcements to the channel addressed just before)."""
        written = self._homes.get(tenant_id)
        return written is not None and written[0] == channel_id and now - written[1] < SERVING_TTL_S

    async def _move_home(self, repo: TenantRepo, channel_id: str, batch: _Batch) -> None:
        """The tenant announces where it was last addressed; not written again while
        `_home_written`."""
        if self._home_written(repo.tenant_id, channel_id, batch.at):
            return
        await repo.set_home_channel(channel_id)
        batch.homes[repo.tenant_id] = (channel_id, batch.at)

    def _row(self, waiting: _Waiting, serving: Serving) -> dict[str, Any]:
        message = waiting.message
        version, arm = pick_version(serving, message.tenant_id, message.user_id,
                                    self.rt.settings.canary_share)
        return {
            "tenant_id": message.tenant_id, "channel_id": message.channel_id,
            "thread_id": message.thread_id, "message_id": message.message_id,
            "user_id": message.user_id,
            "objective": waiting.objective, "version": version, "arm": arm,
        }

    async def _enqueue(self, batch: _Batch) -> None:
        """The rows are committed, so the objectives are accepted whatever happens here: a
        job Redis failed to take is enqueued by the reconciler (`engine/jobs/reconciler.py`)."""
        try:
            await self.rt.queue.enqueue_executions(
                [r.execution_id for r in batch.results if r is not None]
            )
        except Exception:
            log.exception("enqueueing %d objectives failed; the reconciler will",
                          len(batch.waiting))
