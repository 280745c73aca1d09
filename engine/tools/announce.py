"""Platform-neutral documents for tool news: a new tool (or sub-agent), a retired tool."""

from __future__ import annotations

from typing import Any

from engine.tools.box import FUNCTION, SUBAGENT
from engine.tools.workflow import WORKFLOW
from engine.types import Block, Button, Document


def signature(name: str, parameters: dict[str, Any]) -> str:
    """`convert_units(value: number, from_unit: string, to_unit: string)`; optional ones `?`."""
    required = set(parameters.get("required", []))
    parts = []
    for arg, schema in (parameters.get("properties") or {}).items():
        kind = schema.get("type", "any") if isinstance(schema, dict) else "any"
        kind = "|".join(kind) if isinstance(kind, list) else str(kind)
        parts.append(f"{arg}{'' if arg in required else '?'}: {kind}")
    return f"{name}({', '.join(parts)})"


def _rollback_button(version: int) -> Button:
    return Button(action="rollback", label="Roll back", value=str(version), style="danger",
                  admin_only=True)


def tool_document(
    *,
    name: str,
    kind: str,
    description: str,
    signature: str,
    checks_passed: int,
    tool_version: int,
    from_version: int,
    to_version: int,
    steps: str = "",  # a workflow's steps, one per line (engine/tools/workflow.py)
) -> Document:
    title = f"{WHAT[kind]}: {name} (v{from_version} → v{to_version})"
    checked = _checked(kind, checks_passed)
    blocks = [
        Block(kind="header", text=title),
        Block(kind="text", text=description),
        Block(kind="code", text=signature),
    ]
    if steps:
        blocks.append(Block(kind="code", text=steps))
    blocks.append(Block(kind="context", text=f"{name} v{tool_version} · {checked}"))
    return Document(summary=f"{title}. {checked}", blocks=blocks,
                    buttons=[_rollback_button(from_version)])


WHAT = {FUNCTION: "New tool", SUBAGENT: "New specialist sub-agent", WORKFLOW: "New workflow"}


def _checked(kind: str, passed: int) -> str:
    if kind == SUBAGENT:
        return f"{passed} trial run passed"
    if kind == WORKFLOW:
        return f"{passed} example run{'s' if passed != 1 else ''} passed (tool steps sandboxed)"
    return f"{passed} test{'s' if passed != 1 else ''} passed in the sandbox"


def retired_document(
    *, names: list[str], reason: str, from_version: int, to_version: int
) -> Document:
    title = f"Tool{'s' if len(names) != 1 else ''} retired: {', '.join(names)} " \
            f"(v{from_version} → v{to_version})"
    return Document(
        summary=f"{title}. {reason}"[:300],
        blocks=[Block(kind="header", text=title), Block(kind="text", text=reason)],
        buttons=[_rollback_button(from_version)],
    )
