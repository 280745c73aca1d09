"""Answers streamed into Slack: the real notifier against the HTTP double, delta by delta.

What a user sees is the double's timeline: partial text before the answer is complete, one
answer message in the end that looks like a non-streamed one (controls and footer), the
fallback to updated messages where a workspace refuses streaming (remembered), rate limits
that slow the stream without losing text, long answers, and the message an interrupted
attempt left.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.slack import outbound
from adapters.slack.notifier import SlackNotifier
from adapters.slack.state import SlackState
from adapters.slack.tokens import StaticToken
from doubles.slack import Deliveries, SlackDouble, Workspace
from engine.llm.scripted import ScriptedReply, register_script
from engine.types import AnswerDelta, AnswerReady, ExecutionFailed, MessageRef, Working
from tests.adapters.slack.conftest import slack_config, start_web, stop_web
from tests.conftest import Stack

CHANNEL = "C0GENERAL"
THREAD = "100.000001"
TENANT = "slack:T0ACME"
ANSWER = ("The capital of France is **Paris** — population & area below.\n\n"
          "```python\nif a < b and c > d:\n    print('<!channel>')\n```\n"
          "See [the atlas](https://example.org/atlas?a=1&b=2).")


@pytest.fixture
async def state(embedded: Stack) -> AsyncIterator[SlackState]:
    state = SlackState(embedded.redis.asyncio_client())
    yield state
    await state.redis.aclose()


def make_notifier(double: SlackDouble, workspace: Workspace, state: SlackState | None,
                  **options: float) -> SlackNotifier:
    return SlackNotifier(tokens=StaticToken(workspace.token), api_url=double.api_url,
                         state=state, pace_s=0, **{"update_every_s": 0.0, **options})


@pytest.fixture
async def notifier(double: SlackDouble, workspace: Workspace, state: SlackState
                   ) -> SlackNotifier:
    return make_notifier(double, workspace, state)


def delta(text: str, *, execution_id: int = 1, thread: str | None = THREAD,
          replaces: MessageRef | None = None) -> AnswerDelta:
    return AnswerDelta(tenant_id=TENANT, execution_id=execution_id, channel_id=CHANNEL,
                       thread_id=thread, reply_to=thread or "99.000001", user_id="U0ALICE",
                       text=text, replaces=replaces)


def ready(text: str = ANSWER, *, execution_id: int = 1, thread: str | None = THREAD,
          replaces: MessageRef | None = None) -> AnswerReady:
    return AnswerReady(tenant_id=TENANT, execution_id=execution_id, channel_id=CHANNEL,
                       thread_id=thread, reply_to=thread or "99.000001", user_id="U0ALICE",
                       text=text, version=3, tool_count=1, duration_s=0.4,
                       footer="v3 · 1 tool · 0.4 s", replaces=replaces)


def failed(reason: str = "The model took too long to answer.", *, execution_id: int = 1,
           replaces: MessageRef | None = None) -> ExecutionFailed:
    return ExecutionFailed(tenant_id=TENANT, execution_id=execution_id, channel_id=CHANNEL,
                           thread_id=THREAD, reply_to=THREAD, user_id="U0ALICE",
                           reason=reason, replaces=replaces)


def prefixes(text: str, step: int) -> list[str]:
    return [text[:n] for n in range(step, len(text), step)]


async def stream(notifier: SlackNotifier, text: str, *, step: int = 40, execution_id: int = 1,
                 thread: str | None = THREAD) -> MessageRef | None:
    """Deliver the answer's growing prefixes; the partial message's ref (as the engine keeps
    it: the first delta's)."""
    ref = None
    for prefix in prefixes(text, step):
        delivery = await notifier.deliver(delta(prefix, execution_id=execution_id,
                                                thread=thread))
        ref = ref or delivery.ref
    return ref


async def test_streams_in_the_thread_and_ends_as_an_answer(
        notifier: SlackNotifier, double: SlackDouble, state: SlackState) -> None:
    await notifier.deliver(Working(tenant_id=TENANT, execution_id=1, channel_id=CHANNEL,
                                   thread_id=THREAD, reply_to=THREAD))
    assert double.statuses[(CHANNEL, THREAD)] == "is thinking…"
    ref = await stream(notifier, ANSWER)
    assert ref is not None
    before_end = [s.text for s in double.seen(CHANNEL, ref.message_id) if s.streaming]
    assert "The capital of France" in before_end[0] and len(set(before_end)) > 3

    delivery = await notifier.deliver(ready(replaces=ref))
    [message] = double.thread(CHANNEL, THREAD)
    assert delivery.ref == MessageRef(channel_id=CHANNEL, message_id=message.ts,
                                      thread_id=THREAD) == ref
    assert message.text == ANSWER and not message.streaming  # no text lost or doubled
    # the controls and footer of a non-streamed answer, exactly
    assert message.blocks == outbound.answer_messages(ready())[-1].blocks[-2:]
    assert ("T0ACME", CHANNEL, THREAD, "eyes") not in double.reactions
    assert await state.answer_thread(TENANT, CHANNEL, message.ts) == THREAD
    start = double.calls_to("chat.startStream")[0].params
    assert (start["recipient_team_id"], start["recipient_user_id"]) == ("T0ACME", "U0ALICE")
    # nothing the model wrote can ping the channel
    sent = "".join(str(c.params) for c in double.calls if "Stream" in c.method)
    assert "<!channel>" not in sent and "&lt;!channel&gt;" not in sent


async def test_refused_streaming_updates_a_message_and_is_remembered(
        double: SlackDouble, workspace: Workspace, state: SlackState) -> None:
    double.refuse_streaming("T0ACME")
    notifier = make_notifier(double, workspace, state)
    ref = await stream(notifier, ANSWER)
    assert ref is not None
    partial = double.seen(CHANNEL, ref.message_id)
    assert len(partial) > 3 and partial[0].text.startswith("The capital")

    await notifier.deliver(ready(replaces=ref))
    [message] = double.thread(CHANNEL, THREAD)
    final = outbound.answer_messages(ready())[-1]
    assert (message.ts, message.blocks) == (ref.message_id, final.blocks)
    assert double.calls_to("chat.update")[-1].params["text"] == final.text

    # the next answer in that workspace doesn't try streaming, in any process
    other = make_notifier(double, workspace, SlackState(state.redis))
    await stream(other, "Second answer, " * 10, execution_id=2, thread="200.000001")
    await other.deliver(ready("Second answer, " * 10, execution_id=2, thread="200.000001"))
    assert len(double.calls_to("chat.startStream")) == 1
    assert len(double.thread(CHANNEL, "200.000001")) == 1


async def test_without_redis_the_refusal_is_remembered_in_the_process(
        double: SlackDouble, workspace: Workspace) -> None:
    double.refuse_streaming("T0ACME", "not_allowed")
    notifier = make_notifier(double, workspace, None)
    for execution_id in (1, 2):
        thread = f"{execution_id}00.000001"
        await stream(notifier, ANSWER, execution_id=execution_id, thread=thread)
        await notifier.deliver(ready(execution_id=execution_id, thread=thread))
        assert len(double.thread(CHANNEL, thread)) == 1
    assert len(double.calls_to("chat.startStream")) == 1


async def test_outside_a_thread_the_message_is_updated(notifier: SlackNotifier,
                                                       double: SlackDouble) -> None:
    ref = await stream(notifier, ANSWER, thread=None)
    await notifier.deliver(ready(thread=None, replaces=ref))
    assert not double.calls_to("chat.startStream")
    [message] = double.thread(CHANNEL)
    assert message.blocks == outbound.answer_messages(ready())[-1].blocks


async def test_updates_are_paced(double: SlackDouble, workspace: Workspace,
                                 state: SlackState) -> None:
    double.refuse_streaming("T0ACME")
    notifier = make_notifier(double, workspace, state, update_every_s=3600)
    await stream(notifier, ANSWER, step=10)
    assert len(double.posts(CHANNEL)) == 1 and not double.calls_to("chat.update")
    await notifier.deliver(ready())  # the answer itself is never held back
    assert double.thread(CHANNEL)[0].blocks == outbound.answer_messages(ready())[-1].blocks


@pytest.mark.parametrize("method", ["chat.appendStream", "chat.update"])
async def test_rate_limits_slow_the_stream_without_losing_text(
        method: str, double: SlackDouble, workspace: Workspace, state: SlackState) -> None:
    if method == "chat.update":
        double.refuse_streaming("T0ACME")
    notifier = make_notifier(double, workspace, state, rate_limit_retries=0)
    await notifier.deliver(delta(ANSWER[:30]))
    double.rate_limit(method, retry_after=30, times=1)
    for prefix in prefixes(ANSWER, 30)[1:]:
        await notifier.deliver(delta(prefix))
    assert [c.status for c in double.calls_to(method)] == [429]  # then held back
    await notifier.deliver(ready())
    [message] = double.thread(CHANNEL, THREAD)
    assert message.text == (ANSWER if method == "chat.appendStream"
                            else outbound.mrkdwn(ANSWER))


async def test_retry_after_is_honoured_within_a_delta(notifier: SlackNotifier,
                                                      double: SlackDouble) -> None:
    double.rate_limit("chat.appendStream", retry_after=1, times=2)
    await stream(notifier, ANSWER, step=60)
    await notifier.deliver(ready())
    statuses = [c.status for c in double.calls_to("chat.appendStream")]
    assert statuses[:3] == [429, 429, 200]
    assert double.thread(CHANNEL, THREAD)[0].text == ANSWER


async def test_a_long_answer_continues_in_new_messages(notifier: SlackNotifier,
                                                       double: SlackDouble) -> None:
    paragraph = "word " * 199 + "end.\n\n"
    text = paragraph * 25 + "```\n" + "x = 1\n" * 1500 + "```\nDone."  # ~34,000 characters
    await stream(notifier, text, step=1500)
    await notifier.deliver(ready(text))
    messages = double.thread(CHANNEL, THREAD)
    assert len(messages) >= 3
    assert all(len(m.text) <= outbound.MESSAGE_TEXT_BUDGET + 8 for m in messages)
    assert all(m.text.count("```") % 2 == 0 for m in messages)  # code closed and reopened
    assert any(m.text.startswith("```\nx = 1") for m in messages)
    # cut at paragraph breaks, where code isn't closed and reopened
    assert all(m.text.endswith(("\n\n", "\n```", "Done.")) for m in messages)
    assert "".join(m.text for m in messages).replace("\n``````\n", "") == text
    assert [bool(m.blocks) for m in messages] == [False] * (len(messages) - 1) + [True]


async def test_a_restarted_answer_ends_as_one_message(notifier: SlackNotifier,
                                                      double: SlackDouble) -> None:
    """A step that turned into tool calls restarts the text: streamed text can't be taken
    back, so the message goes on by chat.update."""
    ref = (await notifier.deliver(delta("Let me look that up in the atlas"))).ref
    await notifier.deliver(delta("The capital"))
    await notifier.deliver(ready(replaces=ref))
    [message] = double.thread(CHANNEL, THREAD)
    assert ref is not None and message.ts == ref.message_id
    assert message.blocks == outbound.answer_messages(ready())[-1].blocks


async def test_the_message_an_interrupted_attempt_left_is_finished(
        double: SlackDouble, workspace: Workspace, state: SlackState) -> None:
    died = make_notifier(double, workspace, state)  # its worker dies mid-stream
    ref = await stream(died, ANSWER[:100])
    assert ref is not None
    rerun = make_notifier(double, workspace, state)
    assert (await rerun.deliver(delta("The capital", replaces=ref))).ref == ref
    await rerun.deliver(delta("The capital of France", replaces=ref))
    assert double.thread(CHANNEL, THREAD)[0].text == outbound.mrkdwn("The capital of France")
    await rerun.deliver(ready(replaces=ref))
    [message] = double.thread(CHANNEL, THREAD)
    assert message.ts == ref.message_id
    assert message.blocks == outbound.answer_messages(ready())[-1].blocks
    # an answer delivered whole (no delta in this attempt) finishes it just the same
    third = make_notifier(double, workspace, state)
    await third.deliver(ready("Paris.", replaces=ref))
    assert [m.ts for m in double.thread(CHANNEL, THREAD)] == [ref.message_id]


async def test_a_failure_after_a_partial_answer_is_said_there(
        notifier: SlackNotifier, double: SlackDouble, workspace: Workspace,
        state: SlackState) -> None:
    ref = await stream(notifier, ANSWER[:120])
    await notifier.deliver(failed(replaces=ref))
    [message] = double.thread(CHANNEL, THREAD)
    assert message.text == ANSWER[:80] + "\n```" and not message.streaming  # code closed
    assert message.blocks[-1]["text"]["text"].startswith(":warning: The model took too long")

    # updated messages (streaming refused): the last one is marked
    double.refuse_streaming("T0ACME")
    refused = make_notifier(double, workspace, state)
    ref = await stream(refused, ANSWER[:120], execution_id=2, thread="200.000001")
    await refused.deliver(failed(execution_id=2, replaces=ref).model_copy(
        update={"thread_id": "200.000001"}))
    [message] = double.thread(CHANNEL, "200.000001")
    assert message.blocks[0]["text"]["text"].startswith("The capital")
    assert message.blocks[-1]["text"]["text"].startswith(":warning:")


# --- through the real flow: signed event → web → queue → worker → stream ---------------------

STORY = " ".join(f"w{i}" for i in range(40)) + " & <the end>"


@pytest.mark.parametrize("refused", [False, True], ids=["streaming", "refused"])
async def test_a_slow_model_streams_through_the_real_flow(
        refused: bool, embedded: Stack, double: SlackDouble, workspace: Workspace) -> None:
    register_script("slow_writer", lambda request: ScriptedReply(content=STORY,
                                                                 token_delay_s=0.04))
    if refused:
        double.refuse_streaming("T0ACME")
    config = slack_config(embedded, double, token=workspace.token,
                          LLM_MODEL="scripted/slow_writer", EVOBOT_STREAM_EVERY_S=0.1)
    sw = await start_web(embedded, double, config)
    try:
        mention, ts = Deliveries().app_mention(workspace, "U0ALICE", CHANNEL, "A story?")
        assert (await sw.post(mention)).status_code == 200
        await sw.drain()
        [message] = double.thread(CHANNEL, ts)
        [execution] = await sw.executions()
        assert execution.answer_message_id == message.ts
        partial = [s.text for s in double.seen(CHANNEL, message.ts)][:-1]
        assert partial and "w0" in partial[0] and "w39" not in partial[0]  # seen early
        if refused:
            assert not double.calls_to("chat.startStream", ok=True)
            assert message.blocks[0]["text"]["text"] == outbound.mrkdwn(STORY)
        else:
            assert message.text == STORY and len(message.blocks) == 2
        controls, footer = message.blocks[-2:]
        assert controls["block_id"] == f"evobot_feedback_{execution.id}"
        assert footer["elements"][0]["text"].startswith("v1 · ")
    finally:
        await stop_web(sw)
