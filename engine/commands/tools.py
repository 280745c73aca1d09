"""Commands about the agent's tools: list them with their stats, pin and unpin."""

from __future__ import annotations

from engine.commands.replies import refuse, reply
from engine.llm.gateway import tool_use
from engine.runtime import Runtime
from engine.storage.models import Tool
from engine.storage.repo import TenantRepo
from engine.tools.box import SUBAGENT
from engine.tools.registry import ACTIVE_STATUS, ARCHIVED, OFFERED, REJECTED
from engine.tools.workflow import WORKFLOW
from engine.types import Block, CommandReply, Document, InboundCommand


def _tool_line(tool: Tool) -> str:
    kind = {SUBAGENT: "sub-agent", WORKFLOW: "workflow"}.get(tool.kind, "function")
    pin = " 📌 pinned" if tool.pinned else ""
    if tool.calls:
        avg = tool.total_duration_s / tool.calls
        usage = (
            f"{tool.calls} call{'s' if tool.calls != 1 else ''}, "
            f"{tool.successes / tool.calls:.0%} ok, {avg:.2f} s avg"
        )
    else:
        usage = "not called yet"
    last = f", last used {tool.last_used_at:%Y-%m-%d}" if tool.last_used_at else ""
    return (
        f"{tool.name} v{tool.version} ({kind}) [{tool.status}]{pin}: {usage}{last} — "
        f"{tool.description[:80]}"
    )


async def list_tools(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    """Offered tools with their stats; then what was archived and what was rejected."""
    tools = await repo.tools()
    active = await repo.active_version()
    offered = [t for t in tools if t.status in OFFERED]
    lines = ["python (built-in, sandboxed)", *(_tool_line(t) for t in offered)]
    blocks = [
        Block(kind="header", text=f"Tools of v{active.version}"),
        Block(kind="text", text="\n".join(lines)),
    ]
    use = tool_use(active.model, rt.settings.llm_tools)
    if not use.offered:
        blocks.append(Block(kind="context", text=f"Tool use is off for {active.model}: "
                                                 f"{use.reason}."))
    archived = [t for t in tools if t.status == ARCHIVED]
    if archived:
        blocks.append(Block(kind="context", text="Archived: " + "; ".join(
            f"{t.name} v{t.version} ({(t.note or 'archived')[:80]})" for t in archived[-5:]
        )))
    rejected = [t for t in tools if t.status == REJECTED]
    if rejected:
        blocks.append(Block(kind="context", text="Rejected drafts: " + "; ".join(
            f"{t.name} v{t.version} ({(t.note or '').splitlines()[0][:80] if t.note else '?'})"
            for t in rejected[-3:]
        )))
    document = Document(summary=f"{len(offered) + 1} tools", blocks=blocks)
    return CommandReply(ok=True, document=document)


async def pin(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    return await _set_pin(command, repo, pinned=True)


async def unpin(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    return await _set_pin(command, repo, pinned=False)


async def _set_pin(command: InboundCommand, repo: TenantRepo, *, pinned: bool) -> CommandReply:
    verb = "pin" if pinned else "unpin"
    if not command.args:
        return refuse(f"Usage: {verb} <tool name>")
    name = command.args[0]
    tool = next((t for t in await repo.tools(OFFERED) if t.name == name), None)
    if tool is None:
        return refuse(f"No tool named `{name}` is in use (see `tools`).")
    tool.pinned = pinned
    if pinned:
        tool.status = ACTIVE_STATUS  # a pinned tool is never stale
        return reply(f"Pinned {name}", "It won't go stale, be archived or be retired.")
    return reply(f"Unpinned {name}", "It follows the usual lifecycle again.")
