"""Body limits of the web process: every way in refuses an oversized body with 413 before the
app behind it reads a byte (no signature computed, no JSON parsed), declared or streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from starlette.types import Message, Receive, Scope, Send

from adapters.common.body_limit import BodyLimit
from adapters.telegram.app import MAX_BODY as TELEGRAM_MAX_BODY
from bot.web import build_web
from tests.conftest import Stack, make_config


class Echo:
    """An ASGI app that reads the whole body and says how much it got."""

    def __init__(self) -> None:
        self.called = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called += 1
        body = b""
        while True:
            message: Message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})


def client(app: BodyLimit) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def chunks(total: int, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


async def test_the_longest_prefix_sets_the_limit_and_the_app_never_sees_more() -> None:
    echo = Echo()
    limited = BodyLimit(echo, {"": 100, "/big": 10_000, "/free/": 10**9})
    async with client(limited) as http:
        assert (await http.post("/x", content=b"a" * 100)).text == "100"
        over = await http.post("/x", content=b"a" * 101)
        assert over.status_code == 413 and over.json()["limit_bytes"] == 100
        assert (await http.post("/big/one", content=b"a" * 5_000)).text == "5000"
        assert (await http.post("/free/x", content=b"a" * 50_000)).text == "50000"
        assert echo.called == 3

        streamed = await http.post("/x", content=chunks(5_000, size=30))
        assert streamed.status_code == 413 and "content-length" not in streamed.request.headers
        assert (await http.post("/big", content=chunks(9_999))).text == "9999"
        assert echo.called == 4


async def test_every_route_of_the_web_process_has_its_limit(embedded: Stack,
                                                            tmp_path: Path) -> None:
    config = make_config(tmp_path, TELEGRAM_BOT_TOKEN="1:abc", TELEGRAM_WEBHOOK_SECRET="s",
                         TELEGRAM_API_URL="http://127.0.0.1:9/bot", SLACK_BOT_TOKEN="xoxb-1",
                         SLACK_SIGNING_SECRET="secret", SLACK_API_URL="http://127.0.0.1:9/api/")
    web = await build_web(config, embedded_worker=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web.app),
                                     base_url="http://evobot.test") as http:
            big = b"{" + b" " * TELEGRAM_MAX_BODY + b"}"
            # 413, not 403: the secret header is not even looked at
            assert (await http.post("/telegram/webhook", content=big)).status_code == 413
            assert (await http.post("/telegram/webhook",
                                    content=chunks(len(big), 64_000))).status_code == 413
            assert (await http.post("/slack/events", content=big)).status_code == 413
            api = await http.post("/v1/agents/a/execute", content=chunks(70_000),
                                  headers={"content-type": "application/json"})
            assert api.status_code == 413  # before authentication, too
    finally:
        await web.aclose()
