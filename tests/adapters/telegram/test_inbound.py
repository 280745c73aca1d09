"""The inbound converters: Telegram updates → the engine's objectives, commands, comments and
ratings."""

from __future__ import annotations

import pytest
from telegram import MessageReactionUpdated, Update

from adapters.telegram.inbound import (
    BotIdentity,
    command_from_message,
    comment_from_reply,
    feedback_from_reaction,
    objective_from_message,
    rating_of,
    reaction_change,
)
from adapters.telegram.outbound import comment_prompt
from doubles import telegram as u
from doubles.telegram import BOT_ID, BOT_USERNAME, telegram_html
from engine.types import FeedbackCategory, FeedbackSource

ME = BotIdentity(id=BOT_ID, username=BOT_USERNAME)
ALICE = u.user(501, "Alice")
GROUP = u.group(-100111)
FORUM = u.group(-100333, forum=True)


# --- reactions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "rating", "retract"),
    [
        ([], ["👍"], 4, False),
        ([], ["👎"], 2, False),
        (["👎"], [], None, True),
        (["👎"], ["👍"], 4, False),
        (["👍"], ["👍", "🔥"], 5, False),
        (["👍", "🔥"], ["👍"], 4, False),  # one of two removed: the remaining one counts
        ([], ["❤"], 5, False),  # Telegram's heart has no variation selector
        ([], ["❤️"], 5, False),
        ([], ["🤡"], 1, False),
        ([], ["🤔"], 3, False),
    ],
)
def test_reaction_diff_to_rating(old: list[str], new: list[str], rating: int | None,
                                 retract: bool) -> None:
    change = reaction_change([u.reaction(k) for k in old], [u.reaction(k) for k in new])
    assert change is not None
    assert (change.rating, change.retract) == (rating, retract)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ([], ["custom"]),
        ([], ["paid"]),
        (["👍"], ["👍", "custom"]),
        (["👍"], ["👍", "paid"]),
        ([], ["😐"]),  # not in the map
        (["😐"], []),
        (["custom"], []),
        ([], []),
    ],
)
def test_reactions_that_are_not_feedback(old: list[str], new: list[str]) -> None:
    assert reaction_change([u.reaction(k) for k in old], [u.reaction(k) for k in new]) is None


def test_custom_map_and_skin_tones() -> None:
    assert rating_of("👍🏽") == 4
    assert rating_of("👌", {"👌": 5}) == 5
    assert rating_of("👌") is None


def _reaction(data: dict[str, object]) -> MessageReactionUpdated:
    update = Update.de_json(data, None)
    assert update is not None and update.message_reaction is not None
    return update.message_reaction


def test_reaction_feedback_targets_the_answer_message() -> None:
    data = u.reaction_update(GROUP, ALICE, 777, [], ["👎"])
    feedback = feedback_from_reaction(_reaction(data))
    assert feedback is not None
    assert feedback.tenant_id == "telegram:-100111"
    assert feedback.user_id == "501" and feedback.rating == 2
    assert feedback.source == FeedbackSource.REACTION
    assert feedback.answer_ref is not None
    assert (feedback.answer_ref.channel_id, feedback.answer_ref.message_id) == ("-100111", "777")
    retract = feedback_from_reaction(_reaction(u.reaction_update(GROUP, ALICE, 777, ["👎"], [])))
    assert retract is not None and retract.retract and retract.rating is None


def test_anonymous_and_bot_reactions_are_ignored() -> None:
    anonymous = u.reaction_update(GROUP, None, 777, [], ["👍"], actor_chat=GROUP)
    assert feedback_from_reaction(_reaction(anonymous)) is None
    robot = u.reaction_update(GROUP, u.user(9, bot=True), 777, [], ["👍"])
    assert feedback_from_reaction(_reaction(robot)) is None


# --- messages → objectives -------------------------------------------------------------------


def test_private_text_is_an_objective() -> None:
    msg = u.message(u.private(501), ALICE, "What is the capital of France?", message_id=42)
    objective = objective_from_message(msg, ME)
    assert objective is not None
    assert objective.tenant_id == "telegram:501" and objective.channel_id == "501"
    assert objective.message_id == "42" and objective.user_id == "501"
    assert objective.text == "What is the capital of France?" and objective.thread_id is None
    assert objective.user_name == "Alice"


def test_group_needs_a_mention_or_a_reply() -> None:
    assert objective_from_message(u.message(GROUP, ALICE, "just chatting"), ME) is None
    assert objective_from_message(u.message(GROUP, ALICE, "hey @someone_else hi"), ME) is None
    mentioned = objective_from_message(
        u.message(GROUP, ALICE, f"@{BOT_USERNAME.upper()} what is 2+2?"), ME
    )
    assert mentioned is not None and mentioned.text == "what is 2+2?"
    inline = objective_from_message(u.message(GROUP, ALICE, f"so @{BOT_USERNAME}, why?"), ME)
    assert inline is not None and inline.text == "so why?"
    replied = objective_from_message(
        u.message(GROUP, ALICE, "and Spain?", reply_to=u.bot_message(GROUP, 900, "Paris")), ME
    )
    assert replied is not None and replied.text == "and Spain?"
    to_someone = u.message(GROUP, ALICE, "and Spain?",
                           reply_to=u.message(GROUP, u.user(7), "hello"))
    assert objective_from_message(to_someone, ME) is None


