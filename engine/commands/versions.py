"""Commands about the agent's versions: status, history, diff, prompt, rollback."""

from __future__ import annotations

from engine.commands.replies import int_arg, refuse, reply
from engine.present import rollback_document
from engine.prompt import render, unified_diff
from engine.runtime import Runtime
from engine.storage.repo import ACTIVE, CANARY, TenantRepo
from engine.tools.registry import OFFERED
from engine.types import Block, CommandReply, Document, InboundCommand, RolledBack


async def status(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    tenant = await repo.tenant()
    assert tenant is not None
    active = await repo.active_version()
    canary = await repo.label(CANARY)
    stats = await repo.rating_stats()
    succeeded, finished = await repo.execution_counts()
    tools = await repo.tools(OFFERED)
    rate = f"{succeeded / finished:.0%} of {finished}" if finished else "no runs yet"
    fields = [
        ("Active version", f"v{active.version}" + (f" (canary v{canary})" if canary else "")),
        ("Model", active.model),
        ("Success rate", rate),
        ("Rules", str(len(active.prompt.rules))),
        ("Tools", ", ".join(["python (built-in)", *(t.name for t in tools)])),
        ("Evolution", "paused" if tenant.evolution_paused else "on"),
        ("Privacy", tenant.privacy_mode),
    ]
    ratings = [
        f"v{v}: {s.average:.1f} avg · {s.count} rating{'s' if s.count != 1 else ''}"
        for v, s in sorted(stats.items())
    ]
    document = Document(
        summary=f"v{active.version} active",
        blocks=[
            Block(kind="header", text="evobot status"),
            Block(kind="fields", fields=fields),
            Block(kind="text", text="Ratings per version:\n" + ("\n".join(ratings) or "none yet")),
        ],
    )
    return CommandReply(ok=True, document=document)


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
    try:
        target = int_arg(command.args, 0)
    except ValueError as exc:
        return refuse(str(exc))
    async with rt.repo(command.tenant_id) as repo:
        active = await repo.active_version()
        target = target or active.parent_version
        if target is None:
            return refuse(f"v{active.version} has no earlier version to roll back to.")
        if target == active.version:
            return reply(f"v{target} is already active.")
        if await repo.version(target) is None:
            return refuse(f"No version v{target}.")
        await repo.move_label(ACTIVE, target, reason="rollback", actor=command.user_id,
                              expect=active.version)
        if await repo.label(CANARY) is not None:
            await repo.move_label(CANARY, None, reason="rollback", actor=command.user_id)
        tenant = await repo.tenant()
    reason = f"Requested by <{command.user_id}>."
    await rt.notifier.deliver(
        RolledBack(
            tenant_id=command.tenant_id,
            channel_id=command.channel_id or (tenant.home_channel_id if tenant else None),
            thread_id=None, from_version=active.version, to_version=target, automatic=False,
            reason=reason, actor=command.user_id,
            document=rollback_document(from_version=active.version, to_version=target,
                                       automatic=False, reason=reason, actor=command.user_id),
        )
    )
    return reply(f"Rolled back: v{active.version} → v{target}", "The rollback was announced.")
