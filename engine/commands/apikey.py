"""The `apikey` command: a tenant's admins create, list and revoke REST API / dashboard keys.

A new key is shown once, in the private reply; only its hash is stored."""

from __future__ import annotations

from engine.commands.replies import refuse, reply
from engine.runtime import Runtime
from engine.storage.api_keys import KeyRole, create_key, list_keys, revoke_key
from engine.storage.repo import TenantRepo
from engine.types import CommandReply, InboundCommand, is_one_person_tenant, tenant_platform

USAGE = "`apikey create [admin]`, `apikey list` or `apikey revoke <evk_…>`"


def _shared_chat_without_private_replies(command: InboundCommand) -> bool:
    """Telegram group replies are seen by the whole group, so a key can't be shown there."""
    return tenant_platform(command.tenant_id) == "telegram" and not is_one_person_tenant(
        command.tenant_id
    )


async def apikey(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    action = command.args[0].lower() if command.args else "list"
    if action == "create":
        return await _create(command, repo)
    if action == "list":
        return await _list(repo)
    if action == "revoke" and len(command.args) == 2:
        revoked = await revoke_key(repo.session, command.args[1], tenant_id=repo.tenant_id)
        if not revoked:
            return refuse(f"No live key `{command.args[1]}` here (see `apikey list`).")
        return reply("Key revoked", f"`{command.args[1]}` no longer works.")
    return refuse(f"Usage: {USAGE}.")


async def _create(command: InboundCommand, repo: TenantRepo) -> CommandReply:
    if _shared_chat_without_private_replies(command):
        return refuse("Everyone in this group would see the key. Ask the operator for one "
                      "(`evobot apikey create`).")
    admin = len(command.args) > 1 and command.args[1].lower() == "admin"
    role = KeyRole.ADMIN if admin else KeyRole.MEMBER
    new = await create_key(repo.session, repo.tenant_id, role,
                           created_by=f"{command.user_id} (chat)")
    can = "read, execute, rate and roll back" if admin else "read, execute and rate"
    return reply(
        f"New {role.value} API key (shown once)",
        f"{new.secret}\n\nIt can {can} this agent over the REST API and sign in to the "
        f"dashboard. Revoke it with `apikey revoke {new.info.prefix}`.",
    )


async def _list(repo: TenantRepo) -> CommandReply:
    rows = await list_keys(repo.session, repo.tenant_id)
    lines = [f"{row.prefix}… {row.role}, created {row.created_at:%Y-%m-%d} by "
             f"{row.created_by or '?'}" for row in rows]
    return reply("API keys", "\n".join(lines) or f"No keys yet. {USAGE}.")
