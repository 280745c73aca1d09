"""Open an attempt: the tenant's unused feedback, the version it improves, where to announce,
and the replay cases that will judge the candidate."""

from __future__ import annotations

from engine.evolution.attempt import Attempt, Outcome, Trigger
from engine.evolution.reflect import RatedExample
from engine.evolution.replay import ReplayCase
from engine.ratings import is_negative
from engine.runtime import Runtime
from engine.settings import EngineSettings
from engine.storage.models import Execution, Feedback, Tenant
from engine.types import AgentVersionView, Decision, TenantId

RatedPair = tuple[Feedback, Execution]


async def open_attempt(rt: Runtime, tenant_id: TenantId, trigger: str) -> Attempt | Outcome:
    """An evolution row and its attempt, or an Outcome saying why there is nothing to do."""
    async with rt.repo(tenant_id) as repo:
        tenant = await repo.tenant()
        if tenant is None:
            return _skipped("unknown tenant")
        if tenant.evolution_paused:
            return _skipped("evolution is paused")
        pairs = await repo.unused_feedback()
        base = await repo.active_version()
        bootstrap = bootstraps_from_shared_patterns(trigger, tenant.privacy_mode, base)
        if not pairs and not bootstrap:
            return _skipped("no new feedback")
        positives = await repo.positive_examples(limit=rt.settings.replay_positives + 3)
        channel_id, thread_id = announcement_place(tenant, pairs)
        evolution = await repo.add_evolution(
            trigger=trigger,
            base_version=base.version,
            feedback_ids=[f.id for f, _ in pairs],
            channel_id=channel_id,
            thread_id=thread_id,
        )
        return Attempt(
            tenant_id=tenant_id, evolution_id=evolution.id, trigger=trigger,
            privacy=tenant.privacy_mode, base=base, examples=[rated_example(*p) for p in pairs],
            cases=replay_cases(pairs, positives, rt.settings), from_shared_patterns=bootstrap,
            channel_id=channel_id, thread_id=thread_id,
        )


def _skipped(reason: str) -> Outcome:
    return Outcome(None, Decision.SKIPPED, reason)


def bootstraps_from_shared_patterns(trigger: str, privacy: str, base: AgentVersionView) -> bool:
    """A new tenant that opted into sharing starts from the best shared patterns."""
    return trigger == Trigger.BOOTSTRAP and privacy != "isolated" and not base.prompt.rules


def announcement_place(tenant: Tenant, pairs: list[RatedPair]) -> tuple[str | None, str | None]:
    """Where the feedback came from (channel, thread); the tenant's home without feedback."""
    if not pairs:
        return tenant.home_channel_id, None
    anchor = most_telling_execution(pairs)
    return anchor.channel_id, anchor.thread_id


def most_telling_execution(pairs: list[RatedPair]) -> Execution:
    """The latest negatively rated execution, else the latest one."""
    negatives = [e for f, e in pairs if is_negative(f.rating)]
    return (negatives or [e for _, e in pairs])[-1]


def rated_example(feedback: Feedback, execution: Execution) -> RatedExample:
    return RatedExample(
        feedback.id, execution.objective, execution.output or "", feedback.rating, feedback.comment
    )


def replay_cases(
    pairs: list[RatedPair], positives: list[RatedPair], settings: EngineSettings
) -> list[ReplayCase]:
    """The newest negatives (the candidate must fix them), then a few positives it must keep;
    one case per objective."""
    seen: set[str] = set()
    cases: list[ReplayCase] = []
    for feedback, execution in reversed(pairs):
        if is_negative(feedback.rating) and execution.objective not in seen:
            seen.add(execution.objective)
            cases.append(ReplayCase(execution.objective, rubric(feedback), negative=True))
    cases = cases[: settings.replay_negatives]
    kept = 0
    for feedback, execution in positives:
        if kept >= settings.replay_positives or execution.objective in seen:
            continue
        seen.add(execution.objective)
        cases.append(ReplayCase(execution.objective, rubric(feedback), negative=False))
        kept += 1
    return cases


def rubric(feedback: Feedback) -> str:
    comment = f' and said: "{feedback.comment}"' if feedback.comment else ""
    return f"a user rated the earlier answer {feedback.rating}/5{comment}"
