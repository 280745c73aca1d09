"""The Bot API answering 5xx or 429 for a while: every answer is still delivered — late,
once, and in order within its chat."""

from __future__ import annotations

import pytest

from doubles import telegram as u
from doubles.telegram import BotApiDouble
from tests.adapters.telegram.conftest import Harness

ALICE = u.user(501, "Alice")
CHAT = u.private(501)


@pytest.mark.parametrize("trouble", ["5xx", "429"])
async def test_answers_survive_a_bot_api_outage_once_and_in_order(
    harness: Harness, double: BotApiDouble, trouble: str
) -> None:
    assert (await harness.post(u.text_update(CHAT, ALICE, "question one"))).status_code == 200
    assert (await harness.post(u.text_update(CHAT, ALICE, "question two"))).status_code == 200
    if trouble == "5xx":
        double.fail("sendMessage", status=502, description="Bad Gateway", times=3)
    else:
        double.rate_limit("sendMessage", retry_after=1, times=2)
    await harness.drain()
    await harness.drain()  # anything retried
    answers = [m["text"] for m in double.sent(CHAT.id) if "fb:" in str(m.get("reply_markup"))]
    assert len(answers) == 2, answers
    assert "question one" in answers[0] and "question two" in answers[1]
    refused = [c for c in double.attempts("sendMessage") if c.status != 200]
    assert len(refused) == (3 if trouble == "5xx" else 2)
