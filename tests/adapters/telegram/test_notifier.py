"""The Telegram notifier against the Bot API double: answers with their keyboard, chunks,
the plain-text retry, RetryAfter, typing, announcements and per-chat pacing shared by
several processes through Redis."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest

from adapters.common.pacing import NoPacing, RedisPacer
from adapters.telegram.client import TelegramSettings, make_bot
from adapters.telegram.notifier import TelegramNotifier
from doubles.telegram import BotApiDouble
from engine.present import evolution_document, rollback_document
from engine.types import (
    AnswerReady,
    Decision,
    EvolutionAnnounced,
    ExecutionFailed,
    RolledBack,
    Working,
)
from tests.conftest import Stack

CHAT = -100111
OTHER_CHAT = -100222
JITTER_S = 0.02  # the double timestamps arrivals, and request latency varies by a few ms


@pytest.fixture
async def notifier(settings: TelegramSettings) -> AsyncIterator[TelegramNotifier]:
    n = TelegramNotifier(make_bot(settings), typing_every_s=0.1)
    try:
        yield n
    finally:
        await n.aclose()


def answer(text: str = "Answer to: hi", *, execution_id: int = 7, chat: int = CHAT,
           thread: str | None = None) -> AnswerReady:
    return AnswerReady(
        tenant_id=f"telegram:{chat}", execution_id=execution_id, channel_id=str(chat),
        thread_id=thread, reply_to="42", user_id="501", text=text, version=1, tool_count=1,
        duration_s=0.2, footer="v1 · 1 tool · 0.2 s",
    )


async def test_answer_carries_the_keyboard_and_its_ref(notifier: TelegramNotifier,
                                                       double: BotApiDouble) -> None:
    delivery = await notifier.deliver(answer("a < b & c"))
    [sent] = double.of("sendMessage")
    assert sent["parse_mode"] == "HTML" and sent["chat_id"] == CHAT
    assert sent["text"] == "a &lt; b &amp; c\n\n<i>v1 · 1 tool · 0.2 s</i>"
    assert sent["reply_parameters"]["message_id"] == 42
    keyboard = sent["reply_markup"]["inline_keyboard"]
    assert [b["text"] for row in keyboard for b in row] == ["👍", "👎", "💬", "1", "2", "3",
                                                            "4", "5"]
    assert keyboard[0][1]["callback_data"] == "fb:7:2"
    [message] = double.sent(CHAT)
    assert delivery.ref is not None
    assert (delivery.ref.channel_id, delivery.ref.message_id) == (str(CHAT),
                                                                 str(message["message_id"]))


async def test_long_answer_is_split_with_the_keyboard_last(notifier: TelegramNotifier,
                                                           double: BotApiDouble) -> None:
    text = "\n".join(f"{i}: " + "z" * 100 for i in range(120))
    delivery = await notifier.deliver(answer(text, thread="9"))
    sent = double.of("sendMessage")
    assert len(sent) == 4
    assert [("reply_markup" in s) for s in sent] == [False, False, False, True]
    assert "reply_parameters" in sent[0] and "reply_parameters" not in sent[1]
    assert all(s["message_thread_id"] == 9 for s in sent)
    assert delivery.ref is not None
    assert delivery.ref.message_id == str(double.sent(CHAT)[-1]["message_id"])


async def test_rejected_formatting_is_retried_as_plain_text(notifier: TelegramNotifier,
                                                            double: BotApiDouble) -> None:
    double.reject_entities()
    delivery = await notifier.deliver(answer("<weird> & stuff"))
    first, second = double.attempts("sendMessage")
    assert first.status == 400 and first.params["parse_mode"] == "HTML"
    assert second.status == 200 and "parse_mode" not in second.params
    assert second.params["text"] == "<weird> & stuff\n\nv1 · 1 tool · 0.2 s"
    assert "reply_markup" in second.params  # the keyboard survives the retry
    assert delivery.ref is not None


async def test_retry_after_is_honoured(notifier: TelegramNotifier,
                                       double: BotApiDouble) -> None:
    double.rate_limit("sendMessage", retry_after=1)
    started = time.monotonic()
    delivery = await notifier.deliver(answer())
    first, second = double.attempts("sendMessage")
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 1.0
    assert time.monotonic() - started < 10
    assert delivery.ref is not None


async def test_typing_while_the_job_runs(notifier: TelegramNotifier,
                                         double: BotApiDouble) -> None:
    working = Working(tenant_id=f"telegram:{CHAT}", execution_id=7, channel_id=str(CHAT),
                      thread_id="9", reply_to="42")
    await notifier.deliver(working)
    await double.wait_for(lambda: len(double.of("sendChatAction")) >= 3, within=5,
                          what="repeated typing")
    assert all(c["action"] == "typing" and c["message_thread_id"] == 9
               for c in double.of("sendChatAction"))
    await notifier.deliver(answer())
    count = len(double.of("sendChatAction"))
    await asyncio.sleep(0.35)
    assert len(double.of("sendChatAction")) == count  # stopped with the answer


async def test_failures_reply_to_the_objective(notifier: TelegramNotifier,
                                               double: BotApiDouble) -> None:
    await notifier.deliver(ExecutionFailed(
        tenant_id=f"telegram:{CHAT}", execution_id=7, channel_id=str(CHAT), thread_id=None,
        reply_to="42", user_id="501", reason="The model took too long."))
    [sent] = double.of("sendMessage")
    assert "The model took too long." in sent["text"] and "reply_markup" not in sent


async def test_evolution_announcement(notifier: TelegramNotifier, double: BotApiDouble) -> None:
    diff = "--- v1\n+++ v2\n@@ -1 +1,2 @@\n You are evobot.\n+1. Answer in French please."
    document = evolution_document(decision=Decision.PROMOTED, from_version=1, to_version=2,
                                  diff=diff, rationale="users asked: answer in French",
                                  replay_summary="replayed 1: 1 better", evolution_id=5)
    event = EvolutionAnnounced(
        tenant_id=f"telegram:{CHAT}", evolution_id=5, channel_id=str(CHAT), thread_id=None,
        decision=Decision.PROMOTED, from_version=1, to_version=2, diff=diff,
        rationale="users asked: answer in French", replay_summary="replayed 1: 1 better",
        document=document,
    )
    delivery = await notifier.deliver(event)
    [sent] = double.of("sendMessage")
    html = sent["text"]
    assert html.startswith("<b>Agent evolved: v1 → v2</b>")
    assert '<pre><code class="language-diff">--- v1\n+++ v2' in html
    assert "+1. Answer in French please.</code></pre>" in html
    assert "users asked: answer in French" in html and "<i>replayed 1: 1 better</i>" in html
    [[button]] = sent["reply_markup"]["inline_keyboard"]
    assert (button["text"], button["callback_data"]) == ("Roll back", "do:rollback:1")
    assert delivery.ref is not None


async def test_announcements_without_a_chat_go_nowhere(notifier: TelegramNotifier,
                                                       double: BotApiDouble) -> None:
    document = rollback_document(from_version=2, to_version=1, automatic=True,
                                 reason="worse ratings", actor="evobot")
    delivery = await notifier.deliver(RolledBack(
        tenant_id=f"telegram:{CHAT}", channel_id=None, thread_id=None, from_version=2,
        to_version=1, automatic=True, reason="worse ratings", actor="evobot",
        document=document))
    assert delivery.ref is None and not double.of("sendMessage")


PACE_S = 0.2


async def test_two_workers_pace_one_chat_together(settings: TelegramSettings,
                                                  double: BotApiDouble, embedded: Stack) -> None:
    """Two notifiers as two worker processes have them (their own bots and Redis clients, one
    Redis server) post to one chat at once: Telegram sees those posts PACE_S apart, while a
    post to another chat goes out at once."""
    clients = [embedded.redis.asyncio_client() for _ in range(2)]
    workers = [TelegramNotifier(make_bot(settings), pacer=RedisPacer(
        client, namespace="telegram", interval_s=PACE_S)) for client in clients]
    first, second = workers
    try:
        await asyncio.gather(
            first.deliver(answer(execution_id=1)), second.deliver(answer(execution_id=2)),
            first.deliver(answer(execution_id=3)), second.deliver(answer(execution_id=4)),
            second.deliver(answer(execution_id=5, chat=OTHER_CHAT)),
        )
    finally:
        for notifier in workers:
            await notifier.aclose()
        for client in clients:
            await client.aclose()
    sent = double.attempts("sendMessage")
    same = sorted(c.at for c in sent if c.params["chat_id"] == CHAT)
    other = [c.at for c in sent if c.params["chat_id"] == OTHER_CHAT]
    assert len(same) == 4 and len(other) == 1
    gaps = [later - earlier for earlier, later in itertools.pairwise(same)]
    assert min(gaps) >= PACE_S - JITTER_S, gaps
    assert other[0] - same[0] < PACE_S  # another chat isn't held back


async def test_connection_failures_are_retried_but_not_timeouts() -> None:
    from telegram.error import NetworkError, TimedOut

    from adapters.telegram.client import Sender
    from adapters.telegram.outbound import Chunk

    class FlakyBot:
        def __init__(self, errors: list[Exception]) -> None:
            self.errors = errors
            self.calls = 0

        async def send_message(self, **kwargs: object) -> str:
            self.calls += 1
            if self.errors:
                raise self.errors.pop(0)
            return "sent"

    flaky = FlakyBot([NetworkError("httpx.ConnectError: All connection attempts failed")])
    sender = Sender(flaky, NoPacing())  # type: ignore[arg-type]
    assert await sender.send_one(CHAT, Chunk("x", "x")) == "sent"
    assert flaky.calls == 2
    timing_out = FlakyBot([TimedOut()])
    with pytest.raises(TimedOut):
        await Sender(timing_out, NoPacing()).send_one(CHAT, Chunk("x", "x"))  # type: ignore[arg-type]
    assert timing_out.calls == 1
