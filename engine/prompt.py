"""The structured system prompt: deterministic rendering, bounded edit ops, diffs."""

from __future__ import annotations

import difflib
from typing import Literal

from pydantic import BaseModel

from engine.types import Rule, StructuredPrompt

MAX_RULES = 25
MAX_PROMPT_TOKENS = 2000
MAX_OPS_PER_EVOLUTION = 3

DEFAULT_PERSONA = (
    "You are evobot, a helpful assistant in a team chat. Answer the user's objective "
    "directly and concisely. Use tools when they help."
)


def default_prompt() -> StructuredPrompt:
    return StructuredPrompt(persona=DEFAULT_PERSONA)


def render(prompt: StructuredPrompt) -> str:
    """The system prompt text. Same input, same text: diffs are taken on this."""
    lines = [prompt.persona.strip()]
    if prompt.rules:
        lines += ["", "Rules learned from your users' feedback:"]
        lines += [f"{i}. {rule.text.strip()}" for i, rule in enumerate(prompt.rules, 1)]
    if prompt.tool_notes.strip():
        lines += ["", "Tools:", prompt.tool_notes.strip()]
    return "\n".join(lines) + "\n"


def estimate_tokens(text: str) -> int:
    """A cheap, model-independent upper-ish estimate (~4 characters per token)."""
    return max(1, len(text) // 4 + text.count("\n"))


def unified_diff(old: StructuredPrompt, new: StructuredPrompt, old_v: int, new_v: int) -> str:
    return "".join(
        difflib.unified_diff(
            render(old).splitlines(keepends=True),
            render(new).splitlines(keepends=True),
            fromfile=f"v{old_v}",
            tofile=f"v{new_v}",
        )
    )


class EditOp(BaseModel):
    op: Literal["add_rule", "edit_rule", "remove_rule", "edit_persona"]
    rule_id: str | None = None
    text: str = ""
    confidence: float = 0.5
    provenance: list[int] = []


class EditError(ValueError):
    pass


def _next_rule_id(prompt: StructuredPrompt) -> str:
    numbers = [int(r.id[1:]) for r in prompt.rules if r.id[1:].isdigit()]
    return f"r{max(numbers, default=0) + 1}"


def apply_ops(prompt: StructuredPrompt, ops: list[EditOp], version: int) -> StructuredPrompt:
    """A new prompt with the ops applied; the input is never mutated."""
    if len(ops) > MAX_OPS_PER_EVOLUTION:
        raise EditError(f"{len(ops)} edit ops; at most {MAX_OPS_PER_EVOLUTION} per evolution")
    result = prompt.model_copy(deep=True)
    for op in ops:
        _apply_one(result, op, version)
    return result


def _apply_one(prompt: StructuredPrompt, op: EditOp, version: int) -> None:
    if op.op == "edit_persona":
        prompt.persona = op.text.strip()
        return
    if op.op == "add_rule":
        prompt.rules.append(
            Rule(
                id=_next_rule_id(prompt),
                text=op.text.strip(),
                provenance=op.provenance,
                confidence=op.confidence,
                created_in_version=version,
            )
        )
        return
    index = next((i for i, r in enumerate(prompt.rules) if r.id == op.rule_id), None)
    if index is None:
        raise EditError(f"{op.op}: no rule {op.rule_id!r}")
    if op.op == "remove_rule":
        del prompt.rules[index]
    else:
        rule = prompt.rules[index]
        prompt.rules[index] = rule.model_copy(
            update={
                "text": op.text.strip(),
                "provenance": sorted(set(rule.provenance) | set(op.provenance)),
                "confidence": max(rule.confidence, op.confidence),
                "created_in_version": version,
            }
        )


def budget_problems(prompt: StructuredPrompt) -> list[str]:
    problems = []
    if len(prompt.rules) > MAX_RULES:
        problems.append(f"{len(prompt.rules)} rules; the cap is {MAX_RULES}")
    tokens = estimate_tokens(render(prompt))
    if tokens > MAX_PROMPT_TOKENS:
        problems.append(f"rendered prompt ~{tokens} tokens; the budget is {MAX_PROMPT_TOKENS}")
    return problems
