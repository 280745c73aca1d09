"""The LLM gateway over the real litellm call path, with the scripted provider."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from engine.llm import scripted
from engine.llm.gateway import LLMGateway, LLMTimeout, ModelRequestsForbidden
from engine.llm.scripted import ScriptedReply, ScriptedRequest, register_script


class Answer(BaseModel):
    value: int


async def test_scripted_calls_go_through_litellm_with_tools_and_usage() -> None:
    def tool_user(request: ScriptedRequest) -> ScriptedReply:
        assert request.tools[0]["function"]["name"] == "add"
        return ScriptedReply(tool_calls=[("add", {"a": 1, "b": 2})])

    register_script("tool-user", tool_user)
    reply = await LLMGateway().complete(
        "scripted/tool-user",
        [{"role": "user", "content": "1+2?"}],
        purpose="execute",
        tools=[{"type": "function", "function": {"name": "add", "parameters": {}}}],
    )
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("add", {"a": 1, "b": 2})]
    assert reply.usage.calls == 1 and reply.usage.tokens_in > 0
    assert scripted.CALLS[-1].purpose == "execute"


async def test_real_models_are_forbidden_in_tests() -> None:
    with pytest.raises(ModelRequestsForbidden):
        await LLMGateway().complete(
            "openai/gpt-4o-mini", [{"role": "user", "content": "hi"}], purpose="execute"
        )


async def test_structured_output_gets_one_repair_retry() -> None:
    replies = iter(["not json at all", '{"value": 42}'])
    register_script("flaky-json", lambda request: next(replies))
    result = await LLMGateway().structured(
        "scripted/flaky-json", [{"role": "user", "content": "give"}], Answer, purpose="reflect"
    )
    assert result.value == Answer(value=42)
    assert len(result.errors) == 1 and result.usage.calls == 2


async def test_structured_output_gives_up_after_the_repair() -> None:
    register_script("never-json", lambda request: '{"value": "many"}')
    result = await LLMGateway().structured(
        "scripted/never-json", [{"role": "user", "content": "give"}], Answer, purpose="reflect"
    )
    assert result.value is None and len(result.errors) == 2


async def test_each_structured_call_asks_for_the_schema_in_its_own_copy() -> None:
    class Counted(BaseModel):
        count: int

    built = []
    original = Counted.model_json_schema

    def counting_schema(*args: object, **kwargs: object) -> dict[str, object]:
        built.append(1)
        return original(*args, **kwargs)

    def spoiler(request: ScriptedRequest) -> str:
        assert request.response_format is not None
        properties = request.response_format["json_schema"]["schema"]["properties"]
        assert "count" in properties  # an earlier call's edit did not leak into this one
        properties.clear()  # as a provider adapting the schema might
        return '{"count": 3}'

    register_script("spoiler", spoiler)
    Counted.model_json_schema = counting_schema  # type: ignore[method-assign]
    gateway = LLMGateway()
    asked = [{"role": "user", "content": "how many?"}]
    for _ in range(3):
        result = await gateway.structured("scripted/spoiler", asked, Counted, purpose="reflect")
        assert result.value == Counted(count=3)
    formats = [call.response_format for call in scripted.CALLS[-3:]]
    assert built == [1]  # pydantic builds the schema once, not per call
    assert all(f is not None and f["json_schema"]["name"] == "Counted" for f in formats)


async def test_a_slow_model_times_out() -> None:
    register_script("slow", lambda request: ScriptedReply(content="late", delay_s=5))
    with pytest.raises(LLMTimeout):
        await LLMGateway(timeout_s=0.2, num_retries=0).complete(
            "scripted/slow", [{"role": "user", "content": "hi"}], purpose="execute"
        )
