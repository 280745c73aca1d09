"""The webhook route in process (Starlette app over ASGI) with the real engine, the embedded
stack, a real RQ worker and the Bot API double."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select
from telegram import Chat, User

from adapters.telegram.app import shared_dedup
from adapters.telegram.client import TelegramSettings
from doubles import telegram as u
from doubles.telegram import BOT_USERNAME, BotApiDouble
from engine.commands import listed
from engine.storage.models import Feedback
from tests.adapters.telegram.conftest import Harness, make_harness
from tests.conftest import Stack

ALICE = u.user(501, "Alice")
BOB = u.user(502, "Bob")
GROUP = u.group(-100111)
MENTION = f"@{BOT_USERNAME}"


def answers(double: BotApiDouble, chat_id: int) -> list[dict[str, Any]]:
    return [m for m in double.sent(chat_id)
            if "fb:" in str(m.get("reply_markup", ""))]


async def test_wrong_or_missing_secret_is_refused_and_nothing_recorded(
        harness: Harness, double: BotApiDouble) -> None:
    update = u.text_update(u.private(501), ALICE, "hello")
    for secret in (None, "wrong", "", SECRET_PREFIX_ONLY):
        response = await harness.post(update, secret=secret)
        assert response.status_code == 403
    assert double.calls == []  # not even getMe: nothing started, nothing sent
    assert await harness.executions() == []


SECRET_PREFIX_ONLY = "s3cret"


async def test_no_secret_configured_refuses_everything(embedded: Stack, double: BotApiDouble,
                                                       settings: TelegramSettings) -> None:
    from dataclasses import replace

    h = await make_harness(embedded, replace(settings, webhook_secret=None), double)
    try:
        response = await h.post(u.text_update(u.private(501), ALICE, "hello"), secret="")
        assert response.status_code == 403
        assert await h.executions() == []
    finally:
        await h.aclose()


async def test_malformed_updates_are_400_and_the_route_keeps_serving(
        harness: Harness) -> None:
    for body in (b"{not json", b"[]", b'"text"', b'{"message": {}}', b'{"update_id": "7"}'):
        response = await harness.post(body)
        assert response.status_code == 400, body
    broken = {"update_id": u.next_update_id(), "message": {"text": "no chat, no date"}}
    assert (await harness.post(broken)).status_code == 400
    good = u.text_update(u.private(501), ALICE, "still there?")
    assert (await harness.post(good)).status_code == 200
    [execution] = await harness.executions()
    assert execution.objective == "still there?"


async def test_a_repeated_update_id_is_handled_once(harness: Harness) -> None:
    update = u.text_update(u.private(501), ALICE, "once please")
    for _ in range(3):
        assert (await harness.post(update)).status_code == 200
    assert len(await harness.executions()) == 1
    # the same message under a new update_id is still one execution (the engine's dedup)
    again = dict(update, update_id=u.next_update_id())
    assert (await harness.post(again)).status_code == 200
    assert len(await harness.executions()) == 1


async def test_redis_dedup_is_shared_by_web_processes(embedded: Stack, double: BotApiDouble,
                                                      settings: TelegramSettings) -> None:

    redis = embedded.redis.asyncio_client()
    first = await make_harness(embedded, settings, double, dedup=shared_dedup(redis))
    second = await make_harness(embedded, settings, double, dedup=shared_dedup(redis))
    try:
        update = u.text_update(u.private(501), ALICE, "/pause")  # not idempotent by itself
        assert (await first.post(update)).status_code == 200
        assert (await second.post(update)).status_code == 200
        assert len(double.of("sendMessage")) == 1
    finally:
        for h in (first, second):
            await h.aclose()
        await redis.aclose()


async def test_redis_dedup_answers_a_redelivery_once_and_lets_a_failed_one_in(
        embedded: Stack, double: BotApiDouble, settings: TelegramSettings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Deliveries overlap and confirmations aren't waited for: still one answer per
    update, however its deliveries overlap, and a failed one is handled when redelivered."""

    redis = embedded.redis.asyncio_client()
    h = await make_harness(embedded, settings, double, dedup=shared_dedup(redis))
    try:
        commands = [u.text_update(u.private(600 + i), u.user(600 + i, "P"), "/pause")
                    for i in range(5)]
        posts = [h.post(update) for update in commands for _ in range(3)]
        assert {r.status_code for r in await asyncio.gather(*posts)} == {200}
        assert len(double.of("sendMessage")) == 5

        async def boom(*args: object, **kwargs: object) -> None:
            raise RuntimeError("database down")

        monkeypatch.setattr(h.service, "handle_command", boom)
        failing = u.text_update(u.private(501), ALICE, "/pause")
        assert (await h.post(failing)).status_code == 500  # the claim is released
        monkeypatch.undo()
        assert (await h.post(failing)).status_code == 200  # the redelivery is handled
        assert (await h.post(failing)).status_code == 200  # … once
        assert len(double.of("sendMessage")) == 6
    finally:
        await h.aclose()
        await redis.aclose()


