"""Outages end to end, through the real web app and a real worker.

PostgreSQL goes away (a TCP proxy in front of 127.0.0.1:5432 that the test cuts): Slack's
deliveries and the API's requests get 503, not 500, while nothing can be recorded, /healthz
says so, and once it is back Slack's redelivery is answered once; an objective that was
recorded before the cut and whose job failed meanwhile is queued again by the reconciler
(logged, and counted in evobot_reconciled) and answered once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rq import Queue

from bot.observability import REGISTRY
from bot.wiring import connect_redis
from doubles.slack import Deliveries, SlackDouble
from engine.jobs import EVOLUTION
from engine.jobs.functions import reconcile_job
from tests.adapters.slack.conftest import SlackWeb, slack_config, start_web, stop_web
from tests.conftest import (
    SYSTEM_REDIS,
    Stack,
    _drop_postgres_db,
    _fresh_postgres_db,
    make_config,
    need_service,
)

CHANNEL = "C0GENERAL"


class CuttableProxy:
    """127.0.0.1:<port> → 127.0.0.1:5432, until cut(): then every open connection is closed
    and new ones are closed at once (what a database restart looks like to a client)."""

    def __init__(self, target_port: int = 5432) -> None:
        self.target_port = target_port
        self.down = False
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()

    def cut(self) -> None:
        self.down = True
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    def restore(self) -> None:
        self.down = False

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[tuple[Stack, CuttableProxy]]:
    need_service("PostgreSQL", 5432)
    need_service("Redis", 6379)
    proxy = await CuttableProxy().start()
    db = await _fresh_postgres_db()
    config = make_config(
        tmp_path, DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/{db}",
        REDIS_URL=SYSTEM_REDIS, EVOBOT_PENDING_GRACE_S=0)
    handle = connect_redis(config)
    handle.sync.flushdb()
    try:
        yield Stack("services", config, handle), proxy
    finally:
        handle.sync.flushdb()
        await proxy.stop()
        await _drop_postgres_db(db)


def answers_in(sw: SlackWeb, thread_ts: str) -> list[str]:
    return [str(c.params.get("text")) for c in sw.double.posts(CHANNEL)
            if c.params.get("thread_ts") == thread_ts]


async def test_postgres_outage_is_503_and_everything_is_answered_once_when_it_is_back(
    proxied: tuple[Stack, CuttableProxy], caplog: pytest.LogCaptureFixture,
) -> None:
    stack, proxy = proxied
    caplog.set_level(logging.INFO)
    deliveries = Deliveries()
    async with SlackDouble() as double:
        ws = double.add_workspace("T0ACME", name="Acme")
        double.add_user("T0ACME", "U0ALICE")
        sw = await start_web(stack, double, slack_config(stack, double, token=ws.token))
        try:
            before, before_ts = deliveries.app_mention(ws, "U0ALICE", CHANNEL, "first question")
            assert (await sw.post(before)).status_code == 200  # recorded, not yet answered

            proxy.cut()
            during, during_ts = deliveries.app_mention(ws, "U0ALICE", CHANNEL, "second question")
            assert (await sw.post(during)).status_code == 503
            health = await sw.client.get("/healthz")
            assert health.status_code == 503 and health.json()["database"].startswith("error")
            api = await sw.client.get("/v1/agents/api:x/state",
                                      headers={"Authorization": "Bearer evk_" + "x" * 43})
            assert api.status_code == 503 and api.headers["retry-after"]
            await sw.drain()  # the first objective's job fails: no database to claim it in
            assert answers_in(sw, before_ts) == []

            proxy.restore()
            assert (await sw.post(during, retry=1)).status_code == 200  # Slack's redelivery
            before_count = REGISTRY.get_sample_value(
                "evobot_reconciled_total", {"kind": "executions"}) or 0
            Queue(EVOLUTION, connection=stack.redis.sync).enqueue(reconcile_job)
            await sw.drain()
            await sw.drain()  # what the reconciler queued
        finally:
            await stop_web(sw)
    assert len(answers_in(sw, before_ts)) == 1, answers_in(sw, before_ts)
    assert len(answers_in(sw, during_ts)) == 1, answers_in(sw, during_ts)
    executions = [e.objective for e in await _executions(stack)]
    assert sorted(executions) == ["first question", "second question"]
    assert (REGISTRY.get_sample_value("evobot_reconciled_total", {"kind": "executions"})
            or 0) >= before_count + 1
    assert any("reconciler re-enqueued" in r.getMessage() for r in caplog.records)
    assert any("storage unavailable" in r.getMessage() for r in caplog.records)


async def _executions(stack: Stack) -> list[object]:
    from sqlalchemy import select

    from engine.storage.db import create_engine, session_factory
    from engine.storage.models import Execution

    engine = create_engine(stack.config.resolved_database_url)
    try:
        async with session_factory(engine)() as session:
            return list(await session.scalars(select(Execution)))
    finally:
        await engine.dispose()


async def test_telegram_webhook_is_503_while_postgres_is_down(
    proxied: tuple[Stack, CuttableProxy],
) -> None:
    from adapters.telegram.client import TelegramSettings
    from doubles import telegram as u
    from doubles.telegram import TOKEN, BotApiDouble
    from tests.adapters.telegram.conftest import SECRET, make_harness

    stack, proxy = proxied
    double = await BotApiDouble().start()
    settings = TelegramSettings(token=TOKEN, api_url=double.api_url, webhook_secret=SECRET,
                                chat_interval_s=0.0, max_retries=3, poll_timeout_s=1.0)
    h = await make_harness(stack, settings, double)
    try:
        update = u.text_update(u.private(501), u.user(501, "Alice"), "are you there?")
        assert (await h.post(u.text_update(u.private(501), u.user(501), "hi"))).status_code == 200
        proxy.cut()
        assert (await h.post(update)).status_code == 503  # Telegram delivers it again
        proxy.restore()
        assert (await h.post(update)).status_code == 200
        assert [e.objective for e in await h.executions()] == ["hi", "are you there?"]
    finally:
        await h.aclose()
        await double.stop()
