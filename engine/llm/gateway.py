"""Every model call goes through here, and through litellm.

Timeouts, retries and fallbacks are litellm's; we add a hard wall-clock timeout, token and
cost accounting per call, structured output with one repair retry, and the switch that
forbids real model requests in tests.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
from pydantic import BaseModel, ValidationError

from engine.llm import providers

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)

litellm.suppress_debug_info = True
litellm.drop_params = True  # providers that don't take a parameter get the call without it


class ModelRequestsForbidden(RuntimeError):
    """A real model was called while real requests are switched off (tests)."""


class LLMError(RuntimeError):
    """The model call failed for infrastructure reasons (timeout, provider error)."""


class LLMTimeout(LLMError):
    pass


@dataclass
class Usage:
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.cost_usd += other.cost_usd


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str = ""


@dataclass
class Reply:
    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    message: dict[str, Any] = field(default_factory=dict)  # the assistant message, for history


@dataclass
class Structured(Generic[T]):
    value: T | None
    usage: Usage
    errors: list[str]
    raw: str = ""


# pydantic-ai style global switch: tests turn it off so only scripted models can answer.
ALLOW_MODEL_REQUESTS = True


def _is_offline_model(model: str) -> bool:
    return model.startswith(f"{providers.SCRIPTED}/")


def _price_our_model(model: str) -> None:
    """Our providers' models (local llama.cpp, scripted) cost nothing. Told so once, litellm
    prices their calls at a lookup; otherwise it searches its whole price list on every
    call, and again for every cost it logs — a few ms of CPU per answer."""
    provider = model.partition("/")[0]
    if provider not in (providers.LOCAL, providers.SCRIPTED) or model in litellm.model_cost:
        return
    free = {key: 0.0 for key in ("input_cost_per_token", "output_cost_per_token",
                                 "cache_creation_input_token_cost",
                                 "cache_read_input_token_cost")}
    litellm.register_model({model: {**free, "litellm_provider": provider, "mode": "chat"}})
    _FREE_MODELS.add(model)


_FREE_MODELS: set[str] = set()  # the models `_price_our_model` priced at zero


class ToolUse(NamedTuple):
    offered: bool
    reason: str


def tool_use(model: str, mode: str = "auto") -> ToolUse:
    """Whether to offer tools in function-calling form (else: a plain completion), and why.
    `mode` is LLM_TOOLS: `on` offers them to any model, `off` to none, `auto` asks the
    capability map (ours for our providers, litellm's for the rest)."""
    if mode == "on":
        return ToolUse(True, "LLM_TOOLS=on")
    if mode == "off":
        return ToolUse(False, "LLM_TOOLS=off")
    if _capable(model):
        return ToolUse(True, f"{model} calls functions")
    return ToolUse(False, f"{model} isn't listed as able to call functions; "
                          "LLM_TOOLS=on offers tools to it anyway")


def _capable(model: str) -> bool:
    providers.register()  # our providers' scripts declare their capabilities on registration
    ours = providers.function_calling(model)
    if ours is not None:
        return ours
    try:
        return bool(litellm.supports_function_calling(model=model))
    except Exception:
        return False


UNFINISHED_STREAMS_KEPT = 8  # complete streams left for `settle` before finishing them now
LOGGING_WAIT_S = 5.0  # how long `settle` waits for litellm's logging of one stream


class LLMGateway:
    def __init__(
        self,
        *,
        timeout_s: float = 60.0,
        num_retries: int = 2,
        fallbacks: list[str] | None = None,
    ) -> None:
        providers.register()
        self.timeout_s = timeout_s
        self.num_retries = num_retries
        self.fallbacks = fallbacks or []
        self._unfinished: list[Any] = []  # streams of complete replies, for `settle`

    async def complete(
        self,
        model: str,
        messages: list[dict[str, Any]],
        *,
        purpose: str,
        tools: list[dict[str, Any]] | None = None,
        temperature: float = 0.2,
        response_format: dict[str, Any] | None = None,
        max_tokens: int = 800,
        on_text: Callable[[str], None] | None = None,
    ) -> Reply:
        """One model call. With `on_text` the reply streams: `on_text` gets the text so far
        as it grows, and the reply is rebuilt from the chunks, tool calls and usage included.
        """
        if not ALLOW_MODEL_REQUESTS and not _is_offline_model(model):
            raise ModelRequestsForbidden(
                f"real model request to {model!r} while model requests are forbidden"
            )
        _price_our_model(model)
        kwargs: dict[str, Any] = {
            "model": model, "messages": messages, "temperature": temperature,
            "max_tokens": max_tokens, "timeout": self.timeout_s,
            "num_retries": self.num_retries, "metadata": {"evobot_purpose": purpose},
        }
        optional = {"tools": tools, "response_format": response_format,
                    "fallbacks": self.fallbacks}
        kwargs.update({key: value for key, value in optional.items() if value})
        try:
            # litellm has its own timeout; the outer one also bounds retries and local models.
            call = (_streamed(kwargs, on_text, self._finish_later) if on_text
                    else litellm.acompletion(**kwargs))
            response = await asyncio.wait_for(call, timeout=self.timeout_s * (self.num_retries + 1))
        except (TimeoutError, litellm.exceptions.Timeout) as exc:
            raise LLMTimeout(f"{model} timed out ({purpose})") from exc
        except ModelRequestsForbidden:
            raise
        except Exception as exc:
            raise LLMError(f"{model} failed ({purpose}): {exc}") from exc
        return _reply(response)

    async def _finish_later(self, stream: Any) -> None:
        """Leave the rest of a stream whose reply is complete to `settle`: litellm rebuilds
        the whole response again, prices it and dispatches its logging (our metrics callback
        runs there) — ~5 ms of the event loop that the answer's own steps after the call
        would otherwise wait behind. A caller that never settles holds only a few."""
        self._unfinished.append(stream)
        if len(self._unfinished) > UNFINISHED_STREAMS_KEPT:
            await _finish(self._unfinished.pop(0))

    async def settle(self) -> None:
        """Let litellm finish its bookkeeping of the calls made so far on this event loop:
        the complete streams left to it and its logging queue. A worker settles after each
        job (its answer delivered), so none of it runs inside the next job."""
        while self._unfinished:
            await _finish(self._unfinished.pop(0))
        worker = GLOBAL_LOGGING_WORKER
        if getattr(worker, "_bound_loop", None) is asyncio.get_running_loop():
            await worker.flush()

    async def aclose(self) -> None:
        """Settle, and stop litellm's background logging if it runs on this event loop. It is
        one task per process, moved to whichever loop last called a model; left behind when
        this loop closes, it would be destroyed still pending."""
        await self.settle()
        worker = GLOBAL_LOGGING_WORKER
        if getattr(worker, "_bound_loop", None) is asyncio.get_running_loop():
            await worker.stop()

    async def structured(
        self,
        model: str,
        messages: list[dict[str, Any]],
        schema: type[T],
        *,
        purpose: str,
        temperature: float = 0.0,
        max_tokens: int = 1200,
    ) -> Structured[T]:
        """A pydantic-validated JSON answer; one repair retry with the validation error."""
        response_format = json.loads(_response_format_json(schema))
        usage = Usage()
        errors: list[str] = []
        conversation = list(messages)
        raw = ""
        for _attempt in range(2):
            reply = await self.complete(
                model, conversation, purpose=purpose, temperature=temperature,
                response_format=response_format, max_tokens=max_tokens,
            )
            usage.add(reply.usage)
            raw = reply.content
            try:
                return Structured(schema.model_validate_json(_json_part(raw)), usage, errors, raw)
            except (ValidationError, ValueError) as exc:
                errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
                conversation = _repair_request(messages, raw, errors[-1])
        return Structured(None, usage, errors, raw)


async def _streamed(kwargs: dict[str, Any], on_text: Callable[[str], None],
                    finish_later: Callable[[Any], Awaitable[None]]) -> Any:
    """A streamed call: `on_text` sees the text so far after every chunk; the whole response
    is put together from the chunks (content, tool calls, and the usage litellm sends last),
    so it costs and reads like an unstreamed one. litellm rebuilds the whole response for its
    own logging already; rebuilding it a second time cost ~0.3 ms per chunk. Once the reply
    is finished and its usage is in, the rest of the stream is litellm's bookkeeping:
    `finish_later` takes it."""
    stream = await litellm.acompletion(
        **kwargs, stream=True, stream_options={"include_usage": True}
    )
    reply = _StreamedReply()
    async for chunk in stream:
        if reply.add(chunk):
            on_text(reply.text)
        if reply.complete:
            await finish_later(stream)
            break
    if not reply.chunks:
        raise ValueError("the model's stream ended without a single chunk")
    return reply.response(kwargs["model"])


async def _finish(stream: Any) -> None:
    """Read the rest of a stream whose reply is complete, and wait for the logging litellm
    starts once it ends; a failure there is litellm's own and loses nothing of the reply."""
    before = asyncio.all_tasks()
    try:
        async for _chunk in stream:
            pass
    except Exception:
        log.warning("litellm failed while finishing a complete stream", exc_info=True)
    started = asyncio.all_tasks() - before  # litellm's logging of the call
    if started:
        await asyncio.wait(started, timeout=LOGGING_WAIT_S)


@dataclass
class _StreamedReply:
    """The pieces of a streamed reply as they arrive."""

    text: str = ""
    calls: dict[int, dict[str, str]] = field(default_factory=dict)  # by the call's index
    usage: Any = None
    finish_reason: str = "stop"
    finished: bool = False  # a chunk said why the reply ended
    chunks: int = 0

    @property
    def complete(self) -> bool:
        """Finished, and the usage litellm sends after the finish is in."""
        return self.finished and self.usage is not None

    def add(self, chunk: Any) -> bool:
        """Take one chunk in; True when it added text."""
        self.chunks += 1
        self.usage = getattr(chunk, "usage", None) or self.usage
        if not chunk.choices:
            return False
        choice = chunk.choices[0]
        if choice.finish_reason:
            self.finish_reason, self.finished = choice.finish_reason, True
        for call in choice.delta.tool_calls or []:
            part = self.calls.setdefault(call.index or 0, {"id": "", "name": "", "arguments": ""})
            part["id"] = call.id or part["id"]
            part["name"] += call.function.name or ""
            part["arguments"] += call.function.arguments or ""
        piece = choice.delta.content
        self.text += piece or ""
        return bool(piece)

    def response(self, model: str) -> litellm.ModelResponse:
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.calls:
            message["tool_calls"] = [
                {"id": part["id"], "type": "function",
                 "function": {"name": part["name"], "arguments": part["arguments"]}}
                for _, part in sorted(self.calls.items())
            ]
        usage = self.usage.model_dump() if self.usage is not None else None
        billed = getattr(self.usage, "cost", None)  # litellm's bill, on the usage it sent
        return litellm.ModelResponse(
            model=model, usage=usage,
            choices=[{"index": 0, "message": message, "finish_reason": self.finish_reason}],
            hidden_params={"response_cost": billed} if billed is not None else None,
        )


@functools.cache
def _response_format_json(schema: type[BaseModel]) -> str:
    """The `response_format` asking for `schema`, as JSON text made once per schema: pydantic
    builds a JSON schema afresh on every call (0.2–0.7 ms for ours), and each call gets its
    own copy to hand to litellm."""
    return json.dumps({
        "type": "json_schema",
        "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()},
    })


def _repair_request(messages: list[dict[str, Any]], raw: str, error: str) -> list[dict[str, Any]]:
    """The original request, the invalid answer, and what was wrong with it."""
    return [
        *messages,
        {"role": "assistant", "content": raw[:4000]},
        {"role": "user", "content": "That was not valid JSON for the schema. Error: "
                                    f"{error}\nReply with only the corrected JSON object."},
    ]


def _json_part(text: str) -> str:
    """The JSON object in a reply, tolerating code fences and chatter around it."""
    start, end = text.find("{"), text.rfind("}")
    if start == -1 or end <= start:
        raise ValueError("no JSON object in the reply")
    return text[start : end + 1]


def _cost(response: Any) -> float:
    """litellm's own bill for the call: it prices every response it returns (a stream's in
    its last chunk); priced here only when a response doesn't carry it."""
    billed = (getattr(response, "_hidden_params", None) or {}).get("response_cost")
    if isinstance(billed, int | float) and not isinstance(billed, bool):
        return float(billed)
    if getattr(response, "model", None) in _FREE_MODELS:  # a stream of ours, billed 0
        return 0.0
    try:
        return float(litellm.completion_cost(completion_response=response) or 0.0)
    except Exception:  # models without a price cost nothing
        return 0.0


def _reply(response: Any) -> Reply:
    message = response.choices[0].message
    calls = []
    for call in message.tool_calls or []:
        raw = call.function.arguments or "{}"
        try:
            arguments = json.loads(raw)
        except json.JSONDecodeError:
            arguments = {"__invalid_json__": raw}
        calls.append(ToolCall(call.id, call.function.name, arguments, raw))
    usage = Usage(calls=1)
    if getattr(response, "usage", None):
        usage.tokens_in = int(response.usage.prompt_tokens or 0)
        usage.tokens_out = int(response.usage.completion_tokens or 0)
    usage.cost_usd = _cost(response)
    assistant: dict[str, Any] = {"role": "assistant", "content": message.content or ""}
    if calls:
        assistant["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.raw_arguments or "{}"},
            }
            for c in calls
        ]
    return Reply(message.content or "", calls, usage, assistant)
