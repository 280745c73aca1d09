"""Registers evobot's litellm custom providers: `local/…` (llama.cpp) and `scripted/…`."""

from __future__ import annotations

import litellm
from litellm.types.llms.openai import ChatCompletionToolCallChunk, ChatCompletionUsageBlock
from litellm.types.utils import GenericStreamingChunk

LOCAL = "local"
SCRIPTED = "scripted"

_registered = False


def register() -> None:
    """Idempotent: add our providers to litellm's custom provider map."""
    global _registered
    if _registered:
        return
    from engine.llm.default_script import install_default_scripts
    from engine.llm.local import LocalLlamaLLM
    from engine.llm.scripted import ScriptedLLM

    install_default_scripts()
    others = [p for p in litellm.custom_provider_map if p["provider"] not in (LOCAL, SCRIPTED)]
    litellm.custom_provider_map = [
        *others,
        {"provider": LOCAL, "custom_handler": LocalLlamaLLM()},
        {"provider": SCRIPTED, "custom_handler": ScriptedLLM()},
    ]
    _registered = True


def stream_chunk(text: str, *, tool_use: ChatCompletionToolCallChunk | None = None,
                 finish: str = "", usage: ChatCompletionUsageBlock | None = None
                 ) -> GenericStreamingChunk:
    """One piece of a custom provider's stream, as litellm's stream wrapper reads it."""
    return GenericStreamingChunk(text=text, tool_use=tool_use, is_finished=bool(finish),
                                 finish_reason=finish, usage=usage, index=0)


def function_calling(model: str) -> bool | None:
    """What our own providers say about function calling; None for every other model."""
    provider, _, name = model.partition("/")
    if provider == LOCAL:
        return False  # SmolLM2-135M can't call functions reliably
    if provider == SCRIPTED:
        from engine.llm.scripted import FUNCTION_CALLING

        return name in FUNCTION_CALLING
    return None
