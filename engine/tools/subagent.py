"""Sub-agents as tools: a specialist with its own persona, rules and function tools, offered
to the main agent as one tool taking a `task`.

Depth is bounded at one: a sub-agent's tool box holds `python` and function tools only, so a
sub-agent never calls another sub-agent.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from engine.llm.gateway import LLMGateway
from engine.runner import run_agent
from engine.tools.box import FUNCTION, PYTHON_SPEC, SubagentRunner, ToolBox, ToolSpec
from engine.types import AgentVersionView, StructuredPrompt, TenantId

MAX_STEPS = 3
TASK_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "task": {"type": "string", "description": "the whole task, with every detail it needs"}
    },
    "required": ["task"],
}


class SubagentSpec(BaseModel):
    """What a sub-agent tool's `source` holds, as JSON."""

    prompt: StructuredPrompt
    tools: list[str] = Field(default_factory=list)  # names of the tenant's function tools


def parse_spec(source: str) -> SubagentSpec:
    return SubagentSpec.model_validate_json(source)


def subagent_runner(
    gateway: LLMGateway,
    tenant_id: TenantId,
    *,
    model: str,
    temperature: float,
    function_tools: list[ToolSpec],
    sandbox: Any,
    tool_timeout_s: float,
) -> SubagentRunner:
    """A runner for the sub-agent tools of one execution (same model as the main agent)."""
    by_name = {t.name: t for t in function_tools if t.kind == FUNCTION}

    async def run(spec: ToolSpec, task: str) -> tuple[str, list[str]]:
        sub = parse_spec(spec.source)
        tools = [by_name[n] for n in sub.tools if n in by_name]
        version = AgentVersionView(
            tenant_id=tenant_id, version=spec.version, prompt=sub.prompt, model=model,
            temperature=temperature, tools=[t.ref for t in tools], parent_version=None,
            created_by=f"subagent:{spec.name}",
        )
        # no run_subagent here: a sub-agent gets no sub-agents (bounded depth)
        toolbox = ToolBox([PYTHON_SPEC, *tools], sandbox, timeout_s=tool_timeout_s)
        result = await run_agent(
            gateway, version, task, toolbox=toolbox, max_steps=MAX_STEPS, purpose="subagent"
        )
        return result.output, result.tools_used

    return run

