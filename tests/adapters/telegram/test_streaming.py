"""Answers streamed into Telegram: the real notifier against the Bot API double, delta by
delta.

What a user sees is the double's timeline: a draft in a private chat, a message edited in a
group (or where drafts are refused, remembered), partial HTML that is always whole, answers
past 4,096 characters going on in new messages, rate limits that slow the stream without
losing text, one answer in the end with the rating keyboard, the message an interrupted
attempt left, and failures said where the partial answer is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from adapters.common.pacing import NoPacing
from adapters.telegram.client import TelegramSettings, make_bot
from adapters.telegram.notifier import TelegramNotifier
from adapters.telegram.outbound import answer_keyboard, render_answer, render_partial
from doubles import telegram as u
from doubles.telegram import BOT_USERNAME, BotApiDouble, telegram_html, utf16_len
from engine.llm.scripted import ScriptedReply, register_script
from engine.types import AnswerDelta, AnswerReady, ExecutionFailed, MessageRef
from tests.adapters.telegram.conftest import make_harness
from tests.conftest import Stack

PRIVATE = 501
GROUP = -100111
ANSWER = ("The capital of France is Paris & its area is < 106 km².\n\n"
          "```python\nif a < b and c > d:\n    print('<b>not bold</b> &amp;')\n```\n"
          "See <a href=\"https://example.org\">the atlas</a> & https://example.org/?a=1&b=2.")


def make_notifier(settings: TelegramSettings, redis: Redis | None = None,
                  **options: Any) -> TelegramNotifier:
    return TelegramNotifier(make_bot(settings), pacer=NoPacing(), redis=redis,
                            **{"edit_every_s": 0.0, "group_edit_every_s": 0.0, **options})


@pytest.fixture
async def notifier(settings: TelegramSettings) -> AsyncIterator[TelegramNotifier]:
    n = make_notifier(settings)
    try:
        yield n
    finally:
        await n.aclose()


def delta(text: str, *, chat: int = GROUP, execution_id: int = 7,
          replaces: MessageRef | None = None) -> AnswerDelta:
    return AnswerDelta(tenant_id=f"telegram:{chat}", execution_id=execution_id,
                       channel_id=str(chat), thread_id=None, reply_to="42", user_id="501",
                       text=text, replaces=replaces)


def ready(text: str = ANSWER, *, chat: int = GROUP, execution_id: int = 7,
          replaces: MessageRef | None = None) -> AnswerReady:
    return AnswerReady(tenant_id=f"telegram:{chat}", execution_id=execution_id,
                       channel_id=str(chat), thread_id=None, reply_to="42", user_id="501",
                       text=text, version=1, tool_count=1, duration_s=0.2,
                       footer="v1 · 1 tool · 0.2 s", replaces=replaces)


def failed(*, chat: int = GROUP, execution_id: int = 7,
           replaces: MessageRef | None = None) -> ExecutionFailed:
    return ExecutionFailed(tenant_id=f"telegram:{chat}", execution_id=execution_id,
                           channel_id=str(chat), thread_id=None, reply_to="42", user_id="501",
                           reason="The model took too long to answer.", replaces=replaces)


def prefixes(text: str, step: int) -> list[str]:
    return [text[:n] for n in range(step, len(text), step)]


async def stream(notifier: TelegramNotifier, text: str, *, step: int = 25, chat: int = GROUP,
                 execution_id: int = 7) -> MessageRef | None:
    """The answer's growing prefixes; the partial message's ref (the first one, as the
    engine keeps it)."""
    ref = None
    for prefix in prefixes(text, step):
        delivery = await notifier.deliver(delta(prefix, chat=chat, execution_id=execution_id))
        ref = ref or delivery.ref
    return ref


def the_answer(double: BotApiDouble, chat: int) -> dict[str, Any]:
    [message] = double.sent(chat)
    return message


def as_sent_alone(text: str = ANSWER) -> tuple[str, dict[str, Any]]:
    """The HTML and keyboard of the same answer delivered whole (no stream)."""
    [chunk] = render_answer(text, "v1 · 1 tool · 0.2 s")
    return chunk.html, answer_keyboard(7).to_dict()


def test_every_partial_answer_is_whole_html() -> None:
    """Cut anywhere — inside `&amp;`, a tag-like `<b>`, a link, an open ``` block — the
    partial renders to HTML Telegram accepts, each message under 4,096."""
    text = ANSWER + "\n\n" + "é & <i> ü " * 500 + "\n```\n" + "x < y && z\n" * 200
    every_cut_of_the_answer = range(1, len(ANSWER) + 40)
    past_the_limit = range(len(ANSWER) + 40, len(text) + 1, 7)
    for cut in [*every_cut_of_the_answer, *past_the_limit]:
        for chunk in render_partial(text[:cut]):
            shown = telegram_html(chunk.html)  # raises as Telegram would
            assert utf16_len(shown) <= 4096
            assert shown.strip()


