"""Fixtures for the Slack adapter: the HTTP Slack double, signed deliveries, and the real web
app (bot.web) in-process over the embedded or services stack, with a real RQ worker to drain
the queues."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bot.config import Config
from bot.platforms import make_notifier
from bot.web import Web, build_web
from bot.worker import install_factory, make_thread_worker
from doubles.slack import Deliveries, Delivery, SlackDouble, Workspace
from engine.jobs import close_thread_runtime
from tests.conftest import Stack

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CLIENT_ID = "1111.2222"
CLIENT_SECRET = "client-secret"


@pytest.fixture
async def double() -> AsyncIterator[SlackDouble]:
    async with SlackDouble(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as d:
        yield d


@pytest.fixture
def deliveries() -> Deliveries:
    return Deliveries()


def slack_config(stack: Stack, double: SlackDouble, *, token: str | None = None,
                 multi: bool = False, **extra: Any) -> Config:
    """The stack's config plus Slack settings pointing at the double (env names as keys)."""
    values: dict[str, Any] = stack.config.model_dump(by_alias=True)
    values |= {
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": double.api_url,
        "EVOBOT_SLACK_PACE_S": 0,
        # answers posted whole however slow the machine is (streaming tests opt in)
        "EVOBOT_STREAM_EVERY_S": 0,
    }
    if multi:
        values |= {"SLACK_CLIENT_ID": CLIENT_ID, "SLACK_CLIENT_SECRET": CLIENT_SECRET,
                   "SLACK_BOT_TOKEN": None}
    else:
        values["SLACK_BOT_TOKEN"] = token
    values.update(extra)
    return Config(**values)


@dataclass
class SlackWeb:
    """The web process in-process: the Starlette app behind an httpx client."""

    config: Config
    web: Web
    client: httpx.AsyncClient
    double: SlackDouble
    stack: Stack

    async def post(self, delivery: Delivery, *, secret: str = SECRET,
                   timestamp: int | None = None, retry: int | None = None) -> httpx.Response:
        return await self.client.post(
            "/slack/events", content=delivery.body,
            headers=delivery.headers(secret, timestamp=timestamp, retry=retry),
        )

    async def drain(self) -> None:
        """A real RQ worker (own thread, loop, runtime, Slack notifier) until the queues are
        empty; the double keeps serving on this loop meanwhile."""
        config = self.config
        install_factory(config, lambda: make_notifier(config), self.stack.redis)
        worker = make_thread_worker(self.stack.redis, name=f"t-{uuid.uuid4().hex[:8]}")
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

    @property
    def bot(self) -> Any:
        """The SlackBot behind /slack/events (the web process mounts other apps too)."""
        return next(m.bot for m in self.web.mounts if getattr(m, "bot", None) is not None)

    async def settle(self) -> None:
        """Let the app's post-ack background tasks (ephemerals, views.open) finish."""
        for mount in self.web.mounts:
            bot = getattr(mount, "bot", None)
            if bot is not None:
                await bot.drain(10)

    async def executions(self) -> list[Any]:
        from sqlalchemy import select

        from engine.storage.models import Execution

        async with self.web.ctx.runtime.sessions() as session:
            return list(await session.scalars(select(Execution).order_by(Execution.id)))

    async def feedback(self) -> list[Any]:
        from sqlalchemy import select

        from engine.storage.models import Feedback

        async with self.web.ctx.runtime.sessions() as session:
            return list(await session.scalars(select(Feedback).order_by(Feedback.id)))


async def start_web(stack: Stack, double: SlackDouble, config: Config) -> SlackWeb:
    web = await build_web(config, embedded_worker=False)
    transport = httpx.ASGITransport(app=web.app)
    client = httpx.AsyncClient(transport=transport, base_url="http://evobot.test")
    return SlackWeb(config=config, web=web, client=client, double=double, stack=stack)


async def stop_web(sw: SlackWeb) -> None:
    await sw.settle()
    await sw.client.aclose()
    await sw.web.aclose()


@pytest.fixture
async def workspace(double: SlackDouble) -> Workspace:
    ws = double.add_workspace("T0ACME", name="Acme")
    double.add_user("T0ACME", "U0ALICE")
    double.add_user("T0ACME", "U0ADMIN", admin=True)
    return ws


@pytest.fixture
async def slack(stack: Stack, double: SlackDouble, workspace: Workspace
                ) -> AsyncIterator[SlackWeb]:
    """Single-workspace mode (SLACK_BOT_TOKEN) on both stacks."""
    sw = await start_web(stack, double, slack_config(stack, double, token=workspace.token))
    try:
        yield sw
    finally:
        await stop_web(sw)


@pytest.fixture
async def local_slack(embedded: Stack, double: SlackDouble, workspace: Workspace
                      ) -> AsyncIterator[SlackWeb]:
    """Single-workspace mode on the embedded stack only (protocol-level tests)."""
    sw = await start_web(embedded, double, slack_config(embedded, double, token=workspace.token))
    try:
        yield sw
    finally:
        await stop_web(sw)