async def test_group_rules(harness: Harness, double: BotApiDouble) -> None:
    chat = GROUP
    updates = [
        u.text_update(chat, ALICE, "just chatting, no mention"),
        u.text_update(chat, u.user(9, "OtherBot", bot=True), f"{MENTION} hi from a bot"),
        u.edited_update(chat, ALICE, f"{MENTION} edited"),
        u.text_update(chat, ALICE, "@another_bot hello"),
    ]
    for update in updates:
        assert (await harness.post(update)).status_code == 200
    assert await harness.executions() == []
    assert double.of("sendMessage") == []
    assert (await harness.post(u.text_update(chat, ALICE, f"{MENTION} capital of France?"))
            ).status_code == 200
    [execution] = await harness.executions()
    assert execution.tenant_id == "telegram:-100111" and execution.channel_id == "-100111"
    assert execution.objective == "capital of France?" and execution.thread_id is None


async def test_forum_topic_answers_stay_in_the_topic(harness: Harness,
                                                     double: BotApiDouble) -> None:
    forum = u.group(-100333, forum=True)
    root = u.topic_root(forum, 55, BOB)
    await harness.post(u.text_update(forum, ALICE, f"{MENTION} hello topic", thread_id=55,
                                     reply_to=root))
    [execution] = await harness.executions()
    assert execution.thread_id == "55"
    await harness.drain()
    [answer] = answers(double, -100333)
    assert answer["message_thread_id"] == 55
    assert any(c["message_thread_id"] == 55 for c in double.of("sendChatAction"))


async def test_reactions_and_buttons_rate_the_answer(harness: Harness,
                                                     double: BotApiDouble) -> None:
    chat = u.private(501)
    await harness.post(u.text_update(chat, ALICE, "What is 2+2?"))
    await harness.drain()
    [answer] = answers(double, 501)
    assert answer["text"].startswith("Answer to: What is 2+2?")
    answer_id = answer["message_id"]
    [execution] = await harness.executions()
    assert execution.answer_message_id == str(answer_id)

    await harness.post(u.reaction_update(chat, ALICE, answer_id, [], ["👍"]))
    async with harness.rt.repo("telegram:501") as repo:
        row = await repo.feedback_for(execution.id, "501")
        assert row is not None and row.rating == 4 and row.source == "reaction"
    await harness.post(u.reaction_update(chat, ALICE, answer_id, ["👍"], []))
    async with harness.rt.repo("telegram:501") as repo:
        row = await repo.feedback_for(execution.id, "501")
        assert row is not None and row.retracted

    rate = u.callback_update(chat, ALICE, answer_id, f"fb:{execution.id}:5")
    assert (await harness.post(rate)).status_code == 200
    [answered] = double.of("answerCallbackQuery")
    assert answered["text"] == "Thanks — rated 5/5."
    async with harness.rt.repo("telegram:501") as repo:
        row = await repo.feedback_for(execution.id, "501")
        assert row is not None and row.rating == 5 and not row.retracted

    # a custom-emoji reaction and a reaction on a message that isn't an answer: nothing
    await harness.post(u.reaction_update(chat, ALICE, answer_id, [], ["custom"]))
    await harness.post(u.reaction_update(chat, ALICE, 1, [], ["👎"]))
    async with harness.rt.repo("telegram:501") as repo:
        row = await repo.feedback_for(execution.id, "501")
        assert row is not None and row.rating == 5


