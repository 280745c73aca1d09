"""The degradation watch: a version an evolution promoted that its users rate clearly worse
than its parent is rolled back automatically, the rollback announced, and a fix queued."""

from __future__ import annotations

from dataclasses import dataclass

from engine.evolution.rollback import announce_and_fix, failures, roll_back, version_ratings
from engine.evolution.stats import prob_worse
from engine.runtime import Runtime
from engine.settings import EngineSettings
from engine.storage.repo import RatingStats, TenantRepo
from engine.types import TenantId


@dataclass(frozen=True)
class ParentComparison:
    """The active version's ratings since its promotion against its parent's."""

    version: int
    parent: int
    mine: RatingStats
    parent_positives: int
    parent_negatives: int

    @property
    def p_worse(self) -> float:
        return prob_worse(
            self.mine.positives, self.mine.negatives,
            self.parent_positives, self.parent_negatives,
        )

    def reason(self) -> str:
        p_pos, p_all = self.parent_positives, self.parent_positives + self.parent_negatives
        return (
            f"v{self.version} rated {self.mine.average:.1f} on average over {self.mine.count} "
            f"ratings ({self.mine.positives} positive) vs v{self.parent}'s {p_pos} positive of "
            f"{p_all}: P(worse) = {self.p_worse:.2f}"
        )


async def watch_for_degradation(rt: Runtime, tenant_id: TenantId) -> str | None:
    """The rollback's reason, or None when the active version holds up (or can't be judged)."""
    async with rt.repo(tenant_id) as repo:
        found = await compare_with_parent(repo, rt.settings)
        if found is None or found.p_worse < rt.settings.watch_rollback_probability:
            return None
        reason = found.reason()
        since = await repo.last_promotion_at(found.version)
        failing = failures(await version_ratings(repo, found.version, since=since))
        channel_id = await roll_back(repo, found.version, found.parent, reason, failing)
    await announce_and_fix(rt, tenant_id, channel_id, found.version, found.parent, reason)
    return reason


async def compare_with_parent(
    repo: TenantRepo, settings: EngineSettings
) -> ParentComparison | None:
    """Only a version an evolution made, with enough ratings since its promotion."""
    current = await repo.active_version()
    parent = current.parent_version
    if parent is None or not current.created_by.startswith("evolution"):
        return None
    promoted_at = await repo.last_promotion_at(current.version)
    mine = (await repo.rating_stats(since=promoted_at)).get(current.version)
    if mine is None or mine.count < settings.watch_min_ratings:
        return None
    before = (await repo.rating_stats()).get(parent)
    return ParentComparison(
        version=current.version,
        parent=parent,
        mine=mine,
        parent_positives=before.positives if before else 0,
        parent_negatives=before.negatives if before else 0,
    )
