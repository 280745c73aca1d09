"""Apply or dismiss an evolution that waits for an admin's approval (the buttons)."""

from __future__ import annotations

from engine.commands.replies import int_arg, refuse, reply
from engine.evolution.approval import apply_approved, dismiss_approval
from engine.runtime import Runtime
from engine.types import CommandReply, InboundCommand


async def apply(rt: Runtime, command: InboundCommand) -> CommandReply:
    return await _approval(rt, command, "apply")


async def dismiss(rt: Runtime, command: InboundCommand) -> CommandReply:
    return await _approval(rt, command, "dismiss")


async def _approval(rt: Runtime, command: InboundCommand, action: str) -> CommandReply:
    try:
        evolution_id = int_arg(command.args, 0)
    except ValueError as exc:
        return refuse(str(exc))
    if evolution_id is None:
        return refuse(f"Usage: {action} <evolution id>")
    handler = apply_approved if action == "apply" else dismiss_approval
    return reply(await handler(rt, command.tenant_id, evolution_id, command.user_id))
