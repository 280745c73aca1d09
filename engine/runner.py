"""Runs one objective with one agent version: the litellm tool-calling loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.llm.gateway import LLMGateway, ToolCall, Usage, tool_use
from engine.prompt import render
from engine.tools.box import ToolBox
from engine.types import AgentVersionView


@dataclass
class RunResult:
    output: str
    trace: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    duration_s: float = 0.0
    tools_used: list[str] = field(default_factory=list)


@dataclass
class Guidance:
    """What the tenant's history adds to the system prompt for one objective."""

    lessons: list[str] = field(default_factory=list)  # from similar, badly rated objectives
    patterns: list[str] = field(default_factory=list)  # learnings, for a new kind of objective
    novel: bool = False  # unlike anything this tenant asked before

    def text(self) -> str:
        parts = []
        if self.lessons:
            parts.append("Lessons from similar past requests that users rated badly:\n"
                         + "\n".join(f"- {lesson}" for lesson in self.lessons))
        if self.patterns:
            parts.append("This is a new kind of request here. Patterns learned from similar "
                         "work:\n" + "\n".join(f"- {pattern}" for pattern in self.patterns))
        return "\n".join(parts)


def build_messages(
    version: AgentVersionView,
    objective: str,
    history: list[tuple[str, str]],
    guidance: Guidance,
) -> list[dict[str, Any]]:
    system = render(version.prompt)
    if guidance.text():
        system += "\n" + guidance.text()
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for asked, answered in history:
        messages += [
            {"role": "user", "content": asked},
            {"role": "assistant", "content": answered},
        ]
    messages.append({"role": "user", "content": objective})
    return messages


async def run_agent(
    gateway: LLMGateway,
    version: AgentVersionView,
    objective: str,
    *,
    toolbox: ToolBox,
    history: list[tuple[str, str]] | None = None,
    guidance: Guidance | None = None,
    max_steps: int = 5,
    purpose: str = "execute",
    max_tokens: int = 600,
    tool_mode: str = "auto",
    on_text: Callable[[str], None] | None = None,
) -> RunResult:
    """Answer `objective`. Raises LLMError on infrastructure failures (never learned from).
    With `on_text`, every step streams its text so far there (a step that turns into tool
    calls is followed by the next one's text, which starts again from nothing)."""
    start = time.perf_counter()
    messages = build_messages(version, objective, history or [], guidance or Guidance())
    tools = toolbox.schemas() if tool_use(version.model, tool_mode).offered else []
    result = RunResult(output="")
    for step in range(max_steps):
        offered = tools if step < max_steps - 1 else []  # the last step must answer
        reply = await gateway.complete(
            version.model, messages, purpose=purpose, tools=offered or None,
            temperature=version.temperature, max_tokens=max_tokens, on_text=on_text,
        )
        result.usage.add(reply.usage)
        if not reply.tool_calls:
            result.output = reply.content.strip()
            break
        messages.append(reply.message)
        for call in reply.tool_calls:
            messages.append(await _call_tool(toolbox, call, step, result))
    result.output = result.output or "(no answer)"
    result.duration_s = time.perf_counter() - start
    return result


async def _call_tool(toolbox: ToolBox, call: ToolCall, step: int, result: RunResult
                     ) -> dict[str, Any]:
    """Run one tool call, record it in the trace, and return the tool message for the model."""
    outcome = await toolbox.call(call.name, call.arguments)
    result.tools_used.append(call.name)
    result.trace.append({
        "step": step, "tool": call.name, "arguments": call.arguments, "ok": outcome.ok,
        "result": outcome.content[:2000], "duration_s": round(outcome.duration_s, 4),
    })
    return {"role": "tool", "tool_call_id": call.id, "name": call.name,
            "content": outcome.content}
