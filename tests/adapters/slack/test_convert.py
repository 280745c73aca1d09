"""The pure converters: Slack payloads → engine types, engine types → Block Kit."""

from __future__ import annotations

import json

import pytest

from adapters.slack import convert
from engine.present import evolution_document, rollback_document
from engine.types import (
    AnswerReady,
    Block,
    Decision,
    Document,
    FeedbackResult,
    FeedbackSource,
)

TENANT = "slack:T1"


def answer(text: str, execution_id: int = 7) -> AnswerReady:
    return AnswerReady(
        tenant_id=TENANT, execution_id=execution_id, channel_id="C1", thread_id="1.0",
        reply_to="1.0", user_id="U1", text=text, version=12, tool_count=2, duration_s=3.1,
        footer="v12 · 2 tools · 3.1 s",
    )


# --- tenants ----------------------------------------------------------------------------------


def test_tenant_ids_round_trip() -> None:
    assert convert.tenant_id("T1") == "slack:T1"
    assert convert.tenant_id("T1", "E1") == "slack:E1:T1"
    assert convert.parse_tenant("slack:T1") == (None, "T1")
    assert convert.parse_tenant("slack:E1:T1") == ("E1", "T1")
    with pytest.raises(ValueError):
        convert.parse_tenant("telegram:5")


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
    assert convert.reaction_rating(name) == rating


def test_reaction_events_become_ratings_and_retractions() -> None:
    event = {"type": "reaction_added", "user": "U2", "reaction": "-1::skin-tone-5",
             "item": {"type": "message", "channel": "C1", "ts": "9.9"}, "item_user": "UBOT"}
    feedback = convert.reaction_to_feedback(event, TENANT, removed=False)
    assert feedback is not None
    assert (feedback.rating, feedback.retract, feedback.source) == (2, False,
                                                                    FeedbackSource.REACTION)
    assert feedback.answer_ref is not None and feedback.answer_ref.message_id == "9.9"
    removed = convert.reaction_to_feedback(event, TENANT, removed=True)
    assert removed is not None and removed.retract and removed.rating is None
    assert convert.reaction_to_feedback({**event, "reaction": "eyes"}, TENANT,
                                        removed=False) is None
    file_item = {**event, "item": {"type": "file", "file": "F1"}}
    assert convert.reaction_to_feedback(file_item, TENANT, removed=False) is None


# --- inbound messages -------------------------------------------------------------------------


def test_mention_text_is_cleaned_and_threaded() -> None:
    event = {"type": "app_mention", "user": "U1", "channel": "C1", "ts": "1.5",
             "text": "<@UBOT> compare <https://a.example/x?a=1&amp;b=2|this page> &amp; "
                     "<mailto:x@y.z|x@y.z> for <@U2>"}
    message = convert.mention_to_message(event, TENANT, "UBOT")
    assert message.text == "compare this page (https://a.example/x?a=1&b=2) & x@y.z for <@U2>"
    assert (message.thread_id, message.message_id) == ("1.5", "1.5")
    in_thread = convert.mention_to_message({**event, "thread_ts": "1.0"}, TENANT, "UBOT")
    assert in_thread.thread_id == "1.0"


@pytest.mark.parametrize(
    ("event", "is_user"),
    [
        ({"user": "U1", "ts": "1.0", "text": "hi"}, True),
        ({"user": "U1", "ts": "1.0", "subtype": "file_share"}, True),
        ({"user": "U1", "ts": "1.0", "subtype": "thread_broadcast"}, True),
        ({"user": "U1", "ts": "1.0", "subtype": "message_changed"}, False),
        ({"ts": "1.0", "subtype": "message_deleted"}, False),
        ({"user": "U1", "ts": "1.0", "subtype": "channel_join"}, False),
        ({"ts": "1.0", "subtype": "bot_message", "bot_id": "B1"}, False),
        ({"user": "U9", "ts": "1.0", "bot_id": "B9"}, False),
    ],
)
def test_only_peoples_new_messages_count(event: dict[str, str], is_user: bool) -> None:
    assert convert.is_user_message(event) is is_user


def test_direct_and_thread_messages() -> None:
    dm = {"user": "U1", "channel": "D1", "channel_type": "im", "ts": "2.0", "text": "hello"}
    assert convert.is_direct_message(dm)
    assert convert.message_to_message(dm, TENANT, "UBOT").thread_id is None
    reply = {"user": "U1", "channel": "C1", "ts": "3.0", "thread_ts": "1.0", "text": "more"}
    assert convert.thread_root(reply) == "1.0"
    assert convert.message_to_message(reply, TENANT, "UBOT").thread_id == "1.0"
    assert convert.thread_root({"ts": "1.0", "thread_ts": "1.0"}) is None  # the root itself
    assert convert.mentions("hey <@UBOT>", "UBOT") and not convert.mentions("hey", "UBOT")


