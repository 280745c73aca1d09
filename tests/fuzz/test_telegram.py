"""Telegram updates through the webhook and through long polling (the Bot API double's
getUpdates), in the Bot API's shapes (doubles/telegram.py), mutated.

Per platform: with the right secret, an update PTB can parse is answered 200 whatever is
inside it (a field we can't use means the update is ignored); one that is not an update at all
is 400 — Telegram gives up on an update after a few failed deliveries, and the failure shows
in getWebhookInfo's last_error_message for whoever runs the bot. Never a 5xx (Telegram
would redeliver it), never an error logged by a handler, nothing half-recorded. Polling must
keep going past any update: the next good message is still answered."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from adapters.telegram.app import run_polling
from adapters.telegram.client import TelegramSettings
from doubles import telegram as u
from doubles.telegram import BOT_USERNAME, TOKEN, BotApiDouble
from engine.storage.models import Execution
from tests.adapters.telegram.conftest import SECRET, Harness, make_harness
from tests.conftest import Stack
from tests.fuzz.conftest import Errors, consistent, queued_executions
from tests.fuzz.strategies import hostile_text, mutated

ALICE = u.user(501, "Alice")
CHAT = u.private(501)
GROUP = u.group(-100111)


@dataclass
class Target:
    harness: Harness
    answer: dict[str, Any]  # the answer's sendMessage, with its keyboard
    execution_id: int

    def __repr__(self) -> str:
        return "Target(telegram)"

    def __post_init__(self) -> None:
        self.bases = bases(self)  # once: every example draws from the same list


@pytest.fixture
async def bot_api() -> AsyncIterator[BotApiDouble]:
    api = await BotApiDouble().start()
    try:
        yield api
    finally:
        await api.stop()


@pytest.fixture
async def target(embedded: Stack, bot_api: BotApiDouble) -> AsyncIterator[Target]:
    settings = TelegramSettings(token=TOKEN, api_url=bot_api.api_url, webhook_secret=SECRET,
                                chat_interval_s=0.0, max_retries=3, poll_timeout_s=1.0)
    double = bot_api
    h = await make_harness(embedded, settings, double)
    try:
        assert (await h.post(u.text_update(CHAT, ALICE, "Explain DNS"))).status_code == 200
        await h.drain()
        [answer] = [m for m in double.sent(CHAT.id) if "fb:" in str(m.get("reply_markup"))]
        execution_id = int(re.search(r"fb:(\d+):", str(answer["reply_markup"]))[1])  # type: ignore[index]
        yield Target(h, copy.deepcopy(answer), execution_id)
    finally:
        await h.aclose()


def bases(t: Target) -> list[dict[str, Any]]:
    answer_id, eid = t.answer["message_id"], t.execution_id
    buttons = [b["callback_data"] for row in t.answer["reply_markup"]["inline_keyboard"]
               for b in row]
    prompt = u.bot_message(CHAT, 9_999, f"💬 Reply to this message with your comment on "
                                        f"answer #{eid}.")
    return [
        u.text_update(CHAT, ALICE, "What is a CNAME?"),
        u.text_update(GROUP, ALICE, f"@{BOT_USERNAME} What is a CNAME?"),
        u.text_update(CHAT, ALICE, "/status"),
        u.text_update(CHAT, ALICE, "shorter please", reply_to=prompt),
        u.reaction_update(CHAT, ALICE, answer_id, [], ["👎"]),
        *[u.callback_update(CHAT, ALICE, answer_id, data, text=t.answer["text"])
          for data in buttons[:3]],
        u.callback_update(CHAT, ALICE, answer_id, f"fc:{eid}:{ALICE.id}:tone"),
    ]


def updates(t: Target) -> st.SearchStrategy[dict[str, Any]]:
    def fresh(update: dict[str, Any]) -> dict[str, Any]:
        update["update_id"] = u.next_update_id()
        return update

    return st.sampled_from(t.bases).flatmap(
        lambda base: mutated(base, keep=frozenset({"update_id"}), max_mutations=5)
    ).map(fresh)


async def check(t: Target, errors: Errors) -> None:
    await asyncio.sleep(0)  # let anything the handlers started settle
    assert errors.take() == []
    await consistent(t.harness.rt, queued_executions(t.harness.stack.redis.sync))


@given(data=st.data())
async def test_webhook_updates(target: Target, errors: Errors, data: st.DataObject) -> None:
    update = data.draw(updates(target))
    response = await target.harness.post(json.dumps(update).encode())  # lone surrogates too
    assert response.status_code in (200, 400, 413), (response.status_code, response.text)
    await check(target, errors)


@given(body=st.one_of(st.binary(max_size=500),
                      hostile_text().map(lambda t: json.dumps({"update_id": 1, "message": t}))))
async def test_webhook_garbage(target: Target, errors: Errors, body: bytes | str) -> None:
    response = await target.harness.post(body)
    assert response.status_code in (200, 400, 413), (response.status_code, response.text)
    await check(target, errors)


@pytest.fixture
async def polling(target: Target) -> AsyncIterator[Target]:
    stop, ready = asyncio.Event(), asyncio.Event()
    h = target.harness
    task = asyncio.create_task(run_polling(h.settings, h.service, stop=stop, ready=ready))
    await asyncio.wait_for(ready.wait(), timeout=30)
    try:
        yield target
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=30)


@given(data=st.data())
async def test_polled_updates(polling: Target, errors: Errors, data: st.DataObject) -> None:
    """Each mutated update is followed by a good message, which must still be recorded."""
    double = polling.harness.double
    await double.push(data.draw(updates(polling)))
    sentinel = f"still there? {uuid.uuid4().hex[:8]}"
    await double.push(u.text_update(CHAT, ALICE, sentinel))

    async def recorded() -> bool:
        async with polling.harness.rt.sessions() as session:
            found = await session.scalar(select(Execution.id).where(
                Execution.objective == sentinel))
        return found is not None

    for _ in range(300):
        if await recorded():
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"polling stopped: {sentinel!r} was never recorded")
    await check(polling, errors)
