"""A scripted model, registered as the litellm provider `scripted/<script>`.

The fake beside the LLM port: tests (and offline demos) get deterministic answers while the
real litellm call path runs. A script is a function of the request; tests register their
own with `register_script`, and `scripted/default` is a deterministic, rule-following
agent + reflector + judge + tool maker usable from separate processes (`evobot worker`).
Asked for a stream, it streams the reply word by word (`token_delay_s` apart, like a slow
model), and can break off mid-stream (`fail_after_tokens`).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import litellm
from litellm.llms.custom_llm import CustomLLM
from litellm.types.llms.openai import ChatCompletionToolCallChunk, ChatCompletionUsageBlock
from litellm.types.utils import (
    ChatCompletionMessageToolCall,
    Function,
    GenericStreamingChunk,
    Message,
    ModelResponse,
)

from engine.llm.providers import stream_chunk


@dataclass
class ScriptedRequest:
    script: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    response_format: dict[str, Any] | None
    purpose: str

    @property
    def system(self) -> str:
        return "\n".join(
            str(m.get("content") or "") for m in self.messages if m.get("role") == "system"
        )

    @property
    def last_user(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return str(message.get("content") or "")
        return ""

    @property
    def tool_results(self) -> list[str]:
        return [str(m.get("content")) for m in self.messages if m.get("role") == "tool"]

    def data(self) -> Any:
        """The JSON payload the engine puts between <data> tags in its prompts."""
        match = re.search(r"<data>(.*?)</data>", self.last_user, re.S)
        return json.loads(match.group(1)) if match else None


@dataclass
class ScriptedReply:
    content: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    delay_s: float = 0.0  # before the reply (or its first token): to exercise timeouts
    error: Exception | None = None
    # a pause between tokens, like a slow model (unstreamed: the reply waits for them all);
    # with `error`, streamed: the tokens that come out before it is raised mid-stream
    token_delay_s: float = 0.0
    fail_after_tokens: int = 0


ScriptResult = ScriptedReply | str
Script = Callable[[ScriptedRequest], ScriptResult | Awaitable[ScriptResult]]
SCRIPTS: dict[str, Script] = {}
CALLS: list[ScriptedRequest] = []  # every request, for assertions


# scripts that stand for a model litellm would list as function-calling; one registered
# without it stands for a self-hosted model litellm knows nothing about
FUNCTION_CALLING: set[str] = set()


def register_script(name: str, script: Script, *, function_calling: bool = True) -> None:
    SCRIPTS[name] = script
    if function_calling:
        FUNCTION_CALLING.add(name)
    else:
        FUNCTION_CALLING.discard(name)


class ScriptedLLM(CustomLLM):
    async def acompletion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        request, reply = await _scripted(kwargs)
        if reply.error is not None:
            raise reply.error
        await asyncio.sleep(reply.token_delay_s * max(len(tokenize(reply.content)) - 1, 0))
        return _response(request, reply)

    async def astreaming(  # type: ignore[override]  # an async generator, as litellm calls it
        self, *args: Any, **kwargs: Any
    ) -> AsyncIterator[GenericStreamingChunk]:
        """The reply token by token (words with their spacing), then its tool calls, then
        the finish with usage — the shape litellm's stream wrapper expects of a provider."""
        request, reply = await _scripted(kwargs)
        tokens = tokenize(reply.content)
        if reply.error is not None:
            tokens = tokens[: reply.fail_after_tokens]
        clock = asyncio.get_running_loop().time
        start = clock()
        for index, token in enumerate(tokens):
            if index:  # on schedule (the pauses add up to what the unstreamed reply waits),
                # catching up after a stall at no more than twice the pace
                due = start + index * reply.token_delay_s - clock()
                await asyncio.sleep(max(reply.token_delay_s / 2, due))
            yield stream_chunk(token)
        if reply.error is not None:
            raise reply.error
        for index, (name, arguments) in enumerate(reply.tool_calls):
            yield stream_chunk("", tool_use=ChatCompletionToolCallChunk(
                id=f"call_{uuid.uuid4().hex[:12]}", type="function", index=index,
                function={"name": name, "arguments": json.dumps(arguments)}))
        yield stream_chunk("", finish="tool_calls" if reply.tool_calls else "stop",
                           usage=_usage(request, reply))

    def completion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        raise NotImplementedError("evobot is async only: use litellm.acompletion")


async def _scripted(kwargs: dict[str, Any]) -> tuple[ScriptedRequest, ScriptedReply]:
    """The request litellm handed over, and the script's reply to it (after its delay)."""
    request = _request(kwargs)
    CALLS.append(request)
    script = SCRIPTS.get(request.script)
    if script is None:
        raise litellm.exceptions.BadRequestError(
            f"no script named {request.script!r}", model=request.script, llm_provider="scripted"
        )
    result = script(request)
    if inspect.isawaitable(result):
        result = await result
    assert isinstance(result, str | ScriptedReply)
    reply = ScriptedReply(content=result) if isinstance(result, str) else result
    if reply.delay_s:
        await asyncio.sleep(reply.delay_s)
    return request, reply


def tokenize(text: str) -> list[str]:
    """A reply's stream tokens: each word with the spacing after it (they join back exactly)."""
    return re.findall(r"\S+\s*|\s+", text)


def _request(kwargs: dict[str, Any]) -> ScriptedRequest:
    params = kwargs.get("optional_params") or {}
    litellm_params = kwargs.get("litellm_params") or {}
    metadata = litellm_params.get("metadata") or {}
    model = str(kwargs.get("model", ""))
    return ScriptedRequest(
        script=model.split("/", 1)[-1],
        messages=list(kwargs.get("messages") or []),
        tools=list(params.get("tools") or []),
        response_format=params.get("response_format"),
        purpose=str(metadata.get("evobot_purpose", "")),
    )


def _response(request: ScriptedRequest, reply: ScriptedReply) -> ModelResponse:
    tool_calls = [
        ChatCompletionMessageToolCall(
            id=f"call_{uuid.uuid4().hex[:12]}",
            type="function",
            function=Function(name=name, arguments=json.dumps(arguments)),
        )
        for name, arguments in reply.tool_calls
    ]
    return ModelResponse(
        id=f"scripted-{uuid.uuid4().hex[:8]}",
        created=int(time.time()),
        model=f"scripted/{request.script}",
        choices=[
            {
                "index": 0,
                "finish_reason": "tool_calls" if tool_calls else "stop",
                "message": Message(
                    role="assistant", content=reply.content or None, tool_calls=tool_calls or None
                ),
            }
        ],
        usage=dict(_usage(request, reply)),
    )


def _usage(request: ScriptedRequest, reply: ScriptedReply) -> ChatCompletionUsageBlock:
    """About four characters a token, as tokenizers go."""
    prompt_tokens = sum(len(str(m.get("content") or "")) for m in request.messages) // 4
    completion_tokens = len(reply.content) // 4 + 1
    return ChatCompletionUsageBlock(prompt_tokens=prompt_tokens,
                                    completion_tokens=completion_tokens,
                                    total_tokens=prompt_tokens + completion_tokens)
