"""The console adapter: line parsing, and a chat session on the embedded stack."""

from __future__ import annotations

import asyncio

from adapters.console.app import HINT
from adapters.console.convert import parse_line
from engine.commands import listed
from engine.types import FeedbackCategory, InboundCommand, InboundFeedback, InboundMessage
from tests.adapters.console.chat import console_chat, lines
from tests.conftest import Stack

IDS = {"tenant_id": "local:t", "user_id": "me", "channel_id": "console", "message_id": "1"}


def test_lines_become_objectives_ratings_comments_and_commands() -> None:
    objective = parse_line("What's the weather in Oslo?", **IDS)
    assert isinstance(objective, InboundMessage) and objective.text.startswith("What's")

    down = parse_line("-1 answer in French please", **IDS)
    assert isinstance(down, InboundFeedback)
    assert (down.rating, down.comment) == (2, "answer in French please")
    up = parse_line("+1", **IDS)
    assert isinstance(up, InboundFeedback) and (up.rating, up.comment) == (4, None)
    five = parse_line("5", **IDS)
    assert isinstance(five, InboundFeedback) and five.rating == 5
    comment = parse_line("comment shorter please", **IDS)
    assert isinstance(comment, InboundFeedback)
    assert (comment.rating, comment.comment) == (None, "shorter please")

    rollback = parse_line("/rollback 3", **IDS)
    assert isinstance(rollback, InboundCommand)
    assert (rollback.name, rollback.args, rollback.is_admin) == ("rollback", ["3"], True)
    # numbers inside sentences are objectives, not ratings
    assert isinstance(parse_line("5 ideas for a party", **IDS), InboundMessage)
    assert parse_line("   ", **IDS) is None


async def test_a_chat_session_evolves_and_rolls_back(embedded: Stack) -> None:
    async with console_chat(embedded.config, embedded.redis, worker=True, width=100) as chat:
        await chat.session.run(lines("What is the capital of France?",
                                     "-1 answer in French please"))
        for _ in range(100):  # the evolution runs in the worker thread and prints when done
            if "Agent evolved" in chat.output.getvalue():
                break
            await asyncio.sleep(0.1)
        await chat.session.run(lines("And of Spain?", "/status", "/rollback 1", "/diff 1 2",
                                     "/nope"))

    text = chat.output.getvalue()
    assert "Answer to: What is the capital of France?" in text
    assert "Thanks — rated 2/5 and comment noted. Evolution queued." in text
    assert "Agent evolved: v1 → v2" in text
    assert "+1. Answer in French please." in text  # the diff, inline
    assert "[following: Answer in French please.]" in text  # v2 answered
    assert "v2 · 0 tools" in text or "v2 · 1 tool" in text
    assert "Rolled back: v2 → v1" in text
    assert "v1: 2.0 avg · 1 rating" in text
    assert "Unknown command `nope`" in text


def test_a_rating_may_name_a_category_before_its_comment() -> None:
    too_long = parse_line("-1 too-long: three bullet points at most", **IDS)
    assert isinstance(too_long, InboundFeedback)
    assert too_long.category == FeedbackCategory.TOO_LONG
    assert too_long.comment == "three bullet points at most"
    plain = parse_line("-1 note: answer in French", **IDS)  # not a category: all comment
    assert isinstance(plain, InboundFeedback)
    assert (plain.category, plain.comment) == (None, "note: answer in French")
    bare = parse_line("-1 language:", **IDS)
    assert isinstance(bare, InboundFeedback)
    assert (bare.category, bare.comment) == (FeedbackCategory.LANGUAGE, None)


def test_the_hint_lists_every_command_and_category() -> None:
    for command in listed():
        assert f"/{command.name}" in HINT
    for category in FeedbackCategory:
        assert category.value.replace("_", "-") in HINT
