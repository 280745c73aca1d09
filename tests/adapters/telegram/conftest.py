"""Fixtures: the Bot API double, adapter settings pointing at it, and an in-process harness
(embedded stack + engine service + a real RQ worker whose notifier is the Telegram one)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from adapters.common.dedup import Dedup
from adapters.telegram.app import SECRET_HEADER, TelegramWebhook
from adapters.telegram.client import TelegramSettings
from adapters.telegram.notifier import TelegramNotifier
from bot.wiring import build_runtime, close_runtime
from bot.worker import install_factory, make_thread_worker
from doubles.telegram import TOKEN, BotApiDouble
from engine.jobs import close_thread_runtime
from engine.notify import NotifierRouter
from engine.runtime import Runtime
from engine.service import EvobotService
from engine.storage.models import Execution
from tests.conftest import Stack

SECRET = "s3cret-token_value"


@pytest.fixture
async def double() -> AsyncIterator[BotApiDouble]:
    api = await BotApiDouble().start()
    try:
        yield api
    finally:
        await api.stop()


@pytest.fixture
def settings(double: BotApiDouble) -> TelegramSettings:
    return TelegramSettings(token=TOKEN, api_url=double.api_url, webhook_secret=SECRET,
                            chat_interval_s=0.0, max_retries=3, poll_timeout_s=1.0)


@dataclass
class Harness:
    """The web side (service + webhook) in the test's loop; jobs drained by a real worker."""

    stack: Stack
    settings: TelegramSettings
    double: BotApiDouble
    rt: Runtime
    service: EvobotService
    notifier: TelegramNotifier
    hook: TelegramWebhook
    client: httpx.AsyncClient

    def router(self) -> NotifierRouter:
        return NotifierRouter({"telegram": TelegramNotifier.from_settings(self.settings)})

    async def post(self, update: Any, *, secret: str | None = SECRET) -> httpx.Response:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        if isinstance(update, bytes | str):
            return await self.client.post("/telegram/webhook", content=update, headers={
                **headers, "content-type": "application/json"})
        return await self.client.post("/telegram/webhook", json=update, headers=headers)

    async def drain(self) -> None:
        """A real RQ worker (own thread, loop, runtime and Telegram notifier) until idle."""
        install_factory(self.stack.config, self.router, self.stack.redis)
        worker = make_thread_worker(self.stack.redis, name=f"tg-{uuid.uuid4().hex[:8]}")
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        errors: list[BaseException] = []

        def work() -> None:
            try:
                worker.work(burst=True, logging_level="WARNING")
            except BaseException as exc:
                errors.append(exc)
            finally:
                close_thread_runtime()
                loop.call_soon_threadsafe(done.set)

        threading.Thread(target=work, daemon=True).start()
        await asyncio.wait_for(done.wait(), timeout=120)
        if errors:
            raise errors[0]

    async def executions(self, tenant_id: str | None = None) -> list[Execution]:
        async with self.rt.sessions() as session:
            query = select(Execution).order_by(Execution.id)
            if tenant_id is not None:
                query = query.where(Execution.tenant_id == tenant_id)
            return list(await session.scalars(query))

    async def version(self, tenant_id: str) -> int:
        async with self.rt.repo(tenant_id) as repo:
            return (await repo.active_version()).version

    async def canary(self, tenant_id: str) -> int | None:
        async with self.rt.repo(tenant_id) as repo:
            return await repo.label("canary")

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.hook.shutdown()
        await self.notifier.aclose()
        await close_runtime(self.rt)


async def make_harness(stack: Stack, settings: TelegramSettings, double: BotApiDouble,
                       dedup: Dedup | None = None) -> Harness:
    notifier = TelegramNotifier.from_settings(settings)
    runtime = await build_runtime(stack.config, NotifierRouter({"telegram": notifier}),
                                  stack.redis)
    service = EvobotService(runtime)
    hook = TelegramWebhook(settings, service, dedup=dedup)
    from starlette.applications import Starlette

    app = Starlette(routes=hook.routes)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                               base_url="http://evobot.test", timeout=30)
    return Harness(stack, settings, double, runtime, service, notifier, hook, client)


@pytest.fixture
async def harness(embedded: Stack, settings: TelegramSettings,
                  double: BotApiDouble) -> AsyncIterator[Harness]:
    h = await make_harness(embedded, settings, double)
    try:
        yield h
    finally:
        await h.aclose()
