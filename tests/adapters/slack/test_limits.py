"""Size limits on the way in: an oversized Slack request is refused before its signature is
checked or its JSON parsed; an objective over the engine's limit is refused with the limit, in
the channel where the user wrote, and nothing is recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator

from adapters.slack.http import MAX_BODY
from doubles.slack import Deliveries, Workspace
from engine.service import MAX_OBJECTIVE_CHARS
from tests.adapters.slack.conftest import SlackWeb
from tests.adapters.slack.test_events import ask

CHANNEL = "C0GENERAL"


async def test_an_oversized_body_is_413_before_the_signature_is_checked(
    local_slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    delivery, _ = deliveries.app_mention(workspace, "U0ALICE", CHANNEL, "x" * 2_000_000)
    assert len(delivery.body) > MAX_BODY
    assert (await local_slack.post(delivery)).status_code == 413  # signed: 2 MB is not Slack
    # unsigned, it is still 413 (not 401): the size was checked first
    unsigned = await local_slack.client.post("/slack/events", content=delivery.body,
                                             headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 413
    assert await local_slack.executions() == []
    assert local_slack.double.calls == []


async def test_a_streamed_body_without_a_length_is_cut_off_at_the_limit(
    local_slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    delivery, _ = deliveries.app_mention(workspace, "U0ALICE", CHANNEL, "y" * 1_500_000)
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(delivery.body), 64 * 1024):
            sent.append(start)
            yield delivery.body[start:start + 64 * 1024]

    response = await local_slack.client.post(
        "/slack/events", content=chunks(), headers=delivery.headers("ignored"))
    assert response.status_code == 413
    assert "content-length" not in response.request.headers
    assert await local_slack.executions() == []


async def test_a_body_under_the_limit_still_gets_through(
    local_slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    _, answer = await ask(local_slack, workspace, deliveries, "z " * 3_000)
    assert answer.params["thread_ts"]
    assert len(await local_slack.executions()) == 1


async def test_a_too_long_objective_is_refused_in_its_thread_and_not_recorded(
    local_slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    words = "word " * 2_469 + "end"  # 12,348 characters
    delivery, _ = deliveries.app_mention(workspace, "U0ALICE", CHANNEL, words)
    assert (await local_slack.post(delivery)).status_code == 200
    await local_slack.settle()
    said = await local_slack.double.wait_for(
        lambda: local_slack.double.posts(CHANNEL), what="the refusal in the channel")
    assert (f"That message is too long (12,348 characters; the limit is "
            f"{MAX_OBJECTIVE_CHARS:,}).") in str(said[0].params)
    assert await local_slack.executions() == []
