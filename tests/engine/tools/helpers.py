"""Helpers for the tool tests: put a tool straight on the live agent, wrap the sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.storage.models import Evolution, Tool
from engine.tools.registry import replacing, republish
from tests.conftest import Bot
from tests.engine.test_evolution_flow import TENANT, ask

ONE_STRING = {
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
}


async def install_tool(
    bot: Bot,
    name: str,
    source: str,
    *,
    description: str = "",
    parameters: dict[str, Any] | None = None,
    kind: str = "function",
    tenant: str = TENANT,
    **fields: Any,
) -> int:
    """An active tool on a new active version (as if the maker had made it); its version."""
    async with bot.rt.repo(tenant) as repo:
        repo.session.add(
            Tool(tenant_id=tenant, name=name, version=1, kind=kind,
                 description=description or f"{name} tool", parameters=parameters or ONE_STRING,
                 source=source, tests="", status="active", **fields)
        )
        await repo.session.flush()
        moved = await republish(repo, replacing(name, 1), actor="test", reason=f"add {name}")
    return moved.to_version


async def tool_row(bot: Bot, name: str, tenant: str = TENANT) -> Tool:
    async with bot.rt.repo(tenant) as repo:
        rows = [t for t in await repo.tools() if t.name == name]
    assert rows, f"no tool {name}"
    return rows[-1]


async def start_evolution(bot: Bot, tenant: str = TENANT) -> int:
    """A tenant with one answered objective and an evolution row to hang tool work on."""
    await ask(bot, "hello there", tenant=tenant)
    async with bot.rt.repo(tenant) as repo:
        row: Evolution = await repo.add_evolution(
            trigger="test", base_version=1, feedback_ids=[], channel_id="c1", thread_id="t9"
        )
        return row.id


@dataclass
class RecordingSandbox:
    """Wraps the real sandbox and keeps every program it was asked to run."""

    inner: Any
    programs: list[str] = field(default_factory=list)

    async def run(self, code: str, **kwargs: Any) -> Any:
        self.programs.append(code)
        return await self.inner.run(code, **kwargs)
