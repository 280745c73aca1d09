"""A scripted model, registered as the litellm provider `scripted/<script>`.

The fake beside the LLM port: tests (and offline demos) get deterministic answers while the
real litellm call path runs. A script is a function of the request; tests register their
own with `register_script`, and `scripted/default` is a deterministic, rule-following
agent + reflector + judge + tool maker usable from separate processes (`evobot worker`).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import litellm
from litellm.llms.custom_llm import CustomLLM
from litellm.types.utils import ChatCompletionMessageToolCall, Function, Message, ModelResponse


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
    delay_s: float = 0.0  # to exercise timeouts
    error: Exception | None = None


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
        if reply.error is not None:
            raise reply.error
        return _response(request, reply)

    def completion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        raise NotImplementedError("evobot is async only: use litellm.acompletion")


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
    prompt_tokens = sum(len(str(m.get("content") or "")) for m in request.messages) // 4
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
        usage={
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(reply.content) // 4 + 1,
            "total_tokens": prompt_tokens + len(reply.content) // 4 + 1,
        },
    )
