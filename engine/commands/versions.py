"""Commands about the agent's versions: status, history, diff, prompt, rollback."""

from __future__ import annotations

from engine.commands.replies import int_arg, refuse, reply
from engine.llm.gateway import tool_use
from engine.present import rollback_document
from engine.progress import AgentProgress, VersionProgress, agent_progress, load_history
from engine.prompt import render, unified_diff
from engine.runtime import Runtime
from engine.storage.repo import ACTIVE, CANARY, TenantRepo
from engine.tools.box import SUBAGENT
from engine.tools.registry import OFFERED
from engine.types import (
    AgentVersionView,
    Block,
    CommandReply,
    Document,
    InboundCommand,
    RolledBack,
)


async def status(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    tenant = await repo.tenant()
    assert tenant is not None
    active = await repo.active_version()
    canary = await repo.label(CANARY)
    tools = await repo.tools(OFFERED)
    functions = [t.name for t in tools if t.kind != SUBAGENT]
    progress = agent_progress(
        await load_history(repo), rules=len(active.prompt.rules), tools=len(functions),
        subagents=len(tools) - len(functions),
    )
    tool_use_now = tool_use(active.model, rt.settings.llm_tools)
    fields = [
        ("Active version", f"v{active.version}" + (f" (canary v{canary})" if canary else "")),
        ("Model", active.model),
        ("Tool use", "on" if tool_use_now.offered else f"off — {tool_use_now.reason}"),
        ("Rules", str(progress.rules)),
        ("Tools", ", ".join(["python (built-in)", *functions])),
        ("Sub-agents", str(progress.subagents)),
        ("Learning", _learning_line(progress)),
        ("Evolution", "paused" if tenant.evolution_paused else "on"),
        ("Privacy", tenant.privacy_mode),
    ]
    lines = [_version_line(v) for v in progress.versions]
    document = Document(
        summary=f"v{active.version} active",
        blocks=[
            Block(kind="header", text="evobot status"),
            Block(kind="fields", fields=fields),
            Block(kind="text", text="Per version:\n" + ("\n".join(lines) or "no answers yet")),
            Block(kind="context", text="good = rated 4 or 5; first try = not asked again in "
                                       "the thread; infrastructure failures are never rated"),
        ],
    )
    return CommandReply(ok=True, document=document)


def _learning_line(progress: AgentProgress) -> str:
    competence = (f"competent after {progress.time_to_competence} answers"
                  if progress.time_to_competence else "not yet at 80% good")
    return (f"{progress.version_count} versions · {progress.evolutions_per_100:.0f} evolutions "
            f"per 100 answers · {competence}")


def _version_line(v: VersionProgress) -> str:
    if v.ratings:
        rated = (f"{v.average:.1f} avg · {v.ratings} rating{'s' if v.ratings != 1 else ''} · "
                 f"{v.success_rate:.0%} good")
    else:
        rated = "no ratings"
    parts = [f"v{v.version}: {rated}", f"{v.answered} answered"]
    if v.first_try_success is not None:
        parts.append(f"first try {v.first_try_success:.0%}")
    if v.latency_p50_s is not None:
        parts.append(f"{v.latency_p50_s:.1f}/{v.latency_p95_s:.1f} s p50/p95")
    if v.average_cost_usd:
        parts.append(f"${v.average_cost_usd:.4f} per answer")
    if v.infra_failures:
        parts.append(f"{v.infra_failures} infrastructure failure"
                     + ("s" if v.infra_failures != 1 else ""))
    return " · ".join(parts)


async def history(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    try:
        limit = min(int_arg(command.args, 0) or 5, 25)
    except ValueError as exc:
        return refuse(str(exc))
    active = await repo.label(ACTIVE)
    canary = await repo.label(CANARY)
    lines = []
    for v in await repo.versions(limit):
        mark = " ← active" if v.version == active else " ← canary" if v.version == canary else ""
        when = v.created_at.strftime("%Y-%m-%d %H:%M") if v.created_at else ""
        lines.append(f"v{v.version} ({v.created_by}, {when}){mark}: {v.rationale[:120]}")
    moves = [
        f"{m.at.strftime('%H:%M')} {m.label}: v{m.from_version} → v{m.to_version} ({m.reason})"
        for m in await repo.label_moves(limit)
    ]
    document = Document(
        summary=f"{len(lines)} versions",
        blocks=[
            Block(kind="header", text="Version history"),
            Block(kind="text", text="\n".join(lines)),
            Block(kind="context", text="Label moves: " + "; ".join(moves)),
        ],
    )
    return CommandReply(ok=True, document=document)


async def diff(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    try:
        a, b = int_arg(command.args, 0), int_arg(command.args, 1)
    except ValueError as exc:
        return refuse(str(exc))
    active = await repo.active_version()
    if a is None:
        b = active.version
        a = active.parent_version or active.version
    elif b is None:
        a, b = a, active.version
    old, new = await repo.version(a), await repo.version(b)
    if old is None or new is None:
        return refuse(f"No version v{a if old is None else b}.")
    diff = unified_diff(old.prompt, new.prompt, a, b)
    document = Document(
        summary=f"diff v{a} → v{b}",
        blocks=[
            Block(kind="header", text=f"Prompt diff v{a} → v{b}"),
            Block(kind="diff", text=diff) if diff else Block(kind="text", text="No difference."),
        ],
    )
    return CommandReply(ok=True, document=document)


async def prompt(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    active = await repo.active_version()
    document = Document(
        summary=f"v{active.version} prompt",
        blocks=[Block(kind="header", text=f"v{active.version} system prompt"),
                Block(kind="code", text=render(active.prompt))],
    )
    return CommandReply(ok=True, document=document)


async def rollback(rt: Runtime, command: InboundCommand) -> CommandReply:
    """Undo the newest change: a live canary is dropped (the active version stays); otherwise
    the active label moves to the given version or to the active one's parent."""
    try:
        target = int_arg(command.args, 0)
    except ValueError as exc:
        return refuse(str(exc))
    async with rt.repo(command.tenant_id) as repo:
        active = await repo.active_version()
        canary = await repo.label(CANARY)
        if canary is not None and target in (None, active.version):
            await repo.move_label(CANARY, None, reason="rollback", actor=command.user_id)
            moved: tuple[int, int] | CommandReply = (canary, active.version)
        else:
            moved = await _move_active(repo, active, target, command.user_id)
        tenant = await repo.tenant()
    if isinstance(moved, CommandReply):
        return moved
    home = tenant.home_channel_id if tenant else None
    await rt.notifier.deliver(_rolled_back(command, *moved, channel_id=command.channel_id or home))
    return reply(f"Rolled back: v{moved[0]} → v{moved[1]}", "The rollback was announced.")


async def _move_active(repo: TenantRepo, active: AgentVersionView, target: int | None,
                       actor: str) -> tuple[int, int] | CommandReply:
    target = target or active.parent_version
    if target is None:
        return refuse(f"v{active.version} has no earlier version to roll back to.")
    if target == active.version:
        return reply(f"v{target} is already active.")
    if await repo.version(target) is None:
        return refuse(f"No version v{target}.")
    await repo.move_label(ACTIVE, target, reason="rollback", actor=actor, expect=active.version)
    if await repo.label(CANARY) is not None:
        await repo.move_label(CANARY, None, reason="rollback", actor=actor)
    return active.version, target


def _rolled_back(command: InboundCommand, from_version: int, to_version: int, *,
                 channel_id: str | None) -> RolledBack:
    reason = f"Requested by <{command.user_id}>."
    return RolledBack(
        tenant_id=command.tenant_id, channel_id=channel_id, thread_id=None,
        from_version=from_version, to_version=to_version, automatic=False, reason=reason,
        actor=command.user_id,
        document=rollback_document(from_version=from_version, to_version=to_version,
                                   automatic=False, reason=reason, actor=command.user_id),
    )

