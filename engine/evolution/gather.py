"""Open an attempt: the tenant's feedback, the version it improves, why the evolution runs,
where to announce, and the replay cases that will judge the candidate.

Gathering reads in one transaction, `focus.py` settles the trigger (it may narrow the feedback
to one repeated failure), and the evolution row is written in a second transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.evolution.attempt import Asker, Attempt, Outcome, Trigger
from engine.evolution.focus import settle_trigger
from engine.evolution.reflect import RatedExample
from engine.evolution.replay import ReplayCase
from engine.evolution.rollback import AUTO_ROLLBACK
from engine.ratings import is_negative
from engine.runtime import Runtime
from engine.settings import EngineSettings
from engine.storage.models import Execution, Feedback
from engine.storage.repo import TenantRepo
from engine.types import AgentVersionView, Decision, TenantId

RatedPair = tuple[Feedback, Execution]
PERIODIC_GOOD_ANSWERS = 10  # the recent well-rated answers a periodic evolution looks at
EXEMPLARS = 3  # … and any other evolution


@dataclass
class Gathered:
    """What one read found: the feedback to learn from and the facts about it."""

    tenant_id: TenantId
    trigger: str
    privacy: str
    home_channel_id: str | None
    base: AgentVersionView
    pairs: list[RatedPair]
    unused_ids: set[int]
    positives: list[RatedPair]
    bootstrap: bool
    rolled_back: bool  # the watch rolled back since the tenant's last evolution
    triggers: list[str] = field(default_factory=list)  # beside the primary `trigger`


async def open_attempt(rt: Runtime, tenant_id: TenantId, trigger: str) -> Attempt | Outcome:
    """An evolution row and its attempt, or an Outcome saying why there is nothing to do."""
    found = await gather(rt, tenant_id, trigger)
    if isinstance(found, Outcome):
        return found
    if not found.pairs and not found.bootstrap:
        return _skipped("no new feedback")
    await settle_trigger(rt, found)
    return await start_attempt(rt, found)


async def gather(rt: Runtime, tenant_id: TenantId, trigger: str) -> Gathered | Outcome:
    """Reads only: no transaction (engine/storage/db.py)."""
    async with rt.statement(tenant_id) as repo:
        tenant = await repo.tenant()
        if tenant is None:
            return _skipped("unknown tenant")
        if tenant.evolution_paused:
            return _skipped("evolution is paused")
        unused = await repo.unused_feedback()
        base = await repo.active_version()
        wanted = max(rt.settings.replay_positives + 3, PERIODIC_GOOD_ANSWERS)
        positives = await repo.positive_examples(limit=wanted)
        rolled_back = await rolled_back_since_last_evolution(repo)
    # reflection sees what worked beside what didn't: recent well-rated answers (even ones an
    # evolution read before) are exemplars; a periodic evolution looks at more of them
    periodic = trigger == Trigger.PERIODIC
    exemplars = PERIODIC_GOOD_ANSWERS if periodic else EXEMPLARS
    pairs = with_good_answers(unused, positives[:exemplars]) if unused or periodic else []
    return Gathered(
        tenant_id=tenant_id, trigger=trigger, privacy=tenant.privacy_mode,
        home_channel_id=tenant.home_channel_id, base=base, pairs=pairs,
        unused_ids={f.id for f, _ in unused}, positives=positives,
        bootstrap=bootstraps_from_shared_patterns(trigger, tenant.privacy_mode, base),
        rolled_back=rolled_back,
    )


async def start_attempt(rt: Runtime, found: Gathered) -> Attempt:
    channel_id, thread_id = announcement_place(found.home_channel_id, found.pairs)
    async with rt.statement(found.tenant_id) as repo:  # one INSERT
        evolution = await repo.add_evolution(
            trigger=found.trigger, base_version=found.base.version,
            feedback_ids=[f.id for f, _ in found.pairs], channel_id=channel_id,
            thread_id=thread_id,
        )
    attempt = Attempt(
        tenant_id=found.tenant_id, evolution_id=evolution.id, trigger=found.trigger,
        privacy=found.privacy, base=found.base,
        examples=[rated_example(*p) for p in found.pairs],
        cases=replay_cases(found.pairs, found.positives, rt.settings),
        from_shared_patterns=found.bootstrap, channel_id=channel_id, thread_id=thread_id,
        askers=askers(found.pairs),
        consumes={f.id: f.updated_at for f, _ in found.pairs if f.id in found.unused_ids},
    )
    for trigger in found.triggers:
        attempt.note_trigger(trigger)
    return attempt


def _skipped(reason: str) -> Outcome:
    return Outcome(None, Decision.SKIPPED, reason)


def bootstraps_from_shared_patterns(trigger: str, privacy: str, base: AgentVersionView) -> bool:
    """A new tenant that opted into sharing starts from the best shared patterns."""
    return trigger == Trigger.BOOTSTRAP and privacy != "isolated" and not base.prompt.rules


def with_good_answers(unused: list[RatedPair], good: list[RatedPair]) -> list[RatedPair]:
    """The new ratings plus recent well-rated answers (even ones an evolution already read),
    oldest first, each once."""
    seen = {f.id for f, _ in unused}
    extra = [p for p in good if p[0].id not in seen]
    return sorted([*unused, *extra], key=lambda p: p[0].id)


async def rolled_back_since_last_evolution(repo: TenantRepo) -> bool:
    """An automatic rollback after the tenant's last evolution started: the next evolution
    is the fix (even when its job was queued as plain feedback)."""
    moves = [m for m in await repo.label_moves(limit=10) if m.reason == AUTO_ROLLBACK]
    if not moves:
        return False
    last = await repo.evolutions(limit=1)
    return not last or moves[0].at >= last[0].created_at


def askers(pairs: list[RatedPair]) -> dict[int, Asker]:
    """Who asked for something in a comment, by feedback id."""
    return {
        f.id: Asker(f.user_id, bool(f.from_admin))
        for f, _ in pairs
        if (f.comment or "").strip()
    }


def announcement_place(
    home_channel_id: str | None, pairs: list[RatedPair]
) -> tuple[str | None, str | None]:
    """Where the feedback came from (channel, thread); the tenant's home without feedback."""
    if not pairs:
        return home_channel_id, None
    anchor = most_telling_execution(pairs)
    return anchor.channel_id, anchor.thread_id


def most_telling_execution(pairs: list[RatedPair]) -> Execution:
    """The latest negatively rated execution, else the latest one."""
    negatives = [e for f, e in pairs if is_negative(f.rating)]
    return (negatives or [e for _, e in pairs])[-1]


def rated_example(feedback: Feedback, execution: Execution) -> RatedExample:
    return RatedExample(
        feedback.id, execution.objective, execution.output or "", feedback.rating,
        feedback.comment, category=feedback.category, suggestion=feedback.suggestion,
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
            cases.append(ReplayCase(execution.objective, rubric(feedback), negative=True,
                                    rated_answer=execution.output, rated_version=execution.version))
    cases = cases[: settings.replay_negatives]
    kept = 0
    for feedback, execution in positives:
        if kept >= settings.replay_positives or execution.objective in seen:
            continue
        seen.add(execution.objective)
        cases.append(ReplayCase(execution.objective, rubric(feedback), negative=False,
                                rated_answer=execution.output, rated_version=execution.version))
        kept += 1
    return cases


def rubric(feedback: Feedback) -> str:
    comment = f' and said: "{feedback.comment}"' if feedback.comment else ""
    return f"a user rated the earlier answer {feedback.rating}/5{comment}"
