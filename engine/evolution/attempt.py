"""The record one evolution carries from step to step, and what the steps conclude.

`gather` opens an `Attempt`; reflection, proposal, validation and routing fill it in; `record`
persists it and `announce` tells the channel. Each step reads what the earlier ones left.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from engine.evolution.reflect import Learning, RatedExample
from engine.evolution.replay import ReplayCase, ReplayReport
from engine.prompt import EditOp
from engine.types import AgentVersionView, Decision, StructuredPrompt, TenantId


class Trigger(StrEnum):
    """Why an evolution runs (stored on the evolution row)."""

    FEEDBACK = "feedback"  # enough new ratings, or a telling one
    BOOTSTRAP = "bootstrap"  # a tenant opted into sharing: try the best shared patterns


@dataclass
class Outcome:
    """What an evolution run ended with (the jobs log it; commands report it)."""

    evolution_id: int | None
    decision: Decision
    reason: str
    new_version: int | None = None


@dataclass(frozen=True)
class Conclusion:
    """A step's verdict that ends the attempt: what to decide and why."""

    decision: Decision
    reason: str


@dataclass
class Validation:
    """What validation found, stored on the evolution row for the audit trail."""

    reflect_errors: list[str] = field(default_factory=list)
    fallback: bool = False
    refused_learnings: list[str] = field(default_factory=list)
    structural: list[str] | None = None  # only when the structural checks failed
    replay: dict[str, object] | None = None  # only when the replay gate ran

    def as_json(self) -> dict[str, object]:
        found: dict[str, object] = {
            "reflect_errors": self.reflect_errors,
            "fallback": self.fallback,
            "refused_learnings": self.refused_learnings,
        }
        if self.structural is not None:
            found["structural"] = self.structural
        if self.replay is not None:
            found["replay"] = self.replay
        return found


@dataclass
class Attempt:
    """One evolution of one tenant's agent, from its feedback to its decision."""

    tenant_id: TenantId
    evolution_id: int
    trigger: str
    privacy: str
    base: AgentVersionView
    examples: list[RatedExample]
    cases: list[ReplayCase]
    # a bootstrap: the learnings are other workspaces' shared patterns, not this feedback's
    from_shared_patterns: bool = False
    # where the announcement goes: the thread of the most telling feedback
    channel_id: str | None = None
    thread_id: str | None = None
    learnings: list[Learning] = field(default_factory=list)  # only the safe ones
    ops: list[EditOp] = field(default_factory=list)
    candidate_prompt: StructuredPrompt | None = None
    validation: Validation = field(default_factory=Validation)
    report: ReplayReport | None = None
    cost: float = 0.0
    decision: Decision = Decision.SKIPPED
    reason: str = ""
    new_version: int | None = None

    def conclude(self, conclusion: Conclusion) -> None:
        self.decision, self.reason = conclusion.decision, conclusion.reason

    @property
    def creates_version(self) -> bool:
        return self.decision in (Decision.PROMOTED, Decision.CANARY)

    def outcome(self) -> Outcome:
        return Outcome(self.evolution_id, self.decision, self.reason, self.new_version)
