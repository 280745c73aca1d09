"""Slack answering 5xx or 429 for a while: every answer is still delivered — late, once, and
in order within its thread."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from doubles.slack import Deliveries, SlackDouble, Workspace
from tests.adapters.slack.conftest import SlackWeb, slack_config, start_web, stop_web
from tests.conftest import Stack

CHANNEL = "C0GENERAL"


def thread_texts(sw: SlackWeb, thread_ts: str) -> list[str]:
    return [str(c.params.get("text")) for c in sw.double.posts(CHANNEL)
            if c.params.get("thread_ts") == thread_ts]


@pytest.mark.parametrize("trouble", ["5xx", "429"])
async def test_answers_survive_a_slack_outage_once_and_in_order(
    local_slack: SlackWeb, workspace: Workspace, deliveries: Deliveries, trouble: str
) -> None:
    first, ts = deliveries.app_mention(workspace, "U0ALICE", CHANNEL, "question one")
    assert (await local_slack.post(first)).status_code == 200
    follow_up, _ = deliveries.message(workspace, "U0ALICE", CHANNEL, "question two",
                                      thread_ts=ts)
    if trouble == "5xx":
        local_slack.double.outage("chat.postMessage", status=503, times=3)
    else:
        local_slack.double.rate_limit("chat.postMessage", retry_after=1, times=3)
    await local_slack.drain()
    assert (await local_slack.post(follow_up)).status_code == 200
    await local_slack.drain()
    await local_slack.drain()  # anything retried
    answers = thread_texts(local_slack, ts)
    assert len(answers) == 2, answers
    assert "question one" in answers[0] and "question two" in answers[1]
    failed = [c for c in local_slack.double.calls_to("chat.postMessage") if not c.ok]
    assert len(failed) == 3  # the outage was real, and it is over


async def test_a_full_disk_is_503_and_the_database_stays_consistent(
    local_slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    """SQLite out of space (PRAGMA max_page_count just above its size): the delivery that
    can't be recorded is 503 (Slack retries it), nothing is half-written, the file passes
    its integrity check, and once there is room the redelivery is recorded."""
    from sqlalchemy import event, text

    runtime = local_slack.web.ctx.runtime
    async with runtime.sessions() as session:
        pages = int(await session.scalar(text("PRAGMA page_count")) or 0)
    room = {"pages": pages + 8}

    def cap(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA max_page_count = {room['pages']}")
        cursor.close()

    event.listen(runtime.database.sync_engine, "connect", cap)
    await runtime.database.dispose()  # every connection from now on has the cap
    statuses, refused = [], None
    for n in range(40):
        delivery, _ = deliveries.app_mention(workspace, "U0ALICE", CHANNEL,
                                             f"question {n} " + "x" * 7_000)
        status = (await local_slack.post(delivery)).status_code
        statuses.append(status)
        if status != 200:
            refused = delivery
            break
    assert statuses[-1] == 503 and set(statuses[:-1]) == {200}, statuses
    recorded = len(await local_slack.executions())
    assert recorded == len(statuses) - 1

    room["pages"] = 1_000_000
    await runtime.database.dispose()
    async with runtime.sessions() as session:
        assert await session.scalar(text("PRAGMA integrity_check")) == "ok"
    assert refused is not None
    assert (await local_slack.post(refused, retry=1)).status_code == 200
    assert len(await local_slack.executions()) == recorded + 1


@pytest.mark.parametrize("trouble", ["5xx", "429"])
async def test_an_outage_longer_than_the_clients_retries_delays_answers_but_loses_none(
    embedded: Stack, double: SlackDouble, workspace: Workspace, deliveries: Deliveries,
    trouble: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """Slack refuses for longer than slack_sdk retries (5 tries for a 503, 4 for a 429) —
    through the answer's post and the redelivery job's first try: the stored answers are
    posted once Slack is back, once each, and the second after the first (it queues behind
    it instead of overtaking it)."""
    from bot.observability import REGISTRY

    config = slack_config(embedded, double, token=workspace.token,
                          EVOBOT_REDELIVER_AFTER_S="0,0,0,0,0,0")
    sw = await start_web(embedded, double, config)
    try:
        first, ts = deliveries.app_mention(workspace, "U0ALICE", CHANNEL, "question one")
        assert (await sw.post(first)).status_code == 200
        await sw.drain()  # answered: the thread is the bot's
        for text in ("question two", "question three"):
            follow_up, _ = deliveries.message(workspace, "U0ALICE", CHANNEL, text,
                                              thread_ts=ts)
            assert (await sw.post(follow_up)).status_code == 200
        refusals = 10 if trouble == "5xx" else 8
        if trouble == "5xx":
            double.outage("chat.postMessage", status=503, times=refusals)
        else:
            double.rate_limit("chat.postMessage", retry_after=1, times=refusals)
        before = REGISTRY.get_sample_value(
            "evobot_job_seconds_count", {"job": "redeliver_job", "outcome": "error"}) or 0
        with caplog.at_level(logging.INFO, logger="engine.redeliver"):
            await sw.drain()
        answers = thread_texts(sw, ts)
        assert len(answers) == 3, answers
        assert ["one" in answers[0], "two" in answers[1], "three" in answers[2]] == [True] * 3
        failed = [c for c in double.calls_to("chat.postMessage") if not c.ok]
        assert len(failed) == refusals  # longer than the client's own retries, and over
        assert "answer of execution 2 not delivered; queued for redelivery" in caplog.text
        assert "redelivered the answer of execution 3" in caplog.text
        # the redelivery job's first try met the outage too, and RQ retried it
        assert (REGISTRY.get_sample_value(
            "evobot_job_seconds_count", {"job": "redeliver_job", "outcome": "error"}) or 0
        ) > before
        rows = await sw.executions()
        assert [r.answer_pending for r in rows] == [False] * 3
        assert all(r.answer_message_id for r in rows)  # reactions find the answers
    finally:
        await stop_web(sw)
