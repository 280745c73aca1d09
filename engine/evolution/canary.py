"""Decide a canary once it has enough ratings: promote it, or drop it when it is probably
worse than the active version."""

from __future__ import annotations

from dataclasses import dataclass

from engine.evolution.announce import home_channel
from engine.evolution.stats import prob_worse
from engine.present import text_document
from engine.runtime import Runtime
from engine.settings import EngineSettings
from engine.storage.repo import ACTIVE, CANARY, RatingStats, TenantRepo
from engine.types import Notice, TenantId


@dataclass(frozen=True)
class CanaryComparison:
    """The canary's ratings since it started against the active version's."""

    canary_version: int
    active_version: int
    canary: RatingStats
    active_positives: int
    active_negatives: int

    @property
    def p_worse(self) -> float:
        return prob_worse(
            self.canary.positives, self.canary.negatives,
            self.active_positives, self.active_negatives,
        )

    def detail(self) -> str:
        a_pos, a_all = self.active_positives, self.active_positives + self.active_negatives
        return (
            f"canary v{self.canary_version}: {self.canary.average:.1f} avg over "
            f"{self.canary.count} ratings; v{self.active_version}: {a_pos} positive of {a_all}; "
            f"P(canary worse) = {self.p_worse:.2f}"
        )


async def review_canary(rt: Runtime, tenant_id: TenantId) -> str | None:
    """The decision's title, or None when there is no canary or it needs more ratings."""
    async with rt.repo(tenant_id) as repo:
        comparison = await compare_canary(repo, rt.settings)
        if comparison is None:
            return None
        channel_id = await home_channel(repo)
        if comparison.p_worse >= rt.settings.canary_drop_probability:
            title = await _drop_canary(repo, comparison)
        else:
            title = await _promote_canary(repo, comparison)
    await rt.notifier.deliver(
        Notice(
            tenant_id=tenant_id,
            channel_id=channel_id,
            thread_id=None,
            document=text_document(title, comparison.detail()),
        )
    )
    return title


async def compare_canary(repo: TenantRepo, settings: EngineSettings) -> CanaryComparison | None:
    label = await repo.label_row(CANARY)
    if label is None:
        return None
    active_version = await repo.label(ACTIVE)
    assert active_version is not None
    stats = await repo.rating_stats(since=label.moved_at)
    canary = stats.get(label.version)
    if canary is None or canary.count < settings.canary_min_ratings:
        return None
    active = stats.get(active_version)
    return CanaryComparison(
        canary_version=label.version,
        active_version=active_version,
        canary=canary,
        active_positives=active.positives if active else 0,
        active_negatives=active.negatives if active else 0,
    )


async def _drop_canary(repo: TenantRepo, comparison: CanaryComparison) -> str:
    await repo.move_label(
        CANARY, None, reason="canary_dropped", actor="review",
        note=f"P(worse)={comparison.p_worse:.2f}",
    )
    return f"Canary v{comparison.canary_version} dropped; v{comparison.active_version} stays active"


async def _promote_canary(repo: TenantRepo, comparison: CanaryComparison) -> str:
    canary_v, active_v = comparison.canary_version, comparison.active_version
    await repo.move_label(
        ACTIVE, canary_v, reason="promote", actor="review",
        note=f"canary P(worse)={comparison.p_worse:.2f}", expect=active_v,
    )
    await repo.move_label(CANARY, None, reason="canary_promoted", actor="review")
    return f"Canary promoted: v{active_v} → v{canary_v}"