# --- buttons, modal, commands ---------------------------------------------------------------


def test_buttons_and_select_become_ratings() -> None:
    up = convert.action_to_feedback({"action_id": convert.ACTION_UP, "value": "7"}, "U1", TENANT)
    down = convert.action_to_feedback({"action_id": convert.ACTION_DOWN, "value": "7"}, "U1",
                                      TENANT)
    select = convert.action_to_feedback(
        {"action_id": convert.ACTION_SELECT, "selected_option": {"value": "7:3"}}, "U1", TENANT
    )
    assert up is not None and down is not None and select is not None
    assert [(f.execution_id, f.rating) for f in (up, down, select)] == [(7, 4), (7, 2), (7, 3)]
    assert up.source == FeedbackSource.BUTTON
    assert convert.action_to_feedback({"action_id": convert.ACTION_UP, "value": "x"}, "U1",
                                      TENANT) is None
    assert convert.action_to_feedback(
        {"action_id": convert.ACTION_SELECT, "selected_option": {"value": "7:9"}}, "U1", TENANT
    ) is None


def test_comment_modal_round_trip() -> None:
    target = convert.CommentTarget(7, "C1", "1.0")
    view = convert.comment_modal(target)
    assert view["callback_id"] == convert.COMMENT_VIEW and len(view["title"]["text"]) <= 24
    submitted = {**view, "state": {"values": {
        "comment": {"text": {"type": "plain_text_input", "value": "  Be shorter.  "}},
        "rating": {"stars": {"type": "static_select", "selected_option": {"value": "2"}}},
    }}}
    parsed = convert.view_to_feedback(submitted, "U1", TENANT)
    assert parsed is not None
    feedback, back = parsed
    assert (feedback.comment, feedback.rating, feedback.execution_id) == ("Be shorter.", 2, 7)
    assert back == target
    empty = {**view, "state": {"values": {"comment": {"text": {"value": " "}}}}}
    assert convert.view_to_feedback(empty, "U1", TENANT) is None


def test_slash_command_text() -> None:
    assert convert.parse_command_text("") == ("help", [])
    assert convert.parse_command_text("Diff 3 4") == ("diff", ["3", "4"])
    assert convert.parse_command_text('privacy "federated') == ("privacy", ['"federated'])
    command = convert.command_to_inbound(
        {"user_id": "U1", "channel_id": "C1", "text": "rollback 2"}, TENANT, is_admin=True
    )
    assert (command.name, command.args, command.is_admin, command.channel_id) == (
        "rollback", ["2"], True, "C1")
    button = convert.button_to_command({"action_id": "evobot:cmd:rollback", "value": "3"}, "U1",
                                       "C1", TENANT, is_admin=False)
    assert button is not None and (button.name, button.args) == ("rollback", ["3"])


# --- outbound ------------------------------------------------------------------------------


def test_markdown_becomes_escaped_mrkdwn() -> None:
    text = ("# Title\n**bold** and __also__ ~~gone~~ [docs](https://d.example/a?b=1&c=2)\n"
            "- item <!channel> & <@U1>\n```python\nif a < b and c > d: pass\n```\n`x**y**`")
    out = convert.mrkdwn(text)
    assert out.splitlines()[0] == "*Title*"
    assert "*bold* and *also* ~gone~ <https://d.example/a?b=1&amp;c=2|docs>" in out
    assert "• item &lt;!channel&gt; &amp; <@U1>" in out
    assert "```\nif a &lt; b and c &gt; d: pass\n```" in out  # language tag dropped
    assert out.endswith("`x**y**`")  # inline code untouched


def test_split_respects_limits_and_code_fences() -> None:
    code = "```\n" + "\n".join(f"line {i} " + "x" * 60 for i in range(200)) + "\n```"
    text = "intro paragraph\n\n" + code + "\n\n" + "word " * 2000
    pieces = convert.split_text(text, 3000)
    assert len(pieces) > 4
    assert all(len(p) <= 3000 for p in pieces)
    assert all(p.count("```") % 2 == 0 for p in pieces)
    joined = "".join(pieces).replace("```", "").replace("\n", "").replace(" ", "")
    assert joined == text.replace("```", "").replace("\n", "").replace(" ", "")
    assert convert.split_text("one line") == ["one line"]
    assert all(len(p) <= 100 for p in convert.split_text("y" * 1000, 100))