async def test_callback_queries_are_always_answered(harness: Harness, double: BotApiDouble,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    chat = u.private(501)
    await harness.post(u.callback_update(chat, ALICE, 5, "garbage"))
    await harness.post(u.callback_update(chat, ALICE, 5, "fb:999999:3"))  # unknown execution

    async def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database down")

    monkeypatch.setattr(harness.service, "handle_feedback", boom)
    failing = u.callback_update(chat, ALICE, 5, "fb:1:3")
    assert (await harness.post(failing)).status_code == 500  # Telegram will redeliver
    texts = [c.get("text") for c in double.of("answerCallbackQuery")]
    assert texts == ["This button is no longer active.", "I couldn't find that answer.",
                     "Something went wrong; please try again."]
    monkeypatch.undo()
    assert (await harness.post(failing)).status_code == 200  # the redelivery is handled
    assert len(double.of("answerCallbackQuery")) == 4


def category_message(double: BotApiDouble, chat_id: int) -> dict[str, Any]:
    """The newest category keyboard the bot sent in the chat."""
    return [m for m in double.sent(chat_id) if "fc:" in str(m.get("reply_markup", ""))][-1]


def choice_data(keyboard_message: dict[str, Any], label: str) -> str:
    rows = keyboard_message["reply_markup"]["inline_keyboard"]
    return str(next(b["callback_data"] for row in rows for b in row if b["text"] == label))


def force_replies(double: BotApiDouble, chat_id: int) -> list[dict[str, Any]]:
    return [m for m in double.sent(chat_id) if "force_reply" in str(m.get("reply_markup"))]


async def feedback_rows(harness: Harness) -> list[Feedback]:
    async with harness.rt.sessions() as session:
        return list(await session.scalars(select(Feedback).order_by(Feedback.id)))


async def ask_and_answer(harness: Harness, chat: Chat, user: User, question: str
                         ) -> tuple[dict[str, Any], int]:
    """Post a question, let the worker answer it: (the answer message, its execution id)."""
    await harness.post(u.text_update(chat, user, question))
    await harness.drain()
    answer = answers(harness.double, chat.id)[-1]
    return answer, int(str(answer["reply_markup"]).split("fb:")[1].split(":")[0])


async def comment_with_category(harness: Harness, chat: Chat, user: User,
                                 answer: dict[str, Any], execution_id: int, label: str,
                                 comment: str) -> None:
    """💬 → the category keyboard → `label` → the ForceReply prompt → the reply."""
    await harness.post(u.callback_update(chat, user, answer["message_id"],
                                         f"fb:{execution_id}:c"))
    keyboard = category_message(harness.double, chat.id)
    await harness.post(u.callback_update(chat, user, keyboard["message_id"],
                                         choice_data(keyboard, label), text=keyboard["text"]))
    prompt = force_replies(harness.double, chat.id)[-1]
    await harness.post(u.text_update(chat, user, comment,
                                     reply_to=u.bot_message(chat, prompt["message_id"],
                                                            prompt["text"])))


async def test_comment_button_offers_categories_then_force_reply(
        harness: Harness, double: BotApiDouble) -> None:
    chat = u.private(501)
    answer, execution_id = await ask_and_answer(harness, chat, ALICE, "Capital of Spain?")
    await harness.post(u.callback_update(chat, ALICE, answer["message_id"],
                                         f"fb:{execution_id}:c"))
    keyboard = category_message(double, 501)
    assert keyboard["text"].startswith("💬 Alice, what was the problem with this answer?")
    assert keyboard["reply_parameters"]["message_id"] == answer["message_id"]
    rows = [[b["text"] for b in row] for row in keyboard["reply_markup"]["inline_keyboard"]]
    assert rows == [["Wrong", "Incomplete"], ["Too long", "Too short"], ["Format", "Tone"],
                    ["Language", "Other"], ["Skip"]]
    assert double.of("answerCallbackQuery")[-1]["text"] == (
        "What was the problem? Pick one, or Skip.")
    assert force_replies(double, 501) == [] and await feedback_rows(harness) == []

    await harness.post(u.callback_update(chat, ALICE, keyboard["message_id"],
                                         choice_data(keyboard, "Too long"),
                                         text=keyboard["text"]))
    assert double.of("answerCallbackQuery")[-1]["text"] == (
        "Too long — noted. Reply to my message with your comment.")
    settled = double.messages[keyboard["message_id"]]
    assert settled["text"] == "💬 Alice: Too long" and "reply_markup" not in settled
    [prompt] = force_replies(double, 501)
    assert prompt["reply_markup"]["force_reply"] is True
    assert prompt["reply_parameters"]["message_id"] == keyboard["message_id"]
    assert prompt["text"].endswith(f"comment on answer #{execution_id} (Too long).")
    [row] = await feedback_rows(harness)  # the category counts before any comment
    assert (row.category, row.comment, row.rating) == ("too_long", None, None)

    asked = u.bot_message(chat, prompt["message_id"], prompt["text"])
    await harness.post(u.text_update(chat, ALICE, "three bullets max", reply_to=asked))
    [row] = await feedback_rows(harness)
    assert (row.category, row.comment, row.source) == ("too_long", "three bullets max",
                                                        "comment")
    assert row.from_admin  # a private chat belongs to its user
    assert double.of("getChatMember") == []
    [reacted] = double.of("setMessageReaction")
    assert reacted["reaction"][0]["emoji"] == "✍"
    assert len(await harness.executions()) == 1  # the comment was not an objective


async def test_skip_asks_for_the_comment_without_a_category(
        harness: Harness, double: BotApiDouble) -> None:
    chat = u.private(501)
    answer, execution_id = await ask_and_answer(harness, chat, ALICE, "Capital of Peru?")
    await comment_with_category(harness, chat, ALICE, answer, execution_id, "Skip",
                                "say which hemisphere")
    [prompt] = force_replies(double, 501)
    assert prompt["text"].endswith(f"comment on answer #{execution_id}.")
    assert any(m["text"] == "💬 Alice: no category" for m in double.sent(501))
    [row] = await feedback_rows(harness)
    assert (row.category, row.comment) == (None, "say which hemisphere")


async def test_group_comments_record_whether_a_chat_admin_gave_them(
        harness: Harness, double: BotApiDouble) -> None:
    double.set_member(GROUP.id, BOB.id, "administrator")
    answer, execution_id = await ask_and_answer(harness, GROUP, ALICE,
                                                f"{MENTION} Summarise the news")
    await comment_with_category(harness, GROUP, BOB, answer, execution_id, "Too long",
                                "three bullets max")
    await comment_with_category(harness, GROUP, ALICE, answer, execution_id, "Tone",
                                "less formal")
    rows = {row.user_id: row for row in await feedback_rows(harness)}
    bob, alice = rows[str(BOB.id)], rows[str(ALICE.id)]
    assert (bob.category, bob.comment, bob.from_admin) == ("too_long", "three bullets max",
                                                           True)
    assert (alice.category, alice.comment, alice.from_admin) == ("tone", "less formal", False)
    assert [(c["chat_id"], c["user_id"]) for c in double.of("getChatMember")] == [
        (GROUP.id, BOB.id), (GROUP.id, ALICE.id)]


async def test_malformed_stale_or_foreign_category_taps_record_nothing(
        harness: Harness, double: BotApiDouble) -> None:
    answer, execution_id = await ask_and_answer(harness, GROUP, ALICE, f"{MENTION} Hi")
    await harness.post(u.callback_update(GROUP, ALICE, answer["message_id"],
                                         f"fb:{execution_id}:c"))
    keyboard = category_message(double, GROUP.id)
    sent_before = len(double.of("sendMessage"))

    async def tap(user: User, data: str) -> dict[str, Any]:
        await harness.post(u.callback_update(GROUP, user, keyboard["message_id"], data,
                                             text=keyboard["text"]))
        return double.of("answerCallbackQuery")[-1]

    malformed = await tap(ALICE, f"fc:{execution_id}:{ALICE.id}:banana")
    assert malformed["text"] == "This button is no longer active."
    unknown = await tap(ALICE, f"fc:999999:{ALICE.id}:too_long")
    assert (unknown["text"], unknown["show_alert"]) == ("I couldn't find that answer.", True)
    foreign = await tap(BOB, choice_data(keyboard, "Wrong"))  # Alice's keyboard
    assert foreign["show_alert"] is True and "tap 💬 under the answer" in foreign["text"]
    # another chat's answer can't be categorised from here
    _, private_execution = await ask_and_answer(harness, u.private(501), ALICE, "Hello")
    elsewhere = await tap(ALICE, f"fc:{private_execution}:{ALICE.id}:wrong")
    assert elsewhere["text"] == "I couldn't find that answer."

    assert await feedback_rows(harness) == []
    assert force_replies(double, GROUP.id) == [] and double.of("editMessageText") == []
    assert len(double.of("sendMessage")) == sent_before + 1  # only the private answer


async def test_commands_and_admin_checks(harness: Harness, double: BotApiDouble) -> None:
    double.set_member(GROUP.id, BOB.id, "administrator")
    await harness.post(u.text_update(GROUP, ALICE, "/status"))
    assert double.of("getChatMember") == []  # not an admin command
    status = double.sent(GROUP.id)[-1]
    assert "evobot status" in status["text"] and "Active version" in status["text"]
    await harness.post(u.text_update(GROUP, ALICE, f"/pause@{BOT_USERNAME}"))
    refused = double.sent(GROUP.id)[-1]
    assert "Only workspace or chat admins can use" in refused["text"]
    assert double.of("getChatMember")[-1]["user_id"] == ALICE.id
    await harness.post(u.text_update(GROUP, BOB, "/pause"))
    assert "Evolution paused" in double.sent(GROUP.id)[-1]["text"]
    # private chats: the user is the admin of their own tenant
    await harness.post(u.text_update(u.private(501), ALICE, "/resume"))
    assert "Evolution resumed" in double.sent(501)[-1]["text"]
    assert len(double.of("getChatMember")) == 2
    # commands for other bots are not ours
    before = len(double.of("sendMessage"))
    await harness.post(u.text_update(GROUP, ALICE, "/status@another_bot"))
    assert len(double.of("sendMessage")) == before


async def _domain(harness: Harness, tenant_id: str) -> str:
    async with harness.rt.repo(tenant_id) as repo:
        tenant = await repo.tenant()
        return tenant.domain if tenant else "general"


async def test_setting_the_domain_takes_a_chat_admin(harness: Harness,
                                                     double: BotApiDouble) -> None:
    """Reading the domain is for anyone; setting it asks Telegram whether the caller is an
    administrator of the chat (neither user is in EVOBOT_ADMINS)."""
    tenant = f"telegram:{GROUP.id}"
    assert not {str(ALICE.id), str(BOB.id)} & set(harness.rt.settings.admins)
    double.set_member(GROUP.id, ALICE.id, "member")
    double.set_member(GROUP.id, BOB.id, "administrator")

    await harness.post(u.text_update(GROUP, ALICE, "/domain"))
    assert "Domain: general" in double.sent(GROUP.id)[-1]["text"]
    assert double.of("getChatMember") == []  # reading needs no admin rights

    await harness.post(u.text_update(GROUP, ALICE, "/domain legal"))
    refused = double.sent(GROUP.id)[-1]
    assert "Only workspace or chat admins can use" in refused["text"]
    assert [(c["chat_id"], c["user_id"]) for c in double.of("getChatMember")] == [
        (GROUP.id, ALICE.id)]
    assert await _domain(harness, tenant) == "general"

    await harness.post(u.text_update(GROUP, BOB, f"/domain@{BOT_USERNAME} legal"))
    assert "Domain set to legal" in double.sent(GROUP.id)[-1]["text"]
    assert double.of("getChatMember")[-1]["user_id"] == BOB.id
    assert await _domain(harness, tenant) == "legal"


async def test_startup_registers_commands_and_the_webhook(
        embedded: Stack, double: BotApiDouble, settings: TelegramSettings) -> None:
    from dataclasses import replace


    h = await make_harness(embedded, replace(settings, webhook_url="https://bot.example/tg"),
                           double)
    try:
        await h.hook.startup()
        [commands] = double.of("setMyCommands")
        menu = commands["commands"]
        assert [c["command"] for c in menu] == [c.name for c in listed()]  # in registry order
        assert {"pin", "unpin", "domain", "patterns", "rollback", "help"} <= {
            c["command"] for c in menu}
        assert not {"apply", "dismiss", "start"} & {c["command"] for c in menu}  # unlisted
        assert all(1 <= len(c["description"]) <= 256 for c in menu)
        diff = next(c for c in menu if c["command"] == "diff")
        assert diff["description"].startswith("Prompt diff between versions")
        assert diff["description"].endswith("/diff [a] [b]")
        assert double.webhook["url"] == "https://bot.example/tg"
        assert double.webhook["secret_token"] == settings.webhook_secret
        assert double.webhook["allowed_updates"] == ["message", "callback_query",
                                                     "message_reaction"]
    finally:
        await h.aclose()


async def test_full_loop_in_process(harness: Harness, double: BotApiDouble) -> None:
    """👎 + comment by a member → a canary for them, announced in the group → Roll back
    button: refused for the member, done by an admin (the canary is dropped)."""
    double.set_member(GROUP.id, BOB.id, "creator")
    await harness.post(u.text_update(GROUP, ALICE, f"{MENTION} What is the capital of France?"))
    await harness.drain()
    [answer] = answers(double, GROUP.id)
    [execution] = await harness.executions()
    await harness.post(u.reaction_update(GROUP, ALICE, answer["message_id"], [], ["👎"]))
    await comment_with_category(harness, GROUP, ALICE, answer, execution.id, "Skip",
                                "answer in French please")
    await harness.drain()
    announcement = double.sent(GROUP.id)[-1]
    assert "(canary): v1 → v2" in announcement["text"]
    assert "canary for you and 20% of the group" in announcement["text"]
    assert '<pre><code class="language-diff">' in announcement["html"]
    assert "+1. Answer in French please." in announcement["text"]
    assert await harness.version("telegram:-100111") == 1
    assert await harness.canary("telegram:-100111") == 2

    press = u.callback_update(GROUP, ALICE, announcement["message_id"], "do:rollback:1",
                              text=announcement["text"])
    await harness.post(press)
    refusal = double.of("answerCallbackQuery")[-1]
    assert refusal["show_alert"] is True and "Only workspace or chat admins" in refusal["text"]
    assert await harness.canary("telegram:-100111") == 2

    await harness.post(u.callback_update(GROUP, BOB, announcement["message_id"],
                                         "do:rollback:1", text=announcement["text"]))
    assert await harness.version("telegram:-100111") == 1
    assert await harness.canary("telegram:-100111") is None
    assert "Rolled back: v2 → v1" in double.of("answerCallbackQuery")[-1]["text"]
    [skipped, edit] = double.of("editMessageText")  # the category message, the announcement
    assert skipped["text"].endswith("Alice</a>: no category")
    assert "Rolled back by Bob" in edit["text"] and "reply_markup" not in edit
    assert any("Rolled back by 502: v2 → v1" in m["text"] for m in double.sent(GROUP.id))


async def test_a_bot_api_outage_at_boot_does_not_stop_the_web_process(
        harness: Harness, double: BotApiDouble) -> None:
    double.fail("getMe", status=502, description="Bad Gateway", times=2)
    await harness.hook.startup()  # logged, not raised
    update = u.text_update(u.private(501), ALICE, "are you up?")
    assert (await harness.post(update)).status_code == 503  # still down: Telegram retries
    assert (await harness.post(update)).status_code == 200
    assert len(await harness.executions()) == 1
