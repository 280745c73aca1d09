"""The API app in-process (the real `bot.web` app over the embedded stack, no worker): the
rate limit, tool calls in the event stream, the `apikey` chat command, the dashboard's
sign-in and the OpenAPI page served without a CDN; and the pure parts (chart, diff lines,
JSON logs)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from adapters.api.auth import bearer_secret
from adapters.api.chart import ChartPoint, rating_chart
from adapters.api.dashboard import diff_lines
from adapters.api.events import EventFeed, wire_event
from bot.observability import JsonFormatter, bind_log_context
from bot.web import Web, build_web
from engine.storage.api_keys import KeyRole, create_key, find_key
from engine.types import ExecutionStatus, InboundCommand
from tests.adapters.api.conftest import bearer
from tests.conftest import Bot, Stack, make_config

AGENT = "api:inproc"


@dataclass
class App:
    web: Web
    client: httpx.AsyncClient
    key: str


@pytest.fixture
async def app(embedded: Stack, tmp_path: Path) -> AsyncIterator[App]:
    """The web app with its lifespan (the event hub) and a member key of one agent; at most
    5 requests a minute per key."""
    config = make_config(tmp_path, EVOBOT_API_RATE_LIMIT=5, EVOBOT_SESSION_SECRET="s",
                         EVOBOT_API_WAIT_S=5)
    web = await build_web(config, embedded_worker=False)
    async with web.ctx.runtime.repo(AGENT) as repo:
        await web.ctx.service.ensure_tenant(repo)
        key = await create_key(repo.session, AGENT, KeyRole.MEMBER)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=web.app),
                               base_url="http://evobot.test")
    async with web.app.router.lifespan_context(web.app):
        try:
            yield App(web, client, key.secret)
        finally:
            await client.aclose()
    await web.aclose()


async def test_rate_limit_answers_429_with_retry_after(app: App) -> None:
    url = f"/v1/agents/{AGENT}/state"
    codes = [(await app.client.get(url, headers=bearer(app.key))).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    refused = await app.client.get(url, headers=bearer(app.key))
    assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 61
    assert refused.json() == {"detail": "rate limit exceeded"}


async def test_the_stream_shows_the_answer_s_tool_calls(app: App) -> None:
    """The trace stored with the answer becomes tool_call events before the answer."""
    request = asyncio.create_task(app.client.post(
        f"/v1/agents/{AGENT}/execute", headers=bearer(app.key),
        json={"objective": "convert 5 miles to km", "stream": True}))
    execution_id = await _pending_execution(app)
    async with app.web.ctx.runtime.repo(AGENT) as repo:
        row = await repo.execution(execution_id)
        assert row is not None
        row.status, row.output = ExecutionStatus.SUCCEEDED, "Result: 8.05"
        row.trace = [{"step": 1, "tool": "convert_units", "ok": True, "result": "8.05",
                      "arguments": {"value": 5, "from_unit": "miles", "to_unit": "km"},
                      "duration_s": 0.01}]
    feed = EventFeed(app.web.ctx.redis.asyncio_client())
    await feed.publish(wire_event("answer", AGENT, {"execution_id": execution_id,
                                                    "text": "Result: 8.05"}))
    response = await asyncio.wait_for(request, timeout=10)
    events = [json.loads(line[6:]) for line in response.text.splitlines()
              if line.startswith("data: ")]
    assert [e["type"] for e in events] == ["queued", "tool_call", "answer"]
    assert events[1]["data"]["tool"] == "convert_units" and events[1]["data"]["ok"] is True
    await feed.redis.aclose()


async def _pending_execution(app: App) -> int:
    for _ in range(100):
        async with app.web.ctx.runtime.repo(AGENT) as repo:
            rows = await repo.recent_executions(1)
        if rows:
            await asyncio.sleep(0.2)  # the SSE response is following the feed by now
            return rows[0].id
        await asyncio.sleep(0.05)
    raise AssertionError("the execution was not recorded")


async def test_dashboard_sign_in_and_docs_need_no_cdn(app: App) -> None:
    client = app.client
    assert (await client.get("/dashboard/")).headers["location"] == "/dashboard/login"
    wrong = await client.post("/dashboard/login", data={"api_key": "evk_nope"})
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
    signed = await client.post("/dashboard/login", data={"api_key": app.key})
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert app.key not in cookie  # the cookie names the key, it doesn't carry it
    page = await client.get(f"/dashboard/agents/{AGENT}")
    assert page.status_code == 200 and "<svg" in page.text and "Roll back" not in page.text
    assert (await client.get("/dashboard/agents/api:someone-else")).status_code == 404
    docs = await client.get("/docs")
    assert "/docs/static/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text.lower()
    assert (await client.get("/docs/static/swagger-ui-bundle.js")).status_code == 200
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/v1/agents", "/v1/agents/{agent_id}/execute", "/v1/agents/{agent_id}/rollback",
            "/v1/agents/{agent_id}/diff", "/v1/executions/{execution_id}"} <= set(paths)


async def test_apikey_chat_command(local_bot: Bot) -> None:
    service = local_bot.service

    async def run(*args: str, admin: bool = True, tenant: str = "local:team") -> str:
        reply = await service.handle_command(InboundCommand(
            tenant_id=tenant, user_id="U1", name="apikey", args=list(args), is_admin=admin))
        return reply.document.plain_text()

    assert "Only workspace or chat admins" in await run("create", admin=False)
    created = await run("create", "admin")
    secret = next(word for word in created.split() if word.startswith("evk_"))
    async with local_bot.rt.sessions() as session:
        key = await find_key(session, secret)
    assert key is not None and key.tenant_id == "local:team" and key.is_admin
    assert key.prefix in await run("list")
    assert "no longer works" in await run("revoke", key.prefix)
    async with local_bot.rt.sessions() as session:
        assert await find_key(session, secret) is None
    assert "Everyone in this group" in await run("create", tenant="telegram:-100123")


# --- pure parts ---------------------------------------------------------------------------


def test_chart_draws_both_series_for_rated_versions() -> None:
    at = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    svg = rating_chart([ChartPoint(1, at, 2.0, 0.25, 4), ChartPoint(2, at, 4.5, 1.0, 2),
                        ChartPoint(3, None, None, None, 0)])
    assert svg.startswith("<svg") and svg.count('<circle class="point rating"') == 2
    assert svg.count('<circle class="point success"') == 2
    assert "v2: 4.50 average (2 ratings)" in svg and "v3" in svg
    assert "no ratings yet" in rating_chart([ChartPoint(1, at, None, None, 0)])


def test_diff_lines_are_classified() -> None:
    diff = "--- v1\n+++ v2\n@@ -1 +1,2 @@\n persona\n+1. Be brief.\n-old"
    assert [kind for kind, _ in diff_lines(diff)] == ["meta", "meta", "hunk", "ctx", "add", "del"]


def test_bearer_secret() -> None:
    assert bearer_secret("Bearer evk_abc") == "evk_abc"
    assert bearer_secret("bearer  evk_abc ") == "evk_abc"
    assert bearer_secret("Basic evk_abc") is None and bearer_secret(None) is None
    assert bearer_secret("Bearer ") is None


def test_json_logs_carry_the_bound_ids() -> None:
    async def in_a_task() -> str:
        bind_log_context({"tenant_id": "api:x", "execution_id": 7, "evolution_id": None})
        record = logging.LogRecord("evobot", logging.INFO, __file__, 1, "hello %s", ("you",),
                                   None)
        record.evolution_id = 3
        return JsonFormatter().format(record)

    line = json.loads(asyncio.run(in_a_task()))
    assert line["message"] == "hello you" and line["level"] == "INFO"
    assert (line["tenant_id"], line["execution_id"], line["evolution_id"]) == ("api:x", 7, 3)
