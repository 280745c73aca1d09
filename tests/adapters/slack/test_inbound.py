"""The inbound converters: Slack payloads → engine types (pure functions)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from adapters.slack import inbound, outbound
from engine.types import FeedbackCategory, FeedbackSource

TENANT = "slack:T1"


# --- tenants ----------------------------------------------------------------------------------


def test_tenant_ids_round_trip() -> None:
    assert inbound.tenant_id("T1") == "slack:T1"
    assert inbound.tenant_id("T1", "E1") == "slack:E1:T1"
    assert inbound.parse_tenant("slack:T1") == (None, "T1")
    assert inbound.parse_tenant("slack:E1:T1") == ("E1", "T1")
    with pytest.raises(ValueError):
        inbound.parse_tenant("telegram:5")


# --- reactions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "rating"),
    [
        ("+1", 4), ("+1::skin-tone-3", 4), ("thumbsup::skin-tone-6", 4), ("-1", 2),
        ("-1::skin-tone-2", 2), ("white_check_mark", 4), ("star", 5), ("star2", 5),
        ("star-struck", 5), ("trophy", 5), ("100", 5), ("fire", 5), ("tada", 5), ("heart", 5),
        ("thinking_face", 3), ("confused", 3), ("x", 1), ("rage", 1), ("hankey", 1),
        ("clown_face", 1), ("one", 1), ("two", 2), ("three", 3), ("four", 4), ("five", 5),
        ("eyes", None), ("wave::skin-tone-4", None),
    ],
)
def test_reaction_map(name: str, rating: int | None) -> None:
    assert inbound.reaction_rating(name) == rating


def test_reaction_events_become_ratings_and_retractions() -> None:
    event = {"type": "reaction_added", "user": "U2", "reaction": "-1::skin-tone-5",
             "item": {"type": "message", "channel": "C1", "ts": "9.9"}, "item_user": "UBOT"}
    feedback = inbound.reaction_to_feedback(event, TENANT, removed=False)
    assert feedback is not None
    assert (feedback.rating, feedback.retract, feedback.source) == (2, False,
                                                                    FeedbackSource.REACTION)
    assert feedback.answer_ref is not None and feedback.answer_ref.message_id == "9.9"
    removed = inbound.reaction_to_feedback(event, TENANT, removed=True)
    assert removed is not None and removed.retract and removed.rating is None
    assert inbound.reaction_to_feedback({**event, "reaction": "eyes"}, TENANT,
                                        removed=False) is None
    file_item = {**event, "item": {"type": "file", "file": "F1"}}
    assert inbound.reaction_to_feedback(file_item, TENANT, removed=False) is None


# --- inbound messages -------------------------------------------------------------------------


def test_mention_text_is_cleaned_and_threaded() -> None:
    event = {"type": "app_mention", "user": "U1", "channel": "C1", "ts": "1.5",
             "text": "<@UBOT> compare <https://a.example/x?a=1&amp;b=2|this page> &amp; "
                     "<mailto:x@y.z|x@y.z> for <@U2>"}
    message = inbound.mention_to_message(event, TENANT, "UBOT")
    assert message.text == "compare this page (https://a.example/x?a=1&b=2) & x@y.z for <@U2>"
    assert (message.thread_id, message.message_id) == ("1.5", "1.5")
    in_thread = inbound.mention_to_message({**event, "thread_ts": "1.0"}, TENANT, "UBOT")
    assert in_thread.thread_id == "1.0"


@pytest.mark.parametrize(
    ("event", "is_user"),
    [
        ({"user": "U1", "ts": "1.0", "channel": "C1", "text": "hi"}, True),
        ({"user": "U1", "ts": "1.0", "channel": "C1", "subtype": "file_share"}, True),
        ({"user": "U1", "ts": "1.0", "channel": "C1", "subtype": "thread_broadcast"}, True),
        ({"user": "U1", "ts": "1.0", "channel": "C1", "text": 12345}, False),  # malformed
        ({"user": "U1", "ts": "1.0", "text": "hi"}, False),  # no channel: malformed
        ({"user": "U1", "ts": "1.0", "subtype": "message_changed"}, False),
        ({"ts": "1.0", "subtype": "message_deleted"}, False),
        ({"user": "U1", "ts": "1.0", "subtype": "channel_join"}, False),
        ({"ts": "1.0", "subtype": "bot_message", "bot_id": "B1"}, False),
        ({"user": "U9", "ts": "1.0", "bot_id": "B9"}, False),
    ],
)
def test_only_peoples_new_messages_count(event: dict[str, str], is_user: bool) -> None:
    assert inbound.is_user_message(event) is is_user


def test_direct_and_thread_messages() -> None:
    dm = {"user": "U1", "channel": "D1", "channel_type": "im", "ts": "2.0", "text": "hello"}
    assert inbound.is_direct_message(dm)
    assert inbound.message_to_message(dm, TENANT, "UBOT").thread_id is None
    reply = {"user": "U1", "channel": "C1", "ts": "3.0", "thread_ts": "1.0", "text": "more"}
    assert inbound.thread_root(reply) == "1.0"
    assert inbound.message_to_message(reply, TENANT, "UBOT").thread_id == "1.0"
    assert inbound.thread_root({"ts": "1.0", "thread_ts": "1.0"}) is None  # the root itself
    assert inbound.mentions("hey <@UBOT>", "UBOT") and not inbound.mentions("hey", "UBOT")


# --- buttons, modal, commands ---------------------------------------------------------------


def test_buttons_and_select_become_ratings() -> None:
    up = inbound.action_to_feedback({"action_id": inbound.ACTION_UP, "value": "7"}, "U1", TENANT)
    down = inbound.action_to_feedback({"action_id": inbound.ACTION_DOWN, "value": "7"}, "U1",
                                      TENANT)
    select = inbound.action_to_feedback(
        {"action_id": inbound.ACTION_SELECT, "selected_option": {"value": "7:3"}}, "U1", TENANT
    )
    assert up is not None and down is not None and select is not None
    assert [(f.execution_id, f.rating) for f in (up, down, select)] == [(7, 4), (7, 2), (7, 3)]
    assert up.source == FeedbackSource.BUTTON
    assert inbound.action_to_feedback({"action_id": inbound.ACTION_UP, "value": "x"}, "U1",
                                      TENANT) is None
    assert inbound.action_to_feedback(
        {"action_id": inbound.ACTION_SELECT, "selected_option": {"value": "7:9"}}, "U1", TENANT
    ) is None


def test_comment_modal_round_trip() -> None:
    target = inbound.CommentTarget(7, "C1", "1.0")
    view = outbound.comment_modal(target)
    assert view["callback_id"] == inbound.COMMENT_VIEW and len(view["title"]["text"]) <= 24
    submitted = {**view, "state": {"values": {
        "comment": {"text": {"type": "plain_text_input", "value": "  Be shorter.  "}},
        "rating": {"stars": {"type": "static_select", "selected_option": {"value": "2"}}},
    }}}
    parsed = inbound.view_to_feedback(submitted, "U1", TENANT)
    assert parsed is not None
    feedback, back = parsed
    assert (feedback.comment, feedback.rating, feedback.execution_id) == ("Be shorter.", 2, 7)
    assert back == target
    empty = {**view, "state": {"values": {"comment": {"text": {"value": " "}}}}}
    assert inbound.view_to_feedback(empty, "U1", TENANT) is None


def submitted_modal(values: dict[str, Any]) -> dict[str, Any]:
    view = outbound.comment_modal(inbound.CommentTarget(7, "C1", "1.0"))
    return {**view, "state": {"values": values}}


def test_comment_modal_carries_category_and_suggestion() -> None:
    view = submitted_modal({
        "category": {"category": {"type": "static_select",
                                  "selected_option": {"value": "too_long"}}},
        "comment": {"text": {"type": "plain_text_input", "value": "Shorter please."}},
        "suggestion": {"text": {"type": "plain_text_input", "value": "  Two sentences.  "}},
    })
    parsed = inbound.view_to_feedback(view, "U1", TENANT)
    assert parsed is not None
    feedback = parsed[0]
    assert feedback.category is FeedbackCategory.TOO_LONG
    assert (feedback.comment, feedback.suggestion, feedback.rating) == (
        "Shorter please.", "Two sentences.", None)
    assert feedback.from_admin is False  # the app decides that, from users.info


def test_comment_modal_blank_optional_inputs_are_none() -> None:
    view = submitted_modal({
        "category": {"category": {"type": "static_select", "selected_option": None}},
        "comment": {"text": {"type": "plain_text_input", "value": "Cite sources."}},
        "suggestion": {"text": {"type": "plain_text_input", "value": "   "}},
        "rating": {"stars": {"type": "static_select", "selected_option": {"value": "9"}}},
    })
    parsed = inbound.view_to_feedback(view, "U1", TENANT)
    assert parsed is not None
    assert (parsed[0].category, parsed[0].suggestion, parsed[0].rating) == (None, None, None)


def test_an_unknown_category_is_no_category_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    view = submitted_modal({
        "category": {"category": {"selected_option": {"value": "rude<script>"}}},
        "comment": {"text": {"value": "Too blunt."}},
    })
    with caplog.at_level(logging.WARNING, logger="adapters.slack.inbound"):
        parsed = inbound.view_to_feedback(view, "U1", TENANT)
    assert parsed is not None
    assert (parsed[0].category, parsed[0].comment) == (None, "Too blunt.")
    assert "unknown feedback category 'rude<script>'" in caplog.text


def test_a_suggestion_alone_is_enough_to_submit() -> None:
    view = submitted_modal({"suggestion": {"text": {"value": "Paris."}}})
    parsed = inbound.view_to_feedback(view, "U1", TENANT)
    assert parsed is not None and parsed[0].suggestion == "Paris."


def test_slash_command_text() -> None:
    assert inbound.parse_command_text("") == ("help", [])
    assert inbound.parse_command_text("Diff 3 4") == ("diff", ["3", "4"])
    assert inbound.parse_command_text('privacy "federated') == ("privacy", ['"federated'])
    command = inbound.command_to_inbound(
        {"user_id": "U1", "channel_id": "C1", "text": "rollback 2"}, TENANT, is_admin=True
    )
    assert (command.name, command.args, command.is_admin, command.channel_id) == (
        "rollback", ["2"], True, "C1")
    button = inbound.button_to_command({"action_id": "evobot:cmd:rollback", "value": "3"}, "U1",
                                       "C1", TENANT, is_admin=False)
    assert button is not None and (button.name, button.args) == ("rollback", ["3"])


# --- what the listeners act on -------------------------------------------------------------


def test_event_ids_are_read_from_event_callbacks_only() -> None:
    assert inbound.event_id({"type": "event_callback", "event_id": "Ev1"}) == "Ev1"
    assert inbound.event_id({"type": "event_callback"}) is None
    assert inbound.event_id({"type": "block_actions", "event_id": "Ev1"}) is None
    assert inbound.event_id({"command": "/evobot", "text": "help"}) is None
    assert inbound.event_id(None) is None


def test_reactions_on_other_peoples_messages_are_not_ours() -> None:
    assert inbound.reacts_to_bot({"item_user": "UBOT"}, "UBOT")
    assert inbound.reacts_to_bot({}, "UBOT")  # Slack left item_user out: the engine decides
    assert not inbound.reacts_to_bot({"item_user": "U2"}, "UBOT")


@pytest.mark.parametrize(
    ("event", "acts"),
    [
        ({"user": "U1", "ts": "1.0", "channel": "D1", "channel_type": "im", "text": "hi"}, True),
        ({"user": "U1", "ts": "1.0", "channel": "C1", "text": "in a thread"}, True),
        # the app_mention event of the same post answers it
        ({"user": "U1", "ts": "1.0", "channel": "C1", "text": "<@UBOT> hi"}, False),
        ({"user": "U1", "ts": "1.0", "channel": "D1", "channel_type": "im",
          "text": "<@UBOT> hi"}, True),
        ({"user": "U1", "ts": "1.0", "channel": "D1", "channel_type": "im", "text": "<@UBOT>"},
         False),
        ({"user": "U1", "ts": "1.0", "channel": "C1", "subtype": "message_changed"}, False),
    ],
)
def test_which_message_events_the_message_listener_takes(event: dict[str, str],
                                                         acts: bool) -> None:
    assert inbound.is_unmentioned_message(event, "UBOT") is acts


def test_comment_button_and_action_place() -> None:
    body = {"channel": {"id": "C1"}, "message": {"ts": "2.0", "thread_ts": "1.0"}}
    assert inbound.action_place(body) == ("C1", "1.0")
    assert inbound.action_place({}) == (None, None)
    target = inbound.comment_target(body, {"action_id": inbound.ACTION_COMMENT, "value": "7"})
    assert target == inbound.CommentTarget(7, "C1", "1.0")
    assert inbound.comment_target(body, {"value": "seven"}) is None
    assert inbound.RATE_ACTIONS.match(inbound.ACTION_SELECT)
    assert not inbound.RATE_ACTIONS.match(inbound.ACTION_COMMENT)
    assert inbound.COMMAND_ACTIONS.match("evobot:cmd:rollback")
