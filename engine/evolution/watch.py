"""The degradation watch: a version an evolution promoted that its users rate clearly worse
than its parent is rolled back automatically, and the rollback announced."""

from __future__ import annotations

from dataclasses import dataclass

from engine.evolution.announce import home_channel
from engine.evolution.stats import prob_worse
from engine.present import rollback_document
from engine.runtime import Runtime
from engine.settings import EngineSettings
from engine.storage.repo import ACTIVE, RatingStats, TenantRepo
from engine.types import RolledBack, TenantId

ACTOR = "watch"


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
        await repo.move_label(
            ACTIVE, found.parent, reason="auto_rollback", actor=ACTOR, note=reason,
            expect=found.version,
        )
        channel_id = await home_channel(repo)
    await rt.notifier.deliver(
        RolledBack(
            tenant_id=tenant_id, channel_id=channel_id, thread_id=None,
            from_version=found.version, to_version=found.parent, automatic=True, reason=reason,
            actor=ACTOR,
            document=rollback_document(
                from_version=found.version, to_version=found.parent, automatic=True,
                reason=reason, actor=ACTOR,
            ),
        )
    )
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
