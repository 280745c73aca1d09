"""Runs a command from the registry: lookup, admin check, then the handler in (or outside)
the tenant's transaction."""

from __future__ import annotations

from engine.commands.registry import find
from engine.commands.replies import refuse
from engine.runtime import Runtime
from engine.types import CommandReply, InboundCommand


async def run(rt: Runtime, command: InboundCommand) -> CommandReply:
    spec = find(command.name)
    if spec is None:
        return refuse(f"Unknown command `{command.name}`. Try `help`.")
    is_admin = command.is_admin or command.user_id in rt.settings.admins
    if spec.needs_admin(command.args) and not is_admin:
        return refuse(f"Only workspace or chat admins can use `{spec.usage}`.")
    if spec.standalone is not None:
        return await spec.standalone(rt, command)
    assert spec.in_transaction is not None
    async with rt.repo(command.tenant_id) as repo:
        return await spec.in_transaction(rt, command, repo)
