"""The Bot API answering 5xx or 429 for a while: every answer is still delivered — late,
once, and in order within its chat."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from adapters.telegram.client import TelegramSettings
from doubles import telegram as u
from doubles.telegram import BotApiDouble
from tests.adapters.telegram.conftest import Harness, make_harness
from tests.conftest import Stack

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


@pytest.mark.parametrize("trouble", ["5xx", "429"])
async def test_an_outage_longer_than_the_clients_retries_delays_answers_but_loses_none(
    embedded: Stack, settings: TelegramSettings, double: BotApiDouble, trouble: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The Bot API refuses for longer than the client retries (5 tries over 7.5 s for a 5xx,
    4 for a 429) — through the answer's post and the redelivery job's first try: both stored
    answers arrive once it is back, once each and in order (the second queues behind the
    first instead of overtaking it)."""
    config = embedded.config.model_copy(update={"redeliver_after_s": "0,0,0,0,0,0"})
    h = await make_harness(dataclasses.replace(embedded, config=config), settings, double)
    try:
        assert (await h.post(u.text_update(CHAT, ALICE, "question one"))).status_code == 200
        assert (await h.post(u.text_update(CHAT, ALICE, "question two"))).status_code == 200
        refusals = 10 if trouble == "5xx" else 8
        if trouble == "5xx":
            double.fail("sendMessage", status=502, description="Bad Gateway", times=refusals)
        else:
            double.rate_limit("sendMessage", retry_after=1, times=refusals)
        with caplog.at_level(logging.INFO, logger="engine.redeliver"):
            await h.drain()
        answers = [m["text"] for m in double.sent(CHAT.id)
                   if "fb:" in str(m.get("reply_markup"))]
        assert len(answers) == 2, answers
        assert "question one" in answers[0] and "question two" in answers[1]
        refused = [c for c in double.attempts("sendMessage") if c.status != 200]
        assert len(refused) == refusals  # longer than the client's own retries, and over
        assert "answer of execution 1 not delivered; queued for redelivery" in caplog.text
        assert "redelivered the answer of execution 2" in caplog.text
        assert [r.answer_pending for r in await h.executions()] == [False, False]
    finally:
        await h.aclose()
