"""Platform-neutral documents for what the engine tells people. Adapters render them."""

from __future__ import annotations

from typing import Any

from engine.types import Block, Button, Decision, Document

DECISION_TITLES = {
    Decision.PROMOTED: "Agent evolved",
    Decision.CANARY: "Trying a new version on some users (canary)",
    Decision.NEEDS_APPROVAL: "A new version is waiting for an admin's approval",
    Decision.REJECTED: "An evolution was rejected",
    Decision.SKIPPED: "Nothing to change",
}


def tools_used(trace: list[dict[str, Any]]) -> int:
    """How many different tools an answer called (its footer's count)."""
    return len({str(call.get("tool")) for call in trace})


def footer(version: int, tool_count: int, duration_s: float, arm: str = "active") -> str:
    tools = f"{tool_count} tool" + ("" if tool_count == 1 else "s")
    canary = " · canary" if arm == "canary" else ""
    return f"v{version}{canary} · {tools} · {duration_s:.1f} s"


def evolution_document(
    *,
    decision: Decision,
    from_version: int,
    to_version: int | None,
    diff: str,
    rationale: str,
    replay_summary: str,
    evolution_id: int,
    details: str = "",
) -> Document:
    """`details` (where the change comes from, the replay, who gets it) replaces the bare
    replay summary under the diff when given."""
    arrow = f"v{from_version} → v{to_version}" if to_version else f"v{from_version}"
    blocks = [
        Block(kind="header", text=f"{DECISION_TITLES[decision]}: {arrow}"),
        Block(kind="text", text=rationale or "(no rationale)"),
    ]
    if diff:
        blocks.append(Block(kind="diff", text=diff))
    context = details or replay_summary
    if context:
        blocks.append(Block(kind="context", text=context))
    buttons = evolution_buttons(decision, from_version, to_version, evolution_id)
    summary = f"{DECISION_TITLES[decision]}: {arrow}. {context}".strip()
    return Document(summary=summary, blocks=blocks, buttons=buttons)


def evolution_buttons(
    decision: Decision, from_version: int, to_version: int | None, evolution_id: int
) -> list[Button]:
    """Admin actions on an announced evolution: roll back, apply or dismiss, stop a canary."""
    if decision == Decision.PROMOTED:
        return [
            Button(action="rollback", label="Roll back", value=str(from_version),
                   style="danger", admin_only=True)
        ]
    if decision == Decision.NEEDS_APPROVAL:
        return [
            Button(action="apply", label="Apply", value=str(evolution_id), style="primary",
                   admin_only=True),
            Button(action="dismiss", label="Dismiss", value=str(evolution_id), admin_only=True),
        ]
    if decision == Decision.CANARY and to_version:
        return [
            Button(action="rollback", label="Stop canary", value=str(from_version),
                   style="danger", admin_only=True)
        ]
    return []


def rollback_document(
    *, from_version: int, to_version: int, automatic: bool, reason: str, actor: str
) -> Document:
    who = "Automatic rollback" if automatic else f"Rolled back by {actor}"
    return Document(
        summary=f"{who}: v{from_version} → v{to_version}",
        blocks=[
            Block(kind="header", text=f"{who}: v{from_version} → v{to_version}"),
            Block(kind="text", text=reason),
        ],
    )


def text_document(title: str, text: str = "", *, context: str = "") -> Document:
    blocks = [Block(kind="header", text=title)]
    if text:
        blocks.append(Block(kind="text", text=text))
    if context:
        blocks.append(Block(kind="context", text=context))
    return Document(summary=title if not text else f"{title}: {text}"[:300], blocks=blocks)