async def test_a_group_sees_one_message_grow_into_the_answer(notifier: TelegramNotifier,
                                                             double: BotApiDouble) -> None:
    ref = await stream(notifier, ANSWER)
    assert ref is not None
    texts = [s.text for s in double.seen(GROUP, int(ref.message_id))]
    assert texts[0].startswith("The capital") and len(set(texts)) > 5
    assert not double.attempts("sendMessageDraft")
    assert all(c.status == 200 for c in double.calls)  # the double accepted every HTML

    delivery = await notifier.deliver(ready(replaces=ref))
    message = the_answer(double, GROUP)
    assert delivery.ref == ref and message["message_id"] == int(ref.message_id)
    assert (message["html"], message["reply_markup"]) == as_sent_alone()
    assert message["reply_parameters"]["message_id"] == 42


async def test_a_private_chat_sees_a_draft(notifier: TelegramNotifier,
                                           double: BotApiDouble) -> None:
    assert await stream(notifier, ANSWER, chat=PRIVATE) is None  # a draft is no message
    drafts = [s.text for s in double.seen(PRIVATE) if s.message_id is None and s.text]
    assert drafts[0].startswith("The capital") and len(set(drafts)) > 5
    assert {c.params["draft_id"] for c in double.attempts("sendMessageDraft")} == {7}

    delivery = await notifier.deliver(ready(chat=PRIVATE))
    message = the_answer(double, PRIVATE)
    assert (message["html"], message["reply_markup"]) == as_sent_alone()
    assert delivery.ref is not None and delivery.ref.message_id == str(message["message_id"])
    assert PRIVATE not in double.drafts  # the message took the draft's place


async def test_without_drafts_a_message_is_edited_and_that_is_remembered(
        settings: TelegramSettings, double: BotApiDouble, embedded: Stack) -> None:
    double.drafts_available = False
    redis = embedded.redis.asyncio_client()
    notifier = make_notifier(settings, redis)
    ref = await stream(notifier, ANSWER, chat=PRIVATE)
    assert ref is not None and len(double.seen(PRIVATE, int(ref.message_id))) > 5
    await notifier.deliver(ready(chat=PRIVATE, replaces=ref))
    message = the_answer(double, PRIVATE)
    assert (message["html"], message["reply_markup"]) == as_sent_alone()

    other = make_notifier(settings, redis)  # another process: asks Redis, not Telegram
    await stream(other, ANSWER, chat=PRIVATE + 1, execution_id=8)
    await other.deliver(ready(chat=PRIVATE + 1, execution_id=8))
    assert len(double.attempts("sendMessageDraft")) == 1
    assert len(double.sent(PRIVATE + 1)) == 1
    for n in (notifier, other):
        await n.aclose()
    await redis.aclose()


async def test_edits_are_paced_per_chat(settings: TelegramSettings,
                                        double: BotApiDouble) -> None:
    notifier = make_notifier(settings, group_edit_every_s=3600)
    await stream(notifier, ANSWER, step=5)
    assert len(double.of("sendMessage")) == 1 and not double.of("editMessageText")
    await notifier.deliver(ready())  # the answer is never held back
    assert the_answer(double, GROUP)["html"] == as_sent_alone()[0]
    await notifier.aclose()


async def test_rate_limits_slow_the_stream_without_losing_text(
        settings: TelegramSettings, double: BotApiDouble) -> None:
    impatient = TelegramSettings(**{**settings.__dict__, "max_retries": 0})
    notifier = make_notifier(impatient)
    await notifier.deliver(delta(ANSWER[:25]))
    double.rate_limit("editMessageText", retry_after=30, times=1)
    for prefix in prefixes(ANSWER, 25)[1:]:
        await notifier.deliver(delta(prefix))
    assert [c.status for c in double.attempts("editMessageText")] == [429]  # then held back
    await notifier.deliver(ready())
    assert the_answer(double, GROUP)["html"] == as_sent_alone()[0]
    await notifier.aclose()


