"""The rolling-window watch: the active version's recent success (share of ratings 4-5 over
its last N ratings) against the best recently active earlier version's. Clearly worse (the
Beta-binomial P(worse) over the threshold): roll back to that version and queue the fix.

It catches what the parent comparison can't: a version no evolution made (a tool change, a
human edit), or one whose parent was itself no better than an older version.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.evolution.rollback import (
    Rated,
    announce_and_fix,
    failures,
    roll_back,
    version_ratings,
)
from engine.evolution.stats import prob_worse
from engine.runtime import Runtime
from engine.settings import EngineSettings
from engine.storage.repo import ACTIVE, TenantRepo
from engine.types import TenantId

GOOD_AT_LEAST = 4


def successes(ratings: list[Rated]) -> int:
    return sum(1 for _, rating in ratings if rating >= GOOD_AT_LEAST)


def success_estimate(ratings: list[Rated]) -> float:
    """The posterior mean of the success share (Beta(1, 1) prior)."""
    return (successes(ratings) + 1) / (len(ratings) + 2)


@dataclass(frozen=True)
class WindowComparison:
    version: int
    best: int
    mine: list[Rated]
    theirs: list[Rated]

    @property
    def p_worse(self) -> float:
        mine, theirs = successes(self.mine), successes(self.theirs)
        return prob_worse(mine, len(self.mine) - mine, theirs, len(self.theirs) - theirs)

    def reason(self) -> str:
        return (
            f"v{self.version}: {successes(self.mine)} of its last {len(self.mine)} ratings "
            f"good vs v{self.best}'s {successes(self.theirs)} of {len(self.theirs)}: "
            f"P(worse) = {self.p_worse:.2f}"
        )


async def watch_rolling_window(rt: Runtime, tenant_id: TenantId) -> str | None:
    """The rollback's reason, or None when the active version holds up (or can't be judged)."""
    settings = rt.settings
    async with rt.repo(tenant_id) as repo:
        found = await compare_with_best_recent(repo, settings)
        if found is None or found.p_worse < settings.window_rollback_probability:
            return None
        reason = "rolling window: " + found.reason()
        channel_id = await roll_back(repo, found.version, found.best, reason, failures(found.mine))
    await announce_and_fix(rt, tenant_id, channel_id, found.version, found.best, reason)
    return reason


async def compare_with_best_recent(
    repo: TenantRepo, settings: EngineSettings
) -> WindowComparison | None:
    active = await repo.label(ACTIVE)
    assert active is not None, "every agent has an active label"
    mine = await version_ratings(repo, active, limit=settings.window_ratings)
    if len(mine) < settings.window_min_ratings:
        return None
    best: tuple[int, list[Rated]] | None = None
    for version in await recently_active(repo, active, settings.window_versions):
        theirs = await version_ratings(repo, version, limit=settings.window_ratings)
        if len(theirs) < settings.window_min_ratings:
            continue
        if best is None or success_estimate(theirs) > success_estimate(best[1]):
            best = (version, theirs)
    if best is None:
        return None
    return WindowComparison(active, best[0], mine, best[1])


async def recently_active(repo: TenantRepo, active: int, count: int) -> list[int]:
    """Earlier versions that were active lately, newest move first (never a later version
    someone rolled back from)."""
    moves = await repo.label_moves(limit=50)
    versions = [
        m.to_version for m in moves
        if m.label == ACTIVE and m.to_version is not None and m.to_version < active
    ]
    return list(dict.fromkeys(versions))[:count]