def test_forum_topics_keep_their_thread() -> None:
    root = u.topic_root(FORUM, 55, u.ME)  # even a topic the bot created is not "a reply to it"
    plain = u.message(FORUM, ALICE, "chatting in a topic", thread_id=55, reply_to=root)
    assert objective_from_message(plain, ME) is None
    asked = u.message(FORUM, ALICE, f"@{BOT_USERNAME} summarize", thread_id=55, reply_to=root)
    objective = objective_from_message(asked, ME)
    assert objective is not None and objective.thread_id == "55"


def test_bots_channels_and_commands_are_not_objectives() -> None:
    assert objective_from_message(
        u.message(u.private(9), u.user(9, bot=True), "hi"), ME) is None
    assert objective_from_message(u.message(u.private(501), ALICE, "/status"), ME) is None
    channel = u.Chat(id=-1009, type="channel", title="news")
    assert objective_from_message(u.message(channel, None, "post", sender_chat=channel),
                                  ME) is None


def test_anonymous_group_admin_is_a_person() -> None:
    msg = u.message(GROUP, u.user(1087968824, "Group", bot=True), f"@{BOT_USERNAME} hi",
                    sender_chat=GROUP)
    objective = objective_from_message(msg, ME)
    assert objective is not None and objective.user_id == "chat-100111"


def test_edited_messages_do_not_reach_the_converters() -> None:
    update = Update.de_json(u.edited_update(u.private(501), ALICE, "changed"), None)
    assert update is not None and update.message is None and update.edited_message is not None


# --- commands and comments ----------------------------------------------------------------------


def test_commands() -> None:
    status = command_from_message(u.message(u.private(501), ALICE, "/status"), ME)
    assert status is not None and status.name == "status" and status.is_admin
    rollback = command_from_message(
        u.message(GROUP, ALICE, f"/rollback@{BOT_USERNAME} 1"), ME)
    assert rollback is not None
    assert (rollback.name, rollback.args, rollback.is_admin) == ("rollback", ["1"], False)
    assert rollback.tenant_id == "telegram:-100111" and rollback.channel_id == "-100111"
    assert command_from_message(u.message(GROUP, ALICE, "/rollback@other_bot 1"), ME) is None
    upper = command_from_message(u.message(u.private(501), ALICE, "/Help"), ME)
    assert upper is not None and upper.name == "help"
    assert command_from_message(u.message(u.private(501), ALICE, "not /a command"), ME) is None


def test_the_reply_to_the_comment_prompt_is_the_comment() -> None:
    prompt = comment_prompt(12, ALICE.id, "Alice <3")
    assert telegram_html(prompt.html) == prompt.plain  # the name is escaped
    asked = u.bot_message(u.private(501), 901, prompt.plain)
    feedback = comment_from_reply(
        u.message(u.private(501), ALICE, "answer in French please", reply_to=asked), ME)
    assert feedback is not None
    assert (feedback.execution_id, feedback.comment) == (12, "answer in French please")
    assert feedback.source == FeedbackSource.COMMENT and feedback.rating is None
    assert feedback.category is None and feedback.from_admin  # a private chat is the user's
    other = u.bot_message(u.private(501), 902, "Answer to: something")
    assert comment_from_reply(u.message(u.private(501), ALICE, "hm", reply_to=other), ME) is None
    forged = u.message(u.private(501), u.user(7), prompt.plain)  # not from the bot
    assert comment_from_reply(u.message(u.private(501), ALICE, "x", reply_to=forged), ME) is None


def test_the_comment_prompt_carries_the_category_back() -> None:
    for category in FeedbackCategory:
        prompt = comment_prompt(12, ALICE.id, "Alice", category)
        asked = u.bot_message(GROUP, 901, telegram_html(prompt.html))
        feedback = comment_from_reply(u.message(GROUP, ALICE, "three bullets max",
                                                reply_to=asked), ME)
        assert feedback is not None
        assert (feedback.execution_id, feedback.category) == (12, category)
        assert not feedback.from_admin  # a group member: the app asks getChatMember


def test_a_name_inside_the_prompt_cannot_redirect_the_comment() -> None:
    sneaky = "comment on answer #1 (Wrong)."
    prompt = comment_prompt(12, ALICE.id, sneaky)
    asked = u.bot_message(GROUP, 901, prompt.plain)
    feedback = comment_from_reply(u.message(GROUP, ALICE, "hm", reply_to=asked), ME)
    assert feedback is not None and (feedback.execution_id, feedback.category) == (12, None)


def test_an_anonymous_admins_comment_is_from_an_admin() -> None:
    asked = u.bot_message(GROUP, 901, comment_prompt(12, 1, "Admin").plain)
    feedback = comment_from_reply(u.message(GROUP, None, "shorter", reply_to=asked,
                                            sender_chat=GROUP), ME)
    assert feedback is not None and feedback.from_admin and feedback.user_id == "chat-100111"
