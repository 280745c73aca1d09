"""Which tools an agent version has, and how the tool set of the live agent changes.

A tool set change is a new agent version (versions are immutable): the active version's
prompt with the changed tool list, promoted with the optimistic label check. When a canary
is running it gets the same change, so promoting it later doesn't drop (or resurrect) a tool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.runtime import Runtime
from engine.storage.models import Tool
from engine.storage.repo import ACTIVE, CANARY, TenantRepo
from engine.tools.box import FUNCTION, PYTHON_SPEC, SUBAGENT, ToolBox, ToolSpec
from engine.tools.subagent import MAX_STEPS, subagent_runner
from engine.types import TenantId

ACTIVE_STATUS = "active"
STALE = "stale"
ARCHIVED = "archived"
REJECTED = "rejected"
OFFERED = (ACTIVE_STATUS, STALE)  # stale tools are still offered; a call revives them


def ref(name: str, version: int) -> str:
    return f"{name}@{version}"


def spec(row: Tool) -> ToolSpec:
    return ToolSpec(row.name, row.description, row.parameters, row.source, row.version, row.kind)


async def build_toolbox(
    rt: Runtime, tenant_id: TenantId, tool_refs: list[str], *, model: str, temperature: float
) -> ToolBox:
    """`python` plus the version's own tools that are still offered, all sandboxed."""
    rows: dict[str, Tool] = {}
    if tool_refs:
        async with rt.repo(tenant_id) as repo:
            rows = {ref(t.name, t.version): t for t in await repo.tools(OFFERED)}
    specs = [spec(rows[r]) for r in tool_refs if r in rows]
    return toolbox_of(rt, tenant_id, specs, model=model, temperature=temperature)


def toolbox_of(
    rt: Runtime, tenant_id: TenantId, specs: list[ToolSpec], *, model: str, temperature: float
) -> ToolBox:
    """`python` plus these tools, wired to the sandbox and (sub-agents, workflows) the model."""
    functions = [s for s in specs if s.kind == FUNCTION]
    runner = None
    if any(s.kind == SUBAGENT for s in specs):
        runner = subagent_runner(
            rt.gateway,
            tenant_id,
            model=model,
            temperature=temperature,
            function_tools=functions,
            sandbox=rt.sandbox,
            tool_timeout_s=rt.settings.tool_timeout_s,
        )

    async def ask_model(prompt: str) -> str:  # a workflow's llm step: one plain request
        messages = [{"role": "user", "content": prompt}]
        reply = await rt.gateway.complete(model, messages, purpose="workflow_step",
                                          temperature=temperature)
        return reply.content

    return ToolBox(
        [PYTHON_SPEC, *specs],
        rt.sandbox,
        timeout_s=rt.settings.tool_timeout_s,
        run_subagent=runner,
        subagent_timeout_s=rt.settings.llm_timeout_s * MAX_STEPS,
        ask_model=ask_model,
    )


async def next_version(repo: TenantRepo, name: str) -> int:
    """Tool versions count every row of that name, rejected ones included (unique key)."""
    versions = [t.version for t in await repo.tools() if t.name == name]
    return max(versions, default=0) + 1


def without(names: set[str]) -> Callable[[list[str]], list[str]]:
    return lambda refs: [r for r in refs if r.split("@", 1)[0] not in names]


def replacing(name: str, version: int) -> Callable[[list[str]], list[str]]:
    """Drop any other version of `name`, then add this one."""
    return lambda refs: [*without({name})(refs), ref(name, version)]


@dataclass(frozen=True)
class Republished:
    from_version: int
    to_version: int


async def republish(
    repo: TenantRepo, change: Callable[[list[str]], list[str]], *, actor: str, reason: str
) -> Republished:
    """New active version (and canary, if one runs) with `change` applied to its tools.

    Raises StaleLabel when a label moved concurrently; the caller's transaction rolls back.
    """
    active = await repo.active_version()
    number = await repo.create_version(
        prompt=active.prompt,
        model=active.model,
        temperature=active.temperature,
        tools=change(active.tools),
        parent_version=active.version,
        created_by=actor,
        rationale=reason,
    )
    await repo.move_label(ACTIVE, number, reason="tools", actor=actor, expect=active.version)
    canary_number = await repo.label(CANARY)
    canary = await repo.version(canary_number) if canary_number is not None else None
    if canary is not None:
        twin = await repo.create_version(
            prompt=canary.prompt,
            model=canary.model,
            temperature=canary.temperature,
            tools=change(canary.tools),
            parent_version=canary.version,
            created_by=actor,
            rationale=reason,
        )
        await repo.move_label(CANARY, twin, reason="tools", actor=actor, expect=canary.version)
    return Republished(active.version, number)


async def announce_channel(
    repo: TenantRepo, evolution_id: int | None
) -> tuple[str | None, str | None]:
    """Where the evolution came from, else the tenant's home channel."""
    if evolution_id is not None:
        row = await repo.evolution(evolution_id)
        if row is not None and row.channel_id:
            return row.channel_id, row.thread_id
    tenant = await repo.tenant()
    return (tenant.home_channel_id if tenant else None), None
