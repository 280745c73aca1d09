"""The command registry: every command is declared here once.

Everything else is derived from `COMMANDS`: the engine's dispatch (`dispatch.run`) and `help`,
Slack's `/evobot help`, Telegram's command menu, the console's `/help`, and which commands the
adapters must ask the platform about admin rights for. See docs/ARCHITECTURE.md, "Add a
command".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from engine.commands import approval, evolutions, portable, settings, tools, versions
from engine.commands.apikey import apikey
from engine.commands.replies import reply
from engine.runtime import Runtime
from engine.storage.repo import TenantRepo
from engine.types import CommandReply, InboundCommand

InTransaction = Callable[[Runtime, InboundCommand, TenantRepo], Awaitable[CommandReply]]
Standalone = Callable[[Runtime, InboundCommand], Awaitable[CommandReply]]


class Access(StrEnum):
    ANYONE = "anyone"
    ADMIN = "admin"  # workspace/chat admins or EVOBOT_ADMINS
    ADMIN_TO_CHANGE = "admin_to_change"  # anyone may read it; changing it (any argument): admins


@dataclass(frozen=True)
class Command:
    name: str
    args: str  # argument help, e.g. "[a] [b]"
    summary: str
    access: Access
    # True: runs inside one tenant transaction (`in_transaction` gets the repo). False: the
    # handler opens its own transactions, because it enqueues or announces after committing.
    transactional: bool
    in_transaction: InTransaction | None = None
    standalone: Standalone | None = None
    listed: bool = True  # False: reached by a button or an alias, not shown in menus

    def needs_admin(self, args: list[str]) -> bool:
        """Whether this call needs admin rights (so adapters know when to ask the platform)."""
        return self.access is Access.ADMIN or (self.access is Access.ADMIN_TO_CHANGE and bool(args))

    @property
    def usage(self) -> str:
        return f"{self.name} {self.args}".strip()


def _tx(name: str, args: str, summary: str, handler: InTransaction,
        access: Access = Access.ANYONE, *, listed: bool = True) -> Command:
    return Command(name, args, summary, access, True, in_transaction=handler, listed=listed)


def _own(name: str, args: str, summary: str, handler: Standalone,
         access: Access = Access.ANYONE, *, listed: bool = True) -> Command:
    return Command(name, args, summary, access, False, standalone=handler, listed=listed)


async def help_text(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    lines = [f"{c.usage} — {c.summary}" for c in listed()]
    return reply("evobot commands", "\n".join(lines))


ADMIN, TO_CHANGE = Access.ADMIN, Access.ADMIN_TO_CHANGE

COMMANDS: tuple[Command, ...] = (
    _tx("status", "", "version, ratings per version, success rate, tools, evolution state",
        versions.status),
    _tx("history", "[n]", "the last n versions and what changed them", versions.history),
    _tx("evolutions", "[n]", "the last n evolutions: trigger, decision, replay, why",
        evolutions.recent),
    _tx("diff", "[a] [b]", "prompt diff between versions (default: active vs its parent)",
        versions.diff),
    _own("rollback", "[version]", "make an earlier version active (admins)", versions.rollback,
         ADMIN),
    _tx("prompt", "", "the active version's system prompt", versions.prompt),
    _tx("tools", "", "the agent's tools and their stats", tools.list_tools),
    _tx("pin", "<tool>", "keep a tool from going stale or being retired (admins)", tools.pin,
        ADMIN),
    _tx("unpin", "<tool>", "let a pinned tool follow the usual lifecycle again (admins)",
        tools.unpin, ADMIN),
    _tx("pause", "", "stop self-evolution (admins)", settings.pause, ADMIN),
    _own("resume", "", "restart self-evolution (admins)", settings.resume, ADMIN),
    _own("privacy", "isolated|federated|collective", "what this workspace shares (admins)",
         settings.privacy, ADMIN),
    _tx("domain", "[name]", "the business domain learnings are tagged with (setting it: admins)",
        settings.domain, TO_CHANGE),
    _tx("patterns", "", "lessons other workspaces learned in 3+ domains (shared, anonymized)",
        settings.patterns),
    _tx("apikey", "create [admin]|list|revoke <key>", "REST API / dashboard keys (admins)",
        apikey, ADMIN),
    _own("export", "[with-feedback]", "post this agent as a file to import elsewhere (admins)",
         portable.export, ADMIN),
    _own("import", "<agent file>", "a new version from an exported agent file (admins)",
         portable.import_file, ADMIN),
    _own("apply", "<evolution id>", "apply a proposal waiting for approval (admins)",
         approval.apply, ADMIN, listed=False),
    _own("dismiss", "<evolution id>", "dismiss a proposal waiting for approval (admins)",
         approval.dismiss, ADMIN, listed=False),
    _tx("help", "", "this list", help_text),
    _tx("start", "", "what I can do (Telegram's first message)", help_text,
        listed=False),
)

BY_NAME: dict[str, Command] = {c.name: c for c in COMMANDS}


def find(name: str) -> Command | None:
    """The command a user typed (`/Status`, `status`), or None."""
    return BY_NAME.get(name.lower().lstrip("/"))


def listed() -> list[Command]:
    """The commands shown in help and in every platform's menu, in order."""
    return [c for c in COMMANDS if c.listed]


def needs_admin(command: InboundCommand) -> bool:
    """Whether adapters must ask the platform if the caller is an admin before running it."""
    spec = find(command.name)
    return spec is not None and spec.needs_admin(command.args)
