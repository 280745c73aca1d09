"""`evolutions [n]`: the last evolutions, rejected ones included — why each ran, what it
decided, what the replay showed, and why."""

from __future__ import annotations

from typing import Any

from engine.commands.replies import int_arg, refuse
from engine.runtime import Runtime
from engine.storage.models import Evolution
from engine.storage.repo import TenantRepo
from engine.types import Block, CommandReply, Document, InboundCommand

DEFAULT_COUNT, MAX_COUNT = 5, 25


async def recent(rt: Runtime, command: InboundCommand, repo: TenantRepo) -> CommandReply:
    try:
        count = min(int_arg(command.args, 0) or DEFAULT_COUNT, MAX_COUNT)
    except ValueError:
        return refuse(f"`{command.args[0]}` is not a number of evolutions.")
    lines = [evolution_line(row) for row in await repo.evolutions(count)]
    document = Document(
        summary=f"{len(lines)} evolutions",
        blocks=[
            Block(kind="header", text=f"The last {len(lines)} evolutions"),
            Block(kind="text", text="\n".join(lines) or "No evolutions yet."),
        ],
    )
    return CommandReply(ok=True, document=document)


def evolution_line(row: Evolution) -> str:
    """`#12 · feedback · promoted · v3 → v4 · replayed 2: 1 better, 1 same — <reason>`."""
    versions = f"v{row.base_version}"
    if row.candidate_version is not None:
        versions += f" → v{row.candidate_version}"
    parts = [f"#{row.id}", triggers(row), row.decision or row.status, versions]
    replay = replay_summary(row.validation or {})
    if replay:
        parts.append(replay)
    reason = (row.reason or "").strip()
    return " · ".join(parts) + (f" — {reason[:160]}" if reason else "")


def triggers(row: Evolution) -> str:
    """The trigger, then any other reason it ran (a tool need: capability_gap)."""
    recorded = (row.validation or {}).get("triggers") or []
    names = [row.trigger, *(t for t in recorded if t != row.trigger)]
    return " + ".join(names)


def replay_summary(validation: dict[str, Any]) -> str:
    judge = validation.get("judge")
    if judge and judge.get("weak"):
        return f"not replayed (judge {judge.get('model')} too weak)"
    replay = validation.get("replay")
    return str(replay.get("summary", "")) if replay else ""
