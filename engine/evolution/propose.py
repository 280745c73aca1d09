"""Step 2 — propose: learnings → at most 3 bounded edit ops on the structured prompt, and the
candidate prompt they make.

Deterministic on purpose: the model reflects, the engine decides how the prompt changes.
A learning close to an existing rule edits it instead of adding a near-duplicate; at the
rule cap the least confident rule is retired to make room.
"""

from __future__ import annotations

import difflib
from typing import Literal

from engine.evolution.attempt import Asker, Attempt, Conclusion, Request
from engine.evolution.reflect import Learning
from engine.prompt import MAX_OPS_PER_EVOLUTION, MAX_RULES, EditError, EditOp, apply_ops
from engine.types import Decision, StructuredPrompt

SIMILAR = 0.6
RuleOp = Literal["add_rule", "edit_rule", "remove_rule"]


def propose_candidate(attempt: Attempt) -> Conclusion | None:
    """Edit ops from the safe learnings and the candidate prompt they make; a Conclusion when
    there is nothing (valid) to try."""
    plan = plan_edits(attempt.base.prompt, attempt.learnings)
    attempt.ops = plan.ops
    attempt.request = request_behind(plan.sources, attempt.askers)
    if attempt.request is not None:
        attempt.validation.request = attempt.request.as_json()
    refused = attempt.validation.refused_learnings
    if not attempt.ops and refused:
        return Conclusion(Decision.REJECTED, "refused unsafe suggestions: " + "; ".join(refused))
    if not attempt.ops:
        return Conclusion(Decision.SKIPPED, "no prompt change proposed")
    try:
        attempt.candidate_prompt = apply_ops(
            attempt.base.prompt, attempt.ops, attempt.base.version + 1
        )
    except EditError as exc:
        return Conclusion(Decision.REJECTED, f"invalid edit: {exc}")
    return None


def propose_ops(prompt: StructuredPrompt, learnings: list[Learning]) -> list[EditOp]:
    return plan_edits(prompt, learnings).ops


def plan_edits(prompt: StructuredPrompt, learnings: list[Learning]) -> EditPlan:
    """The most confident, most impactful prompt rules first, until the ops budget is spent."""
    plan = EditPlan(prompt)
    for learning in ranked_rule_learnings(learnings):
        if plan.full or not plan.take(learning):
            break
    return plan


def request_behind(sources: list[Learning], askers: dict[int, Asker]) -> Request | None:
    """The request the edit carries out: every learning behind it cites a feedback with a
    comment. None when any of them is inferred from ratings alone (or there is no edit)."""
    cited = [[askers[i] for i in x.feedback_ids if i in askers] for x in sources]
    if not cited or not all(cited):
        return None
    people = [asker for found in cited for asker in found]
    return Request(
        user_ids=tuple(dict.fromkeys(a.user_id for a in people)),
        from_admin=any(a.from_admin for a in people),
    )


def ranked_rule_learnings(learnings: list[Learning]) -> list[Learning]:
    return sorted(
        (x for x in learnings if x.type == "prompt_rule"),
        key=lambda x: x.confidence * x.impact,
        reverse=True,
    )


def ops_confidence(ops: list[EditOp]) -> float:
    """An evolution is only as confident as its least confident edit."""
    return min((op.confidence for op in ops), default=0.0)


def _similar_rule(prompt: StructuredPrompt, text: str) -> str | None:
    best, best_ratio = None, SIMILAR
    for rule in prompt.rules:
        ratio = difflib.SequenceMatcher(None, rule.text.lower(), text.lower()).ratio()
        if ratio >= best_ratio:
            best, best_ratio = rule.id, ratio
    return best


class EditPlan:
    """The ops proposed so far and how many rules the prompt will have after them."""

    def __init__(self, prompt: StructuredPrompt) -> None:
        self.prompt = prompt
        self.ops: list[EditOp] = []
        self.sources: list[Learning] = []  # the learnings the ops carry out
        self.rule_ids = {r.id for r in prompt.rules}
        self.rule_count = len(prompt.rules)

    @property
    def full(self) -> bool:
        return len(self.ops) >= MAX_OPS_PER_EVOLUTION

    def take(self, learning: Learning) -> bool:
        """Turn one learning into ops (or none); False when no further learning can fit."""
        text = learning.suggested_change.strip()
        target = learning.target_rule if learning.target_rule in self.rule_ids else None
        if learning.action == "remove" and target and self._untouched(target):
            self._append("remove_rule", learning, rule_id=target)
            self.rule_count -= 1
            return True
        if not text:
            return True
        target = target or _similar_rule(self.prompt, text)
        if target and self._untouched(target):
            self._append("edit_rule", learning, rule_id=target, text=text)
            return True
        if self._already_adding(text):
            return True
        return self._add(learning, text)

    def _add(self, learning: Learning, text: str) -> bool:
        if self.rule_count >= MAX_RULES and not self._retire_weakest_rule(learning):
            return False
        self._append("add_rule", learning, text=text)
        self.rule_count += 1
        return True

    def _retire_weakest_rule(self, learning: Learning) -> bool:
        """At the rule cap: remove the least confident untouched rule to make room."""
        touched = self._touched()
        weakest = min(
            (r for r in self.prompt.rules if r.id not in touched),
            key=lambda r: r.confidence,
            default=None,
        )
        if weakest is None or len(self.ops) + 2 > MAX_OPS_PER_EVOLUTION:
            return False
        # the retired rule's removal has no provenance: no feedback asked for it
        self.ops.append(
            EditOp(op="remove_rule", rule_id=weakest.id, confidence=learning.confidence)
        )
        self.rule_count -= 1
        return True

    def _append(
        self, op: RuleOp, learning: Learning, *, rule_id: str | None = None, text: str = ""
    ) -> None:
        self.ops.append(
            EditOp(op=op, rule_id=rule_id, text=text, confidence=learning.confidence,
                   provenance=learning.feedback_ids)
        )
        if learning not in self.sources:
            self.sources.append(learning)

    def _touched(self) -> set[str | None]:
        return {op.rule_id for op in self.ops}

    def _untouched(self, rule_id: str) -> bool:
        return rule_id not in self._touched()

    def _already_adding(self, text: str) -> bool:
        return any(op.op == "add_rule" and op.text.lower() == text.lower() for op in self.ops)
