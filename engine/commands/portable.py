"""Commands that move an agent between workspaces: `export` posts it as a file, `import`
makes a new version from a file sent with the command (engine/portable*.py)."""

from __future__ import annotations

from engine.commands.replies import refuse, reply
from engine.portable import ImportRefused
from engine.portable_export import FeedbackStaysHome, export_agent
from engine.portable_import import import_agent
from engine.runtime import Runtime
from engine.types import CommandReply, FileShared, InboundCommand

WITH_FEEDBACK = "with-feedback"


async def export(rt: Runtime, command: InboundCommand) -> CommandReply:
    unknown = [a for a in command.args if a.lower() != WITH_FEEDBACK]
    if unknown:
        return refuse(f"Usage: export [{WITH_FEEDBACK}] (not `{' '.join(unknown)}`)")
    with_feedback = bool(command.args)
    try:
        exported = await export_agent(rt, command.tenant_id, with_feedback=with_feedback)
    except FeedbackStaysHome as exc:
        return refuse(str(exc))
    async with rt.repo(command.tenant_id) as repo:
        tenant = await repo.tenant()
    channel = command.channel_id or (tenant.home_channel_id if tenant else None)
    await rt.notifier.deliver(FileShared(
        tenant_id=command.tenant_id, channel_id=channel, thread_id=None,
        file=exported.file(), caption=exported.caption(),
    ))
    return reply(f"Exported v{exported.agent.active_version}",
                 f"Posted {exported.file().name}. {exported.caption()}")


async def import_file(rt: Runtime, command: InboundCommand) -> CommandReply:
    files = [a for a in command.attachments if a.problem is None and a.data]
    if len(files) != 1:
        problems = [f"{a.name}: {a.problem}" for a in command.attachments if a.problem]
        return refuse("Send one agent file (made by `export`) with the `import` command"
                      + (f" ({'; '.join(problems)})" if problems else "") + ".")
    try:
        imported = await import_agent(rt, command.tenant_id, files[0].data,
                                      actor=command.user_id, channel_id=command.channel_id)
    except ImportRefused as exc:
        return refuse(f"Nothing was imported: {exc}")
    text = f"v{imported.from_version} → v{imported.to_version}. {imported.details()}"
    return reply("Agent imported", text)