async def test_retry_after_is_honoured_within_a_delta(notifier: TelegramNotifier,
                                                      double: BotApiDouble) -> None:
    double.rate_limit("editMessageText", retry_after=1, times=2)
    await stream(notifier, ANSWER, step=60)
    await notifier.deliver(ready())
    assert [c.status for c in double.attempts("editMessageText")][:3] == [429, 429, 200]
    assert the_answer(double, GROUP)["html"] == as_sent_alone()[0]


@pytest.mark.parametrize("chat", [GROUP, PRIVATE])
async def test_past_4096_characters_the_answer_goes_on_in_a_new_message(
        chat: int, notifier: TelegramNotifier, double: BotApiDouble) -> None:
    text = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum & dolor " * 20 for i in range(40))
    await stream(notifier, text, step=2000, chat=chat)  # in a group: 20 a minute
    first = double.sent(chat)[0]
    assert first["text"].startswith("Paragraph 0") and not first.get("reply_markup")
    await notifier.deliver(ready(text, chat=chat))
    chunks = render_answer(text, "v1 · 1 tool · 0.2 s")
    messages = double.sent(chat)
    assert len(chunks) > 2
    assert [m["html"] for m in messages] == [c.html for c in chunks]
    assert [bool(m.get("reply_markup")) for m in messages] == [False] * (len(chunks) - 1) + [True]


async def test_the_message_an_interrupted_attempt_left_is_finished(
        settings: TelegramSettings, double: BotApiDouble) -> None:
    died = make_notifier(settings)  # its worker dies mid-stream
    ref = await stream(died, ANSWER[:100])
    assert ref is not None
    rerun = make_notifier(settings)
    assert (await rerun.deliver(delta("The capital", replaces=ref))).ref == ref
    assert the_answer(double, GROUP)["text"] == "The capital"
    await rerun.deliver(ready(replaces=ref))
    message = the_answer(double, GROUP)
    assert (message["html"], message["reply_markup"]) == as_sent_alone()
    # an answer delivered whole (no delta in this attempt) finishes it just the same
    third = make_notifier(settings)
    await third.deliver(ready("Paris.", replaces=ref))
    assert the_answer(double, GROUP)["text"].startswith("Paris.")
    for n in (died, rerun, third):
        await n.aclose()


async def test_a_failure_after_a_partial_answer_is_said_there(notifier: TelegramNotifier,
                                                              double: BotApiDouble) -> None:
    ref = await stream(notifier, ANSWER[:60])
    await notifier.deliver(failed(replaces=ref))
    message = the_answer(double, GROUP)
    assert message["text"].startswith("The capital of France")
    assert message["text"].endswith("⚠️ The model took too long to answer.")
    # a private chat's draft would vanish: what was written is sent, marked
    await stream(notifier, ANSWER[:60], chat=PRIVATE, execution_id=8)
    await notifier.deliver(failed(chat=PRIVATE, execution_id=8))
    message = the_answer(double, PRIVATE)
    assert message["text"].startswith("The capital of France")
    assert message["text"].endswith("⚠️ The model took too long to answer.")


# --- through the real flow: webhook → queue → worker → stream ---------------------------------

STORY = " ".join(f"w{i}" for i in range(40)) + " & <the end>"


@pytest.mark.parametrize("where", ["private", "group"])
async def test_a_slow_model_streams_through_the_real_flow(
        where: str, embedded: Stack, settings: TelegramSettings, double: BotApiDouble) -> None:
    register_script("slow_writer", lambda request: ScriptedReply(content=STORY,
                                                                 token_delay_s=0.04))
    config = embedded.config.model_copy(update={"llm_model": "scripted/slow_writer",
                                                "stream_every_s": 0.1})
    h = await make_harness(Stack(embedded.name, config, embedded.redis), settings, double)
    chat = u.private(701) if where == "private" else u.group(-100777)
    text = "a story?" if where == "private" else f"@{BOT_USERNAME} a story?"
    try:
        assert (await h.post(u.text_update(chat, u.user(701), text))).status_code == 200
        await h.drain()
        [execution] = await h.executions()
    finally:
        await h.aclose()
    [answer] = double.sent(chat.id)
    assert execution.answer_message_id == str(answer["message_id"])
    assert answer["text"].startswith(STORY) and answer["reply_markup"]["inline_keyboard"]
    seen = [s for s in double.seen(chat.id) if s.text]
    complete = next(i for i, s in enumerate(seen) if "w39" in s.text)
    early = seen[:complete]
    assert early and "w0" in early[0].text  # partial text was visible first
    drafts = [s.message_id is None for s in early]
    assert all(drafts) if where == "private" else not any(drafts)
