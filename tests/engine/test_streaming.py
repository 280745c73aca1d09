"""Answers stream: a model writing slowly shows its text while it writes, through the real
litellm path, the real worker and both stacks. The finished answer is the one an unstreamed
run posts, costs the same, and lands in the message the stream started — also when the
stream breaks, or its worker dies and another one answers."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger
from rq import Queue
from sqlalchemy import select

from engine.execute import execute
from engine.jobs import EXECUTIONS, reconcile
from engine.llm import gateway
from engine.llm.gateway import LLMError, LLMGateway
from engine.llm.local import _MODELS
from engine.llm.scripted import ScriptedReply, ScriptedRequest, register_script
from engine.runner import run_agent
from engine.storage.models import AgentVersion, Execution
from engine.streaming import AnswerStream
from engine.tools.box import ToolBox
from engine.types import (
    AgentVersionView,
    AnswerDelta,
    AnswerReady,
    Delivery,
    ExecutionFailed,
    InboundMessage,
    MessageRef,
    StructuredPrompt,
)
from tests.conftest import Bot
from tests.engine.test_evolution_flow import TENANT

WORDS = " ".join(f"word{i}" for i in range(24))  # a reply of 24 tokens
PRICED = "scripted/priced-writer"  # a scripted model with a price, so cost is recorded
litellm.register_model({PRICED: {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
                                 "litellm_provider": "scripted", "mode": "chat"}})


def _writer(request: ScriptedRequest) -> ScriptedReply:
    return ScriptedReply(content=f"{WORDS} ({request.last_user})", token_delay_s=0.03)


register_script(PRICED.split("/", 1)[1], _writer)


# --- the gateway ---------------------------------------------------------------------------


async def test_a_streamed_call_shows_its_text_as_it_grows_and_counts_like_a_whole_one() -> None:
    seen: list[str] = []
    messages = [{"role": "user", "content": "write slowly"}]
    streamed = await LLMGateway().complete(PRICED, messages, purpose="execute",
                                           on_text=seen.append)
    whole = await LLMGateway().complete(PRICED, messages, purpose="execute")

    assert streamed.content == whole.content == f"{WORDS} (write slowly)"
    assert len(seen) == 26 and seen[-1] == streamed.content  # 24 words + "(write slowly)"
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(seen))
    assert streamed.usage == whole.usage
    assert streamed.usage.tokens_out > 0 and streamed.usage.cost_usd > 0


async def test_litellm_finishes_a_complete_stream_once_the_gateway_settles() -> None:
    """The reply is back as soon as its text and usage are in; what litellm does after
    (rebuilding the response again, its logging callbacks — our metrics) waits for `settle`
    and is complete when it returns."""
    logged: list[str] = []

    class Recorder(CustomLogger):
        async def async_log_success_event(self, kwargs: Any, response_obj: Any,
                                          start_time: Any, end_time: Any) -> None:
            logged.append(response_obj.choices[0].message.content)

    register_script("bookkeeper", lambda request: "kept books for " + request.last_user)
    recorder = Recorder()
    litellm.callbacks.append(recorder)
    try:
        llm = LLMGateway()
        replies = [await llm.complete("scripted/bookkeeper", [{"role": "user", "content": n}],
                                      purpose="execute", on_text=lambda text: None)
                   for n in ("one", "two")]
        assert [r.content for r in replies] == ["kept books for one", "kept books for two"]
        assert all(r.usage.tokens_out > 0 for r in replies)
        assert not [text for text in logged if text.startswith("kept books")]
        await llm.settle()
        assert sorted(text for text in logged if text.startswith("kept books")) == [
            "kept books for one", "kept books for two"]
    finally:
        litellm.callbacks.remove(recorder)


async def test_tool_calls_come_through_a_stream() -> None:
    register_script("streamed-tools", lambda request: ScriptedReply(
        content="Let me add.", tool_calls=[("add", {"a": 1, "b": 2}), ("add", {"a": 3})],
        token_delay_s=0.01))
    seen: list[str] = []
    reply = await LLMGateway().complete(
        "scripted/streamed-tools", [{"role": "user", "content": "1+2?"}], purpose="execute",
        tools=[{"type": "function", "function": {"name": "add", "parameters": {}}}],
        on_text=seen.append)
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [
        ("add", {"a": 1, "b": 2}), ("add", {"a": 3})]
    assert seen[-1] == "Let me add." and reply.message["tool_calls"][1]["id"]


async def test_a_stream_cut_mid_answer_is_an_llm_error() -> None:
    register_script("cut", lambda request: ScriptedReply(
        content=WORDS, error=litellm.exceptions.APIConnectionError(
            "connection reset", llm_provider="scripted", model="cut"), fail_after_tokens=3))
    seen: list[str] = []
    with pytest.raises(LLMError, match="connection reset"):
        await LLMGateway().complete("scripted/cut", [{"role": "user", "content": "go"}],
                                    purpose="execute", on_text=seen.append)
    assert seen == ["word0 ", "word0 word1 ", "word0 word1 word2 "]


async def test_a_step_that_turns_into_tool_calls_restarts_the_streamed_text() -> None:
    def checks_first(request: ScriptedRequest) -> ScriptedReply:
        if not request.tool_results:
            return ScriptedReply(content="Let me check.", tool_calls=[("lookup", {"q": "x"})])
        return ScriptedReply(content="It is 42.")

    register_script("checks-first", checks_first)
    version = AgentVersionView(
        tenant_id=TENANT, version=1, prompt=StructuredPrompt(persona="You help."),
        model="scripted/checks-first", temperature=0.0, parent_version=None, created_by="seed")
    seen: list[str] = []
    result = await run_agent(LLMGateway(), version, "what is x?", toolbox=ToolBox([], None),
                             on_text=seen.append)
    assert seen == ["Let ", "Let me ", "Let me check.", "It ", "It is ", "It is 42."]
    assert result.output == "It is 42." and result.tools_used == ["lookup"]


class _StandInLlama:
    """llama.cpp's chat completion stream, for a machine that can't run the real model."""

    def create_chat_completion(self, **kwargs: Any) -> Any:
        assert kwargs["stream"] is True
        yield {"choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]}
        for piece in ("Paris", " is", " the", " capital", "."):
            yield {"choices": [{"delta": {"content": piece}, "finish_reason": None}]}
        yield {"choices": [{"delta": {}, "finish_reason": "stop"}]}

    def tokenize(self, text: bytes, add_bos: bool = True) -> list[int]:
        return list(range(len(text.split())))


async def test_the_local_model_streams_through_its_own_thread() -> None:
    _MODELS["stand-in.gguf"] = _StandInLlama()
    gateway.ALLOW_MODEL_REQUESTS = True  # a local model, but no real one: llama.cpp is stood in
    try:
        seen: list[str] = []
        reply = await LLMGateway().complete(
            "local/stand-in.gguf", [{"role": "user", "content": "capital of France?"}],
            purpose="execute", on_text=seen.append)
    finally:
        del _MODELS["stand-in.gguf"]
    assert seen == ["Paris", "Paris is", "Paris is the", "Paris is the capital",
                    "Paris is the capital."]
    assert reply.content == "Paris is the capital."
    assert (reply.usage.tokens_in, reply.usage.tokens_out) == (3, 5)


# --- the pump ------------------------------------------------------------------------------


async def test_a_slow_platform_gets_the_latest_text_and_never_holds_up_the_writer() -> None:
    started, release, second = asyncio.Event(), asyncio.Event(), asyncio.Event()
    delivered: list[tuple[str, MessageRef | None]] = []

    async def slow_platform(text: str, replaces: MessageRef | None) -> Delivery:
        delivered.append((text, replaces))
        (second if started.is_set() else started).set()
        await release.wait()  # the platform is slow to answer the first edit
        return Delivery(ref=replaces or MessageRef(channel_id="c", message_id="m1"))

    remembered: list[MessageRef] = []

    async def remember(ref: MessageRef) -> None:
        remembered.append(ref)

    async with AnswerStream(slow_platform, every_s=0.01, remember=remember) as stream:
        stream.write("one")
        await started.wait()
        for text in ("one two", "one two three", "one two three four"):
            stream.write(text)  # returns at once while the platform is busy
        release.set()
        await second.wait()
    first = MessageRef(channel_id="c", message_id="m1")
    assert delivered == [("one", None), ("one two three four", None)]
    assert remembered == [first] and stream.ref == first


async def test_a_stream_edits_the_message_an_interrupted_attempt_left() -> None:
    left = MessageRef(channel_id="c", message_id="left-by-the-first-attempt")
    delivered: list[tuple[str, MessageRef | None]] = []
    arrived = asyncio.Event()

    async def platform(text: str, replaces: MessageRef | None) -> Delivery:
        delivered.append((text, replaces))
        arrived.set()
        return Delivery(ref=replaces)

    async with AnswerStream(platform, every_s=0.01, replaces=left) as stream:
        stream.write("again")
        await arrived.wait()
    assert delivered == [("again", left)] and stream.ref == left


async def test_an_answer_done_before_the_first_edit_is_not_streamed() -> None:
    delivered: list[str] = []

    async def platform(text: str, replaces: MessageRef | None) -> Delivery:
        delivered.append(text)
        return Delivery()

    async with AnswerStream(platform, every_s=60) as stream:
        stream.write("quick")
        stream.write("quick answer")
    assert delivered == [] and stream.ref is None


# --- the worker flow -------------------------------------------------------------------------


async def _use_model(bot: Bot, model: str, *, stream_every_s: float = 0.1) -> None:
    async with bot.rt.repo(TENANT) as repo:
        await bot.service.ensure_tenant(repo)
        await repo.session.execute(AgentVersion.__table__.update().values(model=model))
    bot.rt.settings.stream_every_s = stream_every_s  # the runtime of this test's loop…
    bot.stack.config = bot.stack.config.model_copy(  # …and the drain worker's
        update={"stream_every_s": stream_every_s})


async def _send(bot: Bot, text: str, message_id: str = "m1") -> int:
    accepted = await bot.service.handle_message(InboundMessage(
        tenant_id=TENANT, channel_id="c1", user_id="u1", text=text, message_id=message_id))
    assert accepted is not None
    return accepted.execution_id


def _of(bot: Bot, execution_id: int) -> list[Any]:
    return [e for e in bot.notifier.events
            if getattr(e, "execution_id", None) == execution_id and e.type != "working"]


async def _row(bot: Bot, execution_id: int) -> Execution:
    async with bot.rt.sessions() as session:
        row = await session.scalar(select(Execution).where(Execution.id == execution_id))
        assert row is not None
        return row


async def test_the_answer_streams_into_one_message_and_ends_as_the_unstreamed_one(
    bot: Bot,
) -> None:
    await _use_model(bot, PRICED)
    streamed_id = await _send(bot, "tell me slowly")
    await bot.drain()
    *deltas, answer = _of(bot, streamed_id)

    assert deltas and all(isinstance(d, AnswerDelta) for d in deltas)
    assert isinstance(answer, AnswerReady) and answer.text == f"{WORDS} (tell me slowly)"
    texts = [d.text for d in deltas]
    assert all(answer.text.startswith(t) for t in texts) and texts[0] != answer.text
    assert texts == sorted(texts, key=len) and len(set(texts)) == len(texts)
    [message] = bot.notifier.posted  # the first delta posted it; the rest edited it
    assert all(d.replaces is None for d in deltas) and answer.replaces == message
    streamed = await _row(bot, streamed_id)
    assert streamed.answer_message_id == message.message_id

    await _use_model(bot, PRICED, stream_every_s=0)  # streaming off: posted whole
    whole_id = await _send(bot, "tell me slowly", message_id="m2")
    await bot.drain()
    [whole] = _of(bot, whole_id)
    assert isinstance(whole, AnswerReady) and whole.replaces is None
    assert whole.text == answer.text
    unstreamed = await _row(bot, whole_id)
    assert (streamed.tokens_out, streamed.tokens_in) == (unstreamed.tokens_out,
                                                         unstreamed.tokens_in)
    assert streamed.cost_usd == unstreamed.cost_usd > 0


async def test_a_stream_that_keeps_breaking_says_so_in_its_partial_message(bot: Bot) -> None:
    register_script("breaks", lambda request: ScriptedReply(
        content=WORDS, token_delay_s=0.03, fail_after_tokens=12,
        error=litellm.exceptions.APIConnectionError(
            "connection reset", llm_provider="scripted", model="breaks")))
    await _use_model(bot, "scripted/breaks")
    execution_id = await _send(bot, "this will break")
    await bot.drain()  # three attempts (EVOBOT_JOB_RETRY_INTERVALS=0,0), each cut mid-answer

    first, *retries = _attempts(bot, execution_id)
    assert len(retries) == 2 and all(retries) and first
    failed = retries[-1].pop()
    assert isinstance(failed, ExecutionFailed) and "could not be reached" in failed.reason
    [message] = bot.notifier.posted  # the retries edited the first attempt's message
    assert failed.replaces == message
    assert all(isinstance(d, AnswerDelta) and d.replaces is None for d in first)
    assert all(isinstance(d, AnswerDelta) and d.replaces == message
               for retry in retries for d in retry)
    assert (await _row(bot, execution_id)).status == "failed"


def _attempts(bot: Bot, execution_id: int) -> list[list[Any]]:
    """The events of each attempt at an execution (each starts with `working`)."""
    attempts: list[list[Any]] = []
    for event in bot.notifier.events:
        if getattr(event, "execution_id", None) != execution_id:
            continue
        if event.type == "working":
            attempts.append([])
        else:
            attempts[-1].append(event)
    return attempts


async def _partial_posted(bot: Bot, execution_id: int) -> None:
    deadline = time.monotonic() + 60
    while (await _row(bot, execution_id)).answer_message_id is None:
        assert time.monotonic() < deadline, "no partial answer was posted"
        await asyncio.sleep(0.02)


async def test_a_rerun_after_the_worker_died_mid_stream_finishes_the_same_message(
    bot: Bot,
) -> None:
    await _use_model(bot, PRICED)
    execution_id = await _send(bot, "a long story")
    # the job dies with its worker
    Queue(EXECUTIONS, connection=bot.stack.redis.sync).delete(delete_jobs=True)
    worker = asyncio.create_task(execute(bot.rt, execution_id))
    await _partial_posted(bot, execution_id)
    worker.cancel()  # the worker is gone mid-stream: the row stays `running`, unbeaten
    await asyncio.gather(worker, return_exceptions=True)
    bot.notifier.forget_streams()  # and its notifier's memory of the stream with it
    assert (await _row(bot, execution_id)).status == "running"

    bot.rt.settings.stale_running_s = 0.0
    bot.stack.config = bot.stack.config.model_copy(update={"stale_running_s": 0.0})
    assert (await reconcile(bot.rt))["executions"] == 1
    await bot.drain()

    [message] = bot.notifier.posted
    abandoned, rerun = _attempts(bot, execution_id)
    assert abandoned and all(isinstance(d, AnswerDelta) for d in abandoned)
    *deltas, answer = rerun
    assert (answer.type, answer.text, answer.replaces) == (
        "answer", f"{WORDS} (a long story)", message)
    assert deltas and all(d.replaces == message for d in deltas)
    row = await _row(bot, execution_id)
    assert (row.status, row.answer_message_id) == ("succeeded", message.message_id)


async def test_the_model_does_not_wait_for_the_working_signal(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """👀 / typing is a platform round trip: the model starts meanwhile, and the answer is
    posted only once the signal is acknowledged (the answer takes the 👀 away again)."""
    from engine.llm.scripted import SCRIPTS
    from tests.engine.test_evolution_flow import ask

    order: list[str] = []
    deliver = bot.notifier.deliver

    async def slow_working(event: Any) -> Any:
        if event.type == "working":
            order.append("working sent")
            await asyncio.sleep(0.5)  # the platform taking its time
            order.append("working acknowledged")
        elif event.type == "answer":
            order.append("answer posted")
        return await deliver(event)

    def default(request: ScriptedRequest) -> Any:
        if request.purpose == "execute":
            order.append("model asked")
        return SCRIPTS_BEFORE(request)

    SCRIPTS_BEFORE = SCRIPTS["default"]
    monkeypatch.setitem(SCRIPTS, "default", default)
    monkeypatch.setattr(bot.notifier, "deliver", slow_working)
    answer = await ask(bot, "What is 2 + 2?")
    assert answer.text
    assert order == ["working sent", "model asked", "working acknowledged", "answer posted"]
