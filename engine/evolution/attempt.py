"""The record one evolution carries from step to step, and what the steps conclude.

`gather` opens an `Attempt`; reflection, proposal, validation and routing fill it in; `record`
persists it and `announce` tells the channel. Each step reads what the earlier ones left.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from engine.evolution.reflect import Learning, RatedExample
from engine.evolution.replay import ReplayCase, ReplayReport
from engine.prompt import EditOp
from engine.types import AgentVersionView, Decision, StructuredPrompt, TenantId


class Trigger(StrEnum):
    """Why an evolution runs (stored on the evolution row; see docs/ARCHITECTURE.md)."""

    FEEDBACK = "feedback"  # enough new ratings, or a telling one
    BOOTSTRAP = "bootstrap"  # a tenant opted into sharing: try the best shared patterns
    REPEATED_FAILURE = "repeated_failure"  # 3+ bad ratings on similar objectives
    ROLLBACK_AND_FIX = "rollback_and_fix"  # the watch rolled back: learn from the failures
    NEW_OBJECTIVE_TYPE = "new_objective_type"  # a rating on an objective unlike any before
    CAPABILITY_GAP = "capability_gap"  # reflection asked for a tool (recorded beside another)
    PERIODIC = "periodic"  # the daily look at recent answers, good ones included
    IMPORT = "import"  # an admin imported an agent file (engine/portable_import.py)


@dataclass(frozen=True)
class Asker:
    """Who gave a feedback with a comment: the person whose request an edit carries out."""

    user_id: str
    from_admin: bool


@dataclass(frozen=True)
class Request:
    """The edit carries out what these people asked for in their comments."""

    user_ids: tuple[str, ...]
    from_admin: bool

    def as_json(self) -> dict[str, object]:
        return {"askers": list(self.user_ids), "from_admin": self.from_admin}


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

    triggers: list[str] = field(default_factory=list)
    reflect_errors: list[str] = field(default_factory=list)
    fallback: bool = False
    refused_learnings: list[str] = field(default_factory=list)
    structural: list[str] | None = None  # only when the structural checks failed
    replay: dict[str, object] | None = None  # only when the replay gate ran
    judge: dict[str, object] | None = None  # only when the judge was too weak to replay
    request: dict[str, object] | None = None  # only for an edit that carries out a request
    success_patterns: int | None = None  # only when success patterns were consolidated

    def as_json(self) -> dict[str, object]:
        found: dict[str, object] = {
            "triggers": self.triggers,
            "reflect_errors": self.reflect_errors,
            "fallback": self.fallback,
            "refused_learnings": self.refused_learnings,
        }
        optional = {
            "structural": self.structural, "replay": self.replay, "judge": self.judge,
            "request": self.request, "success_patterns": self.success_patterns,
        }
        found.update({k: v for k, v in optional.items() if v is not None})
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
    # the gathered feedback that carries a comment, by feedback id: who asked
    askers: dict[int, Asker] = field(default_factory=dict)
    # the feedback this evolution uses up (a periodic one also reads answers used before)
    consumes: dict[int, datetime] = field(default_factory=dict)  # feedback id → as read
    learnings: list[Learning] = field(default_factory=list)  # only the safe ones
    ops: list[EditOp] = field(default_factory=list)
    # None: the edit is inferred from ratings; else it carries out a request in a comment
    request: Request | None = None
    candidate_prompt: StructuredPrompt | None = None
    validation: Validation = field(default_factory=Validation)
    report: ReplayReport | None = None
    cost: float = 0.0
    decision: Decision = Decision.SKIPPED
    reason: str = ""
    new_version: int | None = None

    def __post_init__(self) -> None:
        self.note_trigger(self.trigger)

    def note_trigger(self, trigger: str) -> None:
        """Record one more reason this evolution runs (the first one is `trigger`)."""
        if trigger not in self.validation.triggers:
            self.validation.triggers.append(trigger)

    def conclude(self, conclusion: Conclusion) -> None:
        self.decision, self.reason = conclusion.decision, conclusion.reason

    @property
    def creates_version(self) -> bool:
        return self.decision in (Decision.PROMOTED, Decision.CANARY)

    def outcome(self) -> Outcome:
        return Outcome(self.evolution_id, self.decision, self.reason, self.new_version)
