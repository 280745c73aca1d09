"""Step 2 — propose: learnings → at most 3 bounded edit ops on the structured prompt.

Deterministic on purpose: the model reflects, the engine decides how the prompt changes.
A learning close to an existing rule edits it instead of adding a near-duplicate; at the
rule cap the least confident rule is retired to make room.
"""

from __future__ import annotations

import difflib

from engine.evolution.reflect import Learning
from engine.prompt import MAX_OPS_PER_EVOLUTION, MAX_RULES, EditOp
from engine.types import StructuredPrompt

SIMILAR = 0.6


def _similar_rule(prompt: StructuredPrompt, text: str) -> str | None:
    best, best_ratio = None, SIMILAR
    for rule in prompt.rules:
        ratio = difflib.SequenceMatcher(None, rule.text.lower(), text.lower()).ratio()
        if ratio >= best_ratio:
            best, best_ratio = rule.id, ratio
    return best


def propose_ops(prompt: StructuredPrompt, learnings: list[Learning]) -> list[EditOp]:
    ops: list[EditOp] = []
    rule_ids = {r.id for r in prompt.rules}
    rule_count = len(prompt.rules)
    ranked = sorted(
        (x for x in learnings if x.type == "prompt_rule"),
        key=lambda x: x.confidence * x.impact,
        reverse=True,
    )
    for learning in ranked:
        if len(ops) >= MAX_OPS_PER_EVOLUTION:
            break
        text = learning.suggested_change.strip()
        target = learning.target_rule if learning.target_rule in rule_ids else None
        touched = {op.rule_id for op in ops}
        if learning.action == "remove" and target and target not in touched:
            ops.append(
                EditOp(
                    op="remove_rule",
                    rule_id=target,
                    confidence=learning.confidence,
                    provenance=learning.feedback_ids,
                )
            )
            rule_count -= 1
            continue
        if not text:
            continue
        target = target or _similar_rule(prompt, text)
        if target and target not in touched:
            ops.append(
                EditOp(
                    op="edit_rule",
                    rule_id=target,
                    text=text,
                    confidence=learning.confidence,
                    provenance=learning.feedback_ids,
                )
            )
            continue
        if any(op.op == "add_rule" and op.text.lower() == text.lower() for op in ops):
            continue
        if rule_count >= MAX_RULES:
            weakest = min(
                (r for r in prompt.rules if r.id not in touched),
                key=lambda r: r.confidence,
                default=None,
            )
            if weakest is None or len(ops) + 2 > MAX_OPS_PER_EVOLUTION:
                break
            ops.append(EditOp(op="remove_rule", rule_id=weakest.id, confidence=learning.confidence))
            rule_count -= 1
        ops.append(
            EditOp(
                op="add_rule",
                text=text,
                confidence=learning.confidence,
                provenance=learning.feedback_ids,
            )
        )
        rule_count += 1
    return ops


def ops_confidence(ops: list[EditOp]) -> float:
    """An evolution is only as confident as its least confident edit."""
    return min((op.confidence for op in ops), default=0.0)
