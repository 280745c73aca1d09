"""What the knowledge store hands back: plain, immutable records."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnowledgeHit:
    """A learning or tool recipe: the tenant's own, or an anonymized shared one."""

    id: str
    text: str
    domain: str
    type: str
    confidence: float
    impact: float
    timestamp: float
    shared: bool  # True: from the shared pool (anonymized, origin unknown to the reader)
    distance: float | None = None  # cosine distance to the query; None when not a query
    tool_name: str = ""  # tool recipes only

    @property
    def score(self) -> float:
        """How much a pattern is worth reusing: confidence times impact."""
        return self.confidence * self.impact


@dataclass(frozen=True)
class NewLearning:
    """A learning to store (see `KnowledgeStore.add_learning`)."""

    text: str
    domain: str = "general"
    type: str = "prompt_rule"
    confidence: float = 0.5
    impact: float = 0.5


@dataclass(frozen=True)
class RatedObjective:
    """An objective to remember with its rating (see `KnowledgeStore.record_objective`)."""

    objective: str
    rating: int  # 1-5
    lesson: str = ""
    domain: str = "general"


@dataclass(frozen=True)
class PastObjective:
    """An objective this tenant handled before, with how it went."""

    id: str
    text: str
    domain: str
    rating: int  # 1-5
    outcome: str  # "good" (4-5) | "mixed" (3) | "bad" (1-2)
    lesson: str
    timestamp: float
    distance: float | None = None


@dataclass(frozen=True)
class ObjectiveContext:
    """What the tenant's history says about a new objective, from one embedding."""

    nearest_distance: float | None  # to the closest objective recorded before; None: none yet
    bad: tuple[PastObjective, ...]  # similar objectives that were rated badly
    # the tenant's own learnings nearest to a novel objective (looked up only for one)
    own_learnings: tuple[KnowledgeHit, ...] = ()

    def novel(self, beyond: float) -> bool:
        """Unlike anything recorded before: nothing yet, or the nearest farther than `beyond`."""
        return self.nearest_distance is None or self.nearest_distance > beyond


@dataclass(frozen=True)
class CrossDomainPattern:
    """Similar shared learnings that showed up in several domains."""

    text: str  # the highest-scoring member, as representative
    domains: tuple[str, ...]
    members: int
    origins: int  # distinct contributing tenants (counted by hashed origin)
    mean_confidence: float
    mean_impact: float