def test_answer_blocks_have_controls_and_footer() -> None:
    [message] = convert.answer_messages(answer("Paris is the **capital**."))
    kinds = [b["type"] for b in message.blocks]
    assert kinds == ["section", "actions", "context"]
    assert message.blocks[0]["text"]["text"] == "Paris is the *capital*."
    actions = message.blocks[1]["elements"]
    assert [a["action_id"] for a in actions] == [
        convert.ACTION_UP, convert.ACTION_DOWN, convert.ACTION_SELECT, convert.ACTION_COMMENT]
    assert [o["value"] for o in actions[2]["options"]] == ["7:5", "7:4", "7:3", "7:2", "7:1"]
    assert message.blocks[2]["elements"][0]["text"] == "v12 · 2 tools · 3.1 s"
    assert message.text.startswith("Paris")


def test_long_answers_split_over_messages_within_block_kit_limits() -> None:
    long = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum " * 200 for i in range(40))
    messages = convert.answer_messages(answer(long))
    assert len(messages) > 1
    for message in messages:
        assert len(message.blocks) <= convert.MAX_BLOCKS
        for block in message.blocks:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= convert.SECTION_LIMIT
        assert len(message.text) <= convert.FALLBACK_TEXT_LIMIT
    assert all(b["type"] != "actions" for m in messages[:-1] for b in m.blocks)
    assert messages[-1].blocks[-2]["type"] == "actions"
    smaller = convert.answer_messages(answer(long), message_budget=1000, section_limit=500)
    assert len(smaller) > len(messages)


def test_evolution_announcement_blocks() -> None:
    diff = ("--- v1\n+++ v2\n@@ -1 +1,2 @@\n You are evobot.\n"
            "+1. Answer in French <please> & thanks.")
    document = evolution_document(
        decision=Decision.PROMOTED, from_version=1, to_version=2, diff=diff,
        rationale="users asked: answer in French", replay_summary="replayed 1: 1 better",
        evolution_id=4,
    )
    blocks = convert.document_blocks(document)
    assert blocks[0] == {"type": "header",
                         "text": {"type": "plain_text", "text": "Agent evolved: v1 → v2",
                                  "emoji": True}}
    code = next(b for b in blocks if b["type"] == "section" and "```" in b["text"]["text"])
    assert "+1. Answer in French &lt;please&gt; &amp; thanks." in code["text"]["text"]
    assert any(b["type"] == "context" and "replayed 1" in b["elements"][0]["text"]
               for b in blocks)
    [button] = blocks[-1]["elements"]
    assert (button["action_id"], button["value"], button["style"]) == (
        "evobot:cmd:rollback", "1", "danger")
    assert button["confirm"]["confirm"]["text"] == "Roll back"


def test_long_diffs_are_truncated_with_a_note() -> None:
    diff = "--- v1\n+++ v2\n" + "\n".join(f"+rule {i} " + "z" * 80 for i in range(100))
    document = Document(summary="s", blocks=[Block(kind="diff", text=diff)])
    blocks = convert.document_blocks(document)
    assert len(blocks[0]["text"]["text"]) <= convert.SECTION_LIMIT
    assert blocks[0]["text"]["text"].endswith("\n```")
    assert "more lines of the diff not shown" in blocks[1]["elements"][0]["text"]


def test_rollback_document_mentions_the_actor() -> None:
    document = rollback_document(from_version=2, to_version=1, automatic=False,
                                 reason="Requested by <U0ADMIN>.", actor="U0ADMIN")
    blocks = convert.document_blocks(document)
    assert blocks[1]["text"]["text"] == "Requested by <@U0ADMIN>."
    fields = convert.document_blocks(Document(summary="s", blocks=[
        Block(kind="fields", fields=[(f"k{i}", "v") for i in range(12)])]))
    assert [len(b["fields"]) for b in fields] == [10, 2]
    json.dumps(fields)


def test_feedback_ack_text() -> None:
    result = FeedbackResult(recorded=True, execution_id=1, rating=2, message="Thanks — rated 2/5.",
                            evolution_queued=True)
    text = convert.feedback_ack(result, invite_comment=True)
    assert text.startswith("Thanks — rated 2/5.") and "Reply in this thread" in text


def test_manifest_matches_the_app() -> None:
    from pathlib import Path

    import yaml

    from adapters.slack.app import BOT_SCOPES, COMMAND

    manifest = yaml.safe_load(
        (Path(convert.__file__).parent / "manifest.yml").read_text(encoding="utf-8"))
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(BOT_SCOPES)
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == [COMMAND]
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert {"app_mention", "message.im", "reaction_added", "reaction_removed",
            "tokens_revoked", "app_uninstalled"} <= set(events)
    urls = {manifest["settings"]["event_subscriptions"]["request_url"],
            manifest["settings"]["interactivity"]["request_url"],
            manifest["features"]["slash_commands"][0]["url"]}
    assert {u.rsplit("/", 2)[-2:] == ["slack", "events"] for u in urls} == {True}
    assert manifest["oauth_config"]["redirect_urls"][0].endswith("/slack/oauth_redirect")
