"""Commands about how the tenant's agent evolves: pause, resume, privacy, domain, patterns."""

from __future__ import annotations

import re

from engine.commands.replies import refuse, reply
from engine.runtime import Runtime
from engine.storage.repo import TenantRepo
from engine.types import CommandReply, InboundCommand, PrivacyMode


async def pause(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    await repo.set_tenant_fields(evolution_paused=True)
    return reply("Evolution paused", "Feedback is still recorded; nothing changes until resume.")


async def resume(rt: Runtime, command: InboundCommand) -> CommandReply:
    async with rt.repo(command.tenant_id) as repo:
        await repo.set_tenant_fields(evolution_paused=False)
    await rt.queue.enqueue_evolution(command.tenant_id)  # after the commit
    return reply("Evolution resumed")


async def privacy(rt: Runtime, command: InboundCommand) -> CommandReply:
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
    if mode != PrivacyMode.COLLECTIVE.value:
        withdrawn = await rt.knowledge.withdraw_shared(command.tenant_id, privacy_mode=mode)
        if withdrawn:
            notes.append(f"Withdrew {withdrawn} shared entries.")
    if mode != PrivacyMode.ISOLATED.value:
        await rt.queue.enqueue_evolution(command.tenant_id, trigger="bootstrap")
        notes.append("Shared patterns will be tried as candidate rules (validated first).")
    return reply(f"Privacy set to {mode}", " ".join(notes))


_DOMAIN = re.compile(r"^[a-z][a-z0-9_-]{1,49}$")


async def domain(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    tenant = await repo.tenant()
    current = tenant.domain if tenant else "general"
    if not command.args:
        return reply(f"Domain: {current}", "Set it with `domain <name>`, e.g. `domain legal`.")
    name = command.args[0].lower()
    if not _DOMAIN.match(name):
        return refuse("A domain is one lowercase word (letters, digits, - or _).")
    await repo.set_tenant_fields(domain=name)
    return reply(f"Domain set to {name}", "New learnings are tagged with it.")


async def patterns(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    patterns = await rt.knowledge.cross_domain_patterns(min_domains=3)
    if not patterns:
        return reply("Cross-domain patterns", "None yet: a pattern shows once 3+ domains share it.")
    lines = [
        f"• {p.text} — {', '.join(p.domains)} ({p.origins} workspaces, "
        f"confidence {p.mean_confidence:.2f})"
        for p in patterns[:10]
    ]
    return reply("Cross-domain patterns", "\n".join(lines))
