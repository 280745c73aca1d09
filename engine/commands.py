"""Slash commands (and the buttons that map onto them): status, history, diff, rollback,
tools, pin, unpin, pause, resume, privacy, apply, dismiss, help."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from engine.evolution.loop import apply_approved, dismiss_approval
from engine.present import rollback_document, text_document
from engine.prompt import render, unified_diff
from engine.runtime import Runtime
from engine.storage.models import Tool
from engine.storage.repo import ACTIVE, CANARY, TenantRepo
from engine.tools.box import SUBAGENT
from engine.tools.registry import ACTIVE_STATUS, ARCHIVED, OFFERED, REJECTED
from engine.types import Block, CommandReply, Document, InboundCommand, PrivacyMode, RolledBack

ADMIN_ONLY = {"rollback", "pause", "resume", "privacy", "apply", "dismiss", "pin", "unpin"}

HELP = [
    ("status", "version, ratings per version, success rate, tools, evolution state"),
    ("history [n]", "the last n versions and what changed them"),
    ("diff [a] [b]", "prompt diff between versions (default: active vs its parent)"),
    ("rollback [version]", "make an earlier version active (admins)"),
    ("tools", "the agent's tools and their stats"),
    ("pin / unpin <tool>", "keep a tool from going stale or being retired (admins)"),
    ("pause / resume", "stop or restart self-evolution (admins)"),
    ("privacy isolated|federated|collective", "what this workspace shares (admins)"),
    ("domain [name]", "the business domain learnings are tagged with (setting it: admins)"),
    ("patterns", "lessons other workspaces learned in 3+ domains (shared, anonymized)"),
    ("help", "this list"),
]


def reply(title: str, text: str = "", *, ok: bool = True, private: bool = True) -> CommandReply:
    return CommandReply(ok=ok, document=text_document(title, text), private=private)


def refuse(text: str) -> CommandReply:
    return reply("Sorry", text, ok=False)


Handler = Callable[[Runtime, InboundCommand, TenantRepo], Awaitable[CommandReply]]


async def run(rt: Runtime, command: InboundCommand) -> CommandReply:
    name = command.name.lower().lstrip("/")
    handler = HANDLERS.get(name)
    if handler is None and name not in SELF_CONTAINED:
        return refuse(f"Unknown command `{command.name}`. Try `help`.")
    if name in ADMIN_ONLY and not (command.is_admin or command.user_id in rt.settings.admins):
        return refuse(f"Only workspace or chat admins can use `{name}`.")
    if name == "rollback":
        return await _rollback(rt, command)
    if name in ("apply", "dismiss"):
        return await _approval(rt, command, name)
    if name in SELF_CONTAINED:
        return await SELF_CONTAINED[name](rt, command)
    assert handler is not None
    async with rt.repo(command.tenant_id) as repo:
        return await handler(rt, command, repo)


def _int_arg(args: list[str], index: int) -> int | None:
    if len(args) <= index:
        return None
    value = args[index].lstrip("v")
    if not value.isdigit():
        raise ValueError(f"`{args[index]}` is not a version number")
    return int(value)


async def _status(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
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


async def _history(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    try:
        limit = min(_int_arg(command.args, 0) or 5, 25)
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


async def _diff(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    try:
        a, b = _int_arg(command.args, 0), _int_arg(command.args, 1)
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


async def _rollback(rt: Runtime, command: InboundCommand) -> CommandReply:
    try:
        target = _int_arg(command.args, 0)
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


async def _approval(rt: Runtime, command: InboundCommand, action: str) -> CommandReply:
    try:
        evolution_id = _int_arg(command.args, 0)
    except ValueError as exc:
        return refuse(str(exc))
    if evolution_id is None:
        return refuse(f"Usage: {action} <evolution id>")
    handler = apply_approved if action == "apply" else dismiss_approval
    return reply(await handler(rt, command.tenant_id, evolution_id, command.user_id))


def _tool_line(tool: Tool) -> str:
    kind = "sub-agent" if tool.kind == SUBAGENT else "function"
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


async def _tools(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    """Offered tools with their stats; then what was archived and what was rejected."""
    tools = await repo.tools()
    active = await repo.active_version()
    offered = [t for t in tools if t.status in OFFERED]
    lines = ["python (built-in, sandboxed)", *(_tool_line(t) for t in offered)]
    blocks = [
        Block(kind="header", text=f"Tools of v{active.version}"),
        Block(kind="text", text="\n".join(lines)),
    ]
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


async def _pin(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    return await _set_pin(command, repo, pinned=True)


async def _unpin(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
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


async def _pause(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    await repo.set_tenant_fields(evolution_paused=True)
    return reply("Evolution paused", "Feedback is still recorded; nothing changes until resume.")


async def _privacy(rt: Runtime, command: InboundCommand) -> CommandReply:
    choices = [m.value for m in PrivacyMode]
    async with rt.repo(command.tenant_id) as repo:
        tenant = await repo.tenant()
        current = tenant.privacy_mode if tenant else PrivacyMode.ISOLATED.value
        if not command.args or command.args[0].lower() not in choices:
            return reply(f"Privacy: {current}", "Set it with `privacy " + "|".join(choices) + "`.")
        mode = command.args[0].lower()
        await repo.set_tenant_fields(privacy_mode=mode)
    # after the commit, so the jobs and the knowledge store see the new mode
    notes = []
    if rt.knowledge is not None and mode != PrivacyMode.COLLECTIVE.value:
        withdrawn = await rt.knowledge.withdraw_shared(command.tenant_id, privacy_mode=mode)
        if withdrawn:
            notes.append(f"Withdrew {withdrawn} shared entries.")
    if mode != PrivacyMode.ISOLATED.value:
        await rt.queue.enqueue_evolution(command.tenant_id, trigger="bootstrap")
        notes.append("Shared patterns will be tried as candidate rules (validated first).")
    return reply(f"Privacy set to {mode}", " ".join(notes))


async def _resume(rt: Runtime, command: InboundCommand) -> CommandReply:
    async with rt.repo(command.tenant_id) as repo:
        await repo.set_tenant_fields(evolution_paused=False)
    await rt.queue.enqueue_evolution(command.tenant_id)  # after the commit
    return reply("Evolution resumed")


async def _help(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    return reply("evobot commands", "\n".join(f"{c} — {d}" for c, d in HELP))


async def _current(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    active = await repo.active_version()
    document = Document(
        summary=f"v{active.version} prompt",
        blocks=[Block(kind="header", text=f"v{active.version} system prompt"),
                Block(kind="code", text=render(active.prompt))],
    )
    return CommandReply(ok=True, document=document)


_DOMAIN = re.compile(r"^[a-z][a-z0-9_-]{1,49}$")


async def _domain(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    tenant = await repo.tenant()
    current = tenant.domain if tenant else "general"
    if not command.args:
        return reply(f"Domain: {current}", "Set it with `domain <name>`, e.g. `domain legal`.")
    if not (command.is_admin or command.user_id in rt.settings.admins):
        return refuse("Only workspace or chat admins can set the domain.")
    name = command.args[0].lower()
    if not _DOMAIN.match(name):
        return refuse("A domain is one lowercase word (letters, digits, - or _).")
    await repo.set_tenant_fields(domain=name)
    return reply(f"Domain set to {name}", "New learnings are tagged with it.")


async def _patterns(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    if rt.knowledge is None:
        return reply("Cross-domain patterns", "The knowledge store is not configured.")
    patterns = await rt.knowledge.cross_domain_patterns(min_domains=3)
    if not patterns:
        return reply("Cross-domain patterns", "None yet: a pattern shows once 3+ domains share it.")
    lines = [
        f"• {p.text} — {', '.join(p.domains)} ({p.origins} workspaces, "
        f"confidence {p.mean_confidence:.2f})"
        for p in patterns[:10]
    ]
    return reply("Cross-domain patterns", "\n".join(lines))


HANDLERS: dict[str, Handler] = {
    "status": _status,
    "history": _history,
    "diff": _diff,
    "rollback": _status,  # dispatched before the table; listed for discoverability
    "apply": _status,
    "dismiss": _status,
    "tools": _tools,
    "pin": _pin,
    "unpin": _unpin,
    "pause": _pause,
    "help": _help,
    "start": _help,
    "prompt": _current,
    "domain": _domain,
    "patterns": _patterns,
}


# commands that manage their own transaction (they enqueue work after committing)
SELF_CONTAINED: dict[str, Callable[[Runtime, InboundCommand], Awaitable[CommandReply]]] = {
    "privacy": _privacy,
    "resume": _resume,
}
