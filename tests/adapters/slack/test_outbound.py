"""The outbound converters: engine types → Block Kit (pure functions)."""

from __future__ import annotations

import json

from adapters.slack import inbound, outbound
from doubles.slack import view_problems
from engine.present import evolution_document, rollback_document
from engine.types import (
    AnswerReady,
    Block,
    Decision,
    Document,
    FeedbackCategory,
    FeedbackResult,
)

TENANT = "slack:T1"


def answer(text: str, execution_id: int = 7) -> AnswerReady:
    return AnswerReady(
        tenant_id=TENANT, execution_id=execution_id, channel_id="C1", thread_id="1.0",
        reply_to="1.0", user_id="U1", text=text, version=12, tool_count=2, duration_s=3.1,
        footer="v12 · 2 tools · 3.1 s",
    )


# --- outbound ------------------------------------------------------------------------------


def test_markdown_becomes_escaped_mrkdwn() -> None:
    text = ("# Title\n**bold** and __also__ ~~gone~~ [docs](https://d.example/a?b=1&c=2)\n"
            "- item <!channel> & <@U1>\n```python\nif a < b and c > d: pass\n```\n`x**y**`")
    out = outbound.mrkdwn(text)
    assert out.splitlines()[0] == "*Title*"
    assert "*bold* and *also* ~gone~ <https://d.example/a?b=1&amp;c=2|docs>" in out
    assert "• item &lt;!channel&gt; &amp; <@U1>" in out
    assert "```\nif a &lt; b and c &gt; d: pass\n```" in out  # language tag dropped
    assert out.endswith("`x**y**`")  # inline code untouched


def test_split_respects_limits_and_code_fences() -> None:
    code = "```\n" + "\n".join(f"line {i} " + "x" * 60 for i in range(200)) + "\n```"
    text = "intro paragraph\n\n" + code + "\n\n" + "word " * 2000
    pieces = outbound.split_text(text, 3000)
    assert len(pieces) > 4
    assert all(len(p) <= 3000 for p in pieces)
    assert all(p.count("```") % 2 == 0 for p in pieces)
    joined = "".join(pieces).replace("```", "").replace("\n", "").replace(" ", "")
    assert joined == text.replace("```", "").replace("\n", "").replace(" ", "")
    assert outbound.split_text("one line") == ["one line"]
    assert all(len(p) <= 100 for p in outbound.split_text("y" * 1000, 100))


def test_answer_blocks_have_controls_and_footer() -> None:
    [message] = outbound.answer_messages(answer("Paris is the **capital**."))
    kinds = [b["type"] for b in message.blocks]
    assert kinds == ["section", "actions", "context"]
    assert message.blocks[0]["text"]["text"] == "Paris is the *capital*."
    actions = message.blocks[1]["elements"]
    assert [a["action_id"] for a in actions] == [
        inbound.ACTION_UP, inbound.ACTION_DOWN, inbound.ACTION_SELECT, inbound.ACTION_COMMENT]
    assert [o["value"] for o in actions[2]["options"]] == ["7:5", "7:4", "7:3", "7:2", "7:1"]
    assert message.blocks[2]["elements"][0]["text"] == "v12 · 2 tools · 3.1 s"
    assert message.text.startswith("Paris")


def test_long_answers_split_over_messages_within_block_kit_limits() -> None:
    long = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum " * 200 for i in range(40))
    messages = outbound.answer_messages(answer(long))
    assert len(messages) > 1
    for message in messages:
        assert len(message.blocks) <= outbound.MAX_BLOCKS
        for block in message.blocks:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= outbound.SECTION_LIMIT
        assert len(message.text) <= outbound.FALLBACK_TEXT_LIMIT
    assert all(b["type"] != "actions" for m in messages[:-1] for b in m.blocks)
    assert messages[-1].blocks[-2]["type"] == "actions"
    smaller = outbound.answer_messages(answer(long), message_budget=1000, section_limit=500)
    assert len(smaller) > len(messages)


def test_evolution_announcement_blocks() -> None:
    diff = ("--- v1\n+++ v2\n@@ -1 +1,2 @@\n You are evobot.\n"
            "+1. Answer in French <please> & thanks.")
    document = evolution_document(
        decision=Decision.PROMOTED, from_version=1, to_version=2, diff=diff,
        rationale="users asked: answer in French", replay_summary="replayed 1: 1 better",
        evolution_id=4,
    )
    blocks = outbound.document_blocks(document)
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
    blocks = outbound.document_blocks(document)
    assert len(blocks[0]["text"]["text"]) <= outbound.SECTION_LIMIT
    assert blocks[0]["text"]["text"].endswith("\n```")
    assert "more lines of the diff not shown" in blocks[1]["elements"][0]["text"]


def test_rollback_document_mentions_the_actor() -> None:
    document = rollback_document(from_version=2, to_version=1, automatic=False,
                                 reason="Requested by <U0ADMIN>.", actor="U0ADMIN")
    blocks = outbound.document_blocks(document)
    assert blocks[1]["text"]["text"] == "Requested by <@U0ADMIN>."
    fields = outbound.document_blocks(Document(summary="s", blocks=[
        Block(kind="fields", fields=[(f"k{i}", "v") for i in range(12)])]))
    assert [len(b["fields"]) for b in fields] == [10, 2]
    json.dumps(fields)


def test_vote_ack_invites_a_comment_when_the_engine_asks() -> None:
    negative = FeedbackResult(recorded=True, execution_id=1, rating=2,
                              message="Thanks — rated 2/5.", evolution_queued=True,
                              invite_comment=True)
    text = outbound.vote_ack(negative)
    assert text.startswith("Thanks — rated 2/5.") and "Reply in this thread" in text
    assert "learn from it" in text
    # the engine's policy decides, not the rating the adapter sees
    positive = negative.model_copy(update={"invite_comment": False, "evolution_queued": False})
    assert outbound.vote_ack(positive) == "Thanks — rated 2/5."
    # a comment is never answered with an invitation to comment
    assert "Reply in this thread" not in outbound.comment_ack(negative)


def test_answer_preface_and_command_payloads() -> None:
    [message] = outbound.answer_messages(answer("Paris."), preface=outbound.DM_PREFACE)
    assert [b["type"] for b in message.blocks] == ["context", "section", "actions", "context"]
    assert "couldn't post" in message.blocks[0]["elements"][0]["text"]
    assert outbound.command_pending("pause") == {"text": "Working on `pause`…",
                                                 "response_type": "ephemeral"}
    failed = outbound.command_failed("diff", ValueError("bad <input>"))
    assert failed["text"] == "Sorry — `diff` failed: bad &lt;input&gt;"


def test_comment_modal_offers_every_category_and_a_suggestion() -> None:
    view = outbound.comment_modal(inbound.CommentTarget(7, "C1", "1.0"))
    inputs = {b["block_id"]: b for b in view["blocks"]}
    assert list(inputs) == ["category", "comment", "suggestion", "rating"]
    category = inputs["category"]
    assert category["optional"] and category["element"]["type"] == "static_select"
    options = category["element"]["options"]
    assert [(o["text"]["text"], o["value"]) for o in options] == [
        (c.label, c.value) for c in FeedbackCategory]
    assert ("Too long", "too_long") in [(o["text"]["text"], o["value"]) for o in options]
    suggestion = inputs["suggestion"]
    assert suggestion["optional"] and suggestion["element"]["type"] == "plain_text_input"
    assert suggestion["label"]["text"] == "What would a good answer have said?"
    assert not inputs["comment"]["optional"]
    assert view_problems(view) == []  # within Block Kit's limits, as views.open checks them
