"""The tool box on the real local sandbox: every call sandboxed, every failure reported."""

from __future__ import annotations

import asyncio
import json

import pytest

from engine.sandbox import LocalSandbox
from engine.tools.box import PYTHON_SPEC, SUBAGENT, ToolBox, ToolSpec

DOUBLE = ToolSpec(
    "double", "Double a number.",
    {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]},
    "def double(x):\n    return x * 2\n",
)
CRASH = ToolSpec("crash", "Always fails.", DOUBLE.parameters, "def crash(x):\n    return x / 0\n")
SPIN = ToolSpec("spin", "Never ends.", DOUBLE.parameters, "def spin(x):\n    while True:\n"
                "        pass\n")
SPECIALIST = ToolSpec("expert", "An expert.", {"type": "object", "properties": {
    "task": {"type": "string"}}}, '{"prompt": {"persona": "x"}}', kind=SUBAGENT)


@pytest.fixture(scope="module")
def sandbox() -> LocalSandbox:
    return LocalSandbox()


async def test_a_function_tool_runs_in_the_sandbox_and_returns_its_value(
    sandbox: LocalSandbox,
) -> None:
    box = ToolBox([PYTHON_SPEC, DOUBLE], sandbox)
    assert [s["function"]["name"] for s in box.schemas()] == ["python", "double"]
    outcome = await box.call("double", {"x": 21})
    assert outcome.ok and json.loads(outcome.content)["value"] == 42
    assert outcome.duration_s > 0


async def test_failures_are_reported_to_the_model_not_raised(sandbox: LocalSandbox) -> None:
    box = ToolBox([PYTHON_SPEC, CRASH, SPIN], sandbox, timeout_s=1.0)
    crashed = await box.call("crash", {"x": 1})
    assert not crashed.ok and crashed.content.startswith("error: ZeroDivisionError")
    spun = await box.call("spin", {"x": 1})
    assert not spun.ok and "timeout" in spun.content
    assert (await box.call("nope", {})).content == "error: no tool named 'nope'"
    invalid = await box.call("crash", {"__invalid_json__": "{x"})
    assert invalid.content == "error: arguments were not valid JSON"


async def test_the_builtin_python_tool_is_sandboxed(sandbox: LocalSandbox) -> None:
    box = ToolBox([PYTHON_SPEC], sandbox)
    ok = await box.call("python", {"code": "result = sum(range(10))"})
    assert json.loads(ok.content)["value"] == 45
    refused = await box.call("python", {"code": "import socket\nsocket.create_connection("
                                                "('1.1.1.1', 80))"})
    assert not refused.ok


async def test_without_a_sandbox_nothing_is_offered() -> None:
    box = ToolBox([PYTHON_SPEC, DOUBLE], None)
    assert box.schemas() == []
    assert not (await box.call("double", {"x": 1})).ok


async def test_a_subagent_tool_needs_a_runner_and_its_failures_are_reported(
    sandbox: LocalSandbox,
) -> None:
    assert "expert" not in ToolBox([SPECIALIST], sandbox).tools  # no runner: not offered

    async def answers(spec: ToolSpec, task: str) -> tuple[str, list[str]]:
        return f"{spec.name} says: {task}", ["python"]

    async def breaks(spec: ToolSpec, task: str) -> tuple[str, list[str]]:
        raise RuntimeError("model down")

    async def dawdles(spec: ToolSpec, task: str) -> tuple[str, list[str]]:
        await asyncio.sleep(5)
        return "late", []

    ok = await ToolBox([SPECIALIST], sandbox, run_subagent=answers).call("expert", {"task": "hi"})
    assert ok.ok and json.loads(ok.content) == {"value": "expert says: hi",
                                                "tools_used": ["python"]}
    broken = await ToolBox([SPECIALIST], sandbox, run_subagent=breaks).call("expert",
                                                                            {"task": "hi"})
    assert broken.content == "error: sub-agent failure: RuntimeError: model down"
    slow = ToolBox([SPECIALIST], sandbox, run_subagent=dawdles, subagent_timeout_s=0.2)
    assert "took longer" in (await slow.call("expert", {"task": "hi"})).content
    empty = await ToolBox([SPECIALIST], sandbox, run_subagent=answers).call("expert", {})
    assert empty.content == "error: give the sub-agent a `task`"
