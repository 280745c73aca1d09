"""The Slack notifier against the HTTP double: working state, answers, announcements,
rate limits and Slack's error codes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from adapters.slack.notifier import SlackNotifier
from adapters.slack.state import SlackState
from adapters.slack.tokens import StaticToken
from doubles.slack import SlackDouble, Workspace
from engine.present import evolution_document, rollback_document
from engine.types import (
    AnswerReady,
    Decision,
    EvolutionAnnounced,
    ExecutionFailed,
    RolledBack,
    Working,
)
from tests.conftest import Stack

CHANNEL = "C0GENERAL"


@pytest.fixture
async def notifier(embedded: Stack, double: SlackDouble, workspace: Workspace
                   ) -> AsyncIterator[SlackNotifier]:
    state = SlackState(embedded.redis.asyncio_client())
    yield SlackNotifier(tokens=StaticToken(workspace.token), api_url=double.api_url,
                        state=state, pace_s=0)
    await state.redis.aclose()


def answer(text: str = "Paris.", *, channel: str = CHANNEL, execution_id: int = 1
           ) -> AnswerReady:
    return AnswerReady(
        tenant_id="slack:T0ACME", execution_id=execution_id, channel_id=channel,
        thread_id="100.000001", reply_to="100.000001", user_id="U0ALICE", text=text,
        version=3, tool_count=1, duration_s=0.4, footer="v3 · 1 tool · 0.4 s",
    )


async def test_working_then_answer(notifier: SlackNotifier, double: SlackDouble) -> None:
    await notifier.deliver(Working(tenant_id="slack:T0ACME", execution_id=1, channel_id=CHANNEL,
                                   thread_id="100.000001", reply_to="100.000001"))
    assert ("T0ACME", CHANNEL, "100.000001", "eyes") in double.reactions
    delivery = await notifier.deliver(answer())
    assert double.reactions == set()
    [post] = double.posts(CHANNEL)
    assert delivery.ref is not None
    assert (delivery.ref.channel_id, delivery.ref.message_id, delivery.ref.thread_id) == (
        CHANNEL, post.response["ts"], "100.000001")
    assert notifier.state is not None
    assert await notifier.state.is_bot_thread("slack:T0ACME", CHANNEL, "100.000001")
    assert await notifier.state.answer_thread("slack:T0ACME", CHANNEL,
                                              post.response["ts"]) == "100.000001"


async def test_rate_limited_posts_honour_retry_after(notifier: SlackNotifier,
                                                     double: SlackDouble) -> None:
    double.rate_limit("chat.postMessage", retry_after=1, times=2)
    started = time.monotonic()
    delivery = await notifier.deliver(answer())
    elapsed = time.monotonic() - started
    calls = double.calls_to("chat.postMessage")
    assert [c.status for c in calls] == [429, 429, 200]
    assert elapsed >= 2.0  # Retry-After: 1, twice
    assert calls[1].at - calls[0].at >= 1.0
    assert delivery.ref is not None and delivery.ref.message_id == calls[-1].response["ts"]


async def test_msg_too_long_is_retried_in_smaller_pieces(notifier: SlackNotifier,
                                                         double: SlackDouble) -> None:
    double.fail("chat.postMessage", "msg_too_long")
    text = "\n\n".join("sentence " * 300 for _ in range(6))
    delivery = await notifier.deliver(answer(text))
    failed, *posted = double.calls_to("chat.postMessage")
    assert failed.response["error"] == "msg_too_long"
    assert len(posted) > 1 and all(c.ok for c in posted)
    assert all(len(b["text"]["text"]) <= 1500
               for c in posted for b in c.params["blocks"] if b["type"] == "section")
    assert posted[-1].params["blocks"][-2]["type"] == "actions"
    assert delivery.ref is not None and delivery.ref.message_id == posted[-1].response["ts"]


async def test_channel_not_found_answers_by_dm(notifier: SlackNotifier,
                                               double: SlackDouble) -> None:
    double.missing.add("C0GONE")
    delivery = await notifier.deliver(answer(channel="C0GONE"))
    assert delivery.ref is not None and delivery.ref.channel_id == "D" + "U0ALICE"
    [dm] = double.posts("DU0ALICE")
    assert "couldn't post in the channel" in dm.params["blocks"][0]["elements"][0]["text"]
    # nowhere to post at all: the delivery is empty but nothing raises (the row stays)
    double.fail("conversations.open", "cannot_dm_bot")
    assert (await notifier.deliver(answer(channel="C0GONE"))).ref is None


async def test_failures_and_unknown_tokens(notifier: SlackNotifier, double: SlackDouble,
                                           workspace: Workspace) -> None:
    failed = ExecutionFailed(tenant_id="slack:T0ACME", execution_id=2, channel_id=CHANNEL,
                             thread_id="1.1", reply_to="1.1", user_id="U0ALICE",
                             reason="The model took too long. Try again.")
    delivery = await notifier.deliver(failed)
    assert delivery.ref is not None
    assert double.posts(CHANNEL)[-1].params["blocks"][0]["text"]["text"].startswith(":warning:")
    revoked = SlackNotifier(tokens=StaticToken("xoxb-revoked"), api_url=double.api_url)
    assert (await revoked.deliver(answer())).ref is None
    assert double.calls[-1].response["error"] == "invalid_auth"


async def test_announcements_go_to_the_channel(notifier: SlackNotifier,
                                               double: SlackDouble) -> None:
    diff = "--- v1\n+++ v2\n" + "\n".join(f"+rule {i}: " + "w" * 90 for i in range(60))
    document = evolution_document(decision=Decision.PROMOTED, from_version=1, to_version=2,
                                  diff=diff, rationale="asked for French",
                                  replay_summary="replayed 2: 2 better", evolution_id=9)
    event = EvolutionAnnounced(
        tenant_id="slack:T0ACME", evolution_id=9, channel_id=CHANNEL, thread_id="1.1",
        decision=Decision.PROMOTED, from_version=1, to_version=2, diff=diff,
        rationale="asked for French", replay_summary="replayed 2: 2 better", document=document,
    )
    delivery = await notifier.deliver(event)
    [post] = double.posts(CHANNEL)
    assert "thread_ts" not in post.params and delivery.ref is not None
    kinds = [b["type"] for b in post.params["blocks"]]
    assert kinds == ["header", "section", "section", "context", "context", "actions"]
    assert "more lines of the diff not shown" in post.params["blocks"][3]["elements"][0]["text"]
    rolled = RolledBack(
        tenant_id="slack:T0ACME", channel_id=CHANNEL, thread_id=None, from_version=2,
        to_version=1, automatic=True, reason="v2 rated worse", actor="watch",
        document=rollback_document(from_version=2, to_version=1, automatic=True,
                                   reason="v2 rated worse", actor="watch"),
    )
    await notifier.deliver(rolled)
    assert double.posts(CHANNEL)[-1].params["text"].startswith("Automatic rollback: v2 → v1")
    no_channel = rolled.model_copy(update={"channel_id": None})
    assert (await notifier.deliver(no_channel)).ref is None


async def test_posts_to_one_channel_are_paced(embedded: Stack, double: SlackDouble,
                                              workspace: Workspace) -> None:
    state = SlackState(embedded.redis.asyncio_client())
    paced = SlackNotifier(tokens=StaticToken(workspace.token), api_url=double.api_url,
                          state=state, pace_s=0.3)
    for i in range(3):
        await paced.deliver(answer(execution_id=i + 1))
    await paced.deliver(answer(channel="C0OTHER", execution_id=9))
    times = [c.at for c in double.posts(CHANNEL)]
    assert times[1] - times[0] >= 0.25 and times[2] - times[1] >= 0.25
    other = double.posts("C0OTHER")[0].at
    assert other - times[2] < 0.25  # another channel is not held back
    await state.redis.aclose()


class _TokensByTeam:
    """Each workspace's own bot token (what InstallationTokens reads from Bolt's store)."""

    def __init__(self, *workspaces: Workspace) -> None:
        self.tokens = {f"slack:{w.team_id}": w.token for w in workspaces}

    async def token_for(self, tenant: str) -> str | None:
        return self.tokens.get(tenant)

    def forget(self, tenant: str) -> None:
        return None


async def test_each_workspace_is_answered_with_its_own_token_also_after_idling(
        embedded: Stack, double: SlackDouble, workspace: Workspace) -> None:
    other = double.add_workspace("T0OTHER")
    double.add_channel("T0OTHER", "C0OTHER")
    many = SlackNotifier(tokens=_TokensByTeam(workspace, other), api_url=double.api_url,
                         pace_s=0)
    other_answer = answer("Rome.", channel="C0OTHER", execution_id=2).model_copy(
        update={"tenant_id": "slack:T0OTHER"})
    assert (await many.deliver(answer())).ref is not None
    assert (await many.deliver(other_answer)).ref is not None
    await asyncio.sleep(0.3)  # both idle for a while
    assert (await many.deliver(answer("Berlin.", execution_id=3))).ref is not None
    again = other_answer.model_copy(update={"execution_id": 4, "text": "Madrid."})
    assert (await many.deliver(again)).ref is not None
    posted = [(call.token, call.params.get("text"))
              for call in double.calls_to("chat.postMessage")]
    assert [text for token, text in posted if token == other.token] == ["Rome.", "Madrid."]
