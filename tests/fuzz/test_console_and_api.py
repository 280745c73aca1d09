"""The console (parse_line, then ChatSession.handle_line) and the REST API's JSON bodies,
fuzzed against the real app over the embedded stack.

The console prints every refusal and never raises; the API answers a bad body 4xx (422 for
a shape, 413 for a size) — a client sees its own mistake at once and nothing retries on its
own. Never a 5xx, never an error logged, nothing half-recorded."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.console.convert import parse_line
from bot.web import Web, build_web
from engine.storage.api_keys import KeyRole, create_key
from engine.types import InboundCommand, InboundFeedback, InboundMessage
from tests.adapters.api.conftest import bearer
from tests.adapters.console.chat import Chat, console_chat
from tests.conftest import Stack, make_config
from tests.fuzz.conftest import Errors, consistent, queued_executions
from tests.fuzz.strategies import hostile_text, mutated

COMMANDS = ["/status", "/help", "/history", "/diff 1 2", "/rollback 0", "/pause", "/tools",
            "/evolutions", "/apikey", "/\"unclosed", "/", "/ "]
lines = st.one_of(
    hostile_text(),
    st.sampled_from(COMMANDS).flatmap(lambda c: hostile_text(huge=False).map(lambda t: c + t)),
    st.sampled_from(["+1 ", "-1 ", "comment ", "5", "tone: "]).flatmap(
        lambda p: hostile_text().map(lambda t: p + t)),
)


@given(line=lines)
def test_parse_line_gives_an_engine_input_or_nothing(line: str) -> None:
    parsed = parse_line(line, tenant_id="local:t", user_id="me", channel_id="console",
                        message_id="1")
    assert parsed is None or isinstance(parsed, InboundMessage | InboundFeedback |
                                        InboundCommand)


@pytest.fixture
async def chat(embedded: Stack) -> AsyncIterator[Chat]:
    # no worker: don't wait for answers
    async with console_chat(embedded.config, embedded.redis, width=120,
                            answer_timeout_s=0.01) as session:
        yield session


@given(line=lines)
async def test_console_lines(chat: Chat, embedded: Stack, errors: Errors, line: str) -> None:
    await chat.session.handle_line(line)
    assert errors.take() == []
    await consistent(chat.runtime, queued_executions(embedded.redis.sync))


AGENT = "api:fuzz"


@dataclass
class Api:
    web: Web
    client: httpx.AsyncClient
    key: str

    def __repr__(self) -> str:
        return "Api(web app)"


@pytest.fixture
async def api(embedded: Stack, tmp_path: Path) -> AsyncIterator[Api]:
    config = make_config(tmp_path, EVOBOT_API_RATE_LIMIT=100_000, EVOBOT_SESSION_SECRET="s",
                         EVOBOT_API_WAIT_S=0)
    web = await build_web(config, embedded_worker=False)
    async with web.ctx.runtime.repo(AGENT) as repo:
        await web.ctx.service.ensure_tenant(repo)
        key = await create_key(repo.session, AGENT, KeyRole.ADMIN)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=web.app),
                               base_url="http://evobot.test")
    async with web.app.router.lifespan_context(web.app):
        try:
            yield Api(web, client, key.secret)
        finally:
            await client.aclose()
    await web.aclose()


BODIES: list[tuple[str, dict[str, Any]]] = [
    ("execute", {"objective": "What is DNS?", "context": {"a": 1}, "user_id": "u1",
                 "thread_id": "t1"}),
    ("feedback", {"execution_id": 1, "rating": 2, "comment": "shorter", "category": "tone",
                  "successful": False, "suggestions": ["be brief"], "user_id": "u1"}),
    ("rollback", {"target_version": 1}),
]


@given(data=st.data())
async def test_api_json_bodies(api: Api, errors: Errors, data: st.DataObject) -> None:
    route, base = data.draw(st.sampled_from(BODIES))
    body = data.draw(mutated(base, max_mutations=4))
    raw = json.dumps(body).encode() if data.draw(st.integers(0, 9)) else data.draw(
        hostile_text()).encode("utf-8", "surrogatepass")
    response = await api.client.post(
        f"/v1/agents/{AGENT}/{route}", content=raw,
        headers={**bearer(api.key), "content-type": "application/json"})
    assert response.status_code < 500, (response.status_code, response.text[:300])
    assert errors.take() == []
    await consistent(api.web.ctx.runtime, queued_executions(api.web.ctx.redis.sync))
