"""The evolution's pure steps: where it announces, which cases replay, how it routes."""

from __future__ import annotations

from engine.evolution.attempt import Attempt, Validation
from engine.evolution.gather import most_telling_execution, replay_cases
from engine.evolution.reflect import Learning
from engine.evolution.route import route
from engine.prompt import EditOp
from engine.settings import EngineSettings
from engine.storage.models import Execution, Feedback
from engine.types import AgentVersionView, Decision, StructuredPrompt

SETTINGS = EngineSettings(promote_confidence=0.75, canary_confidence=0.5)


def _pair(n: int, rating: int | None, comment: str | None = None) -> tuple[Feedback, Execution]:
    execution = Execution(id=n, objective=f"objective {n}", channel_id=f"c{n}", thread_id=f"t{n}")
    return Feedback(id=n, rating=rating, comment=comment), execution


def _attempt(confidence: float, *, shared: bool = False) -> Attempt:
    base = AgentVersionView(tenant_id="local:t", version=1,
                            prompt=StructuredPrompt(persona="A helper."), model="m",
                            temperature=0.2, parent_version=None, created_by="seed")
    attempt = Attempt(tenant_id="local:t", evolution_id=1, trigger="feedback", privacy="isolated",
                      base=base, examples=[], cases=[], from_shared_patterns=shared)
    attempt.ops = [EditOp(op="add_rule", text="Be brief.", confidence=confidence)]
    attempt.learnings = [Learning(suggested_change="Be brief.", rationale="users want brevity")]
    return attempt


def test_the_announcement_goes_where_the_latest_negative_rating_came_from() -> None:
    pairs = [_pair(1, 2), _pair(2, 3), _pair(3, 5)]
    assert most_telling_execution(pairs).id == 2  # a 3 is negative
    assert most_telling_execution([_pair(1, 4), _pair(2, 5)]).id == 2  # no negative: the latest


def test_replay_cases_are_the_newest_negatives_then_some_positives_one_per_objective() -> None:
    pairs = [_pair(1, 1, "too long"), _pair(2, 3), _pair(3, 4), _pair(4, 2)]
    positives = [_pair(5, 5), _pair(4, 5), _pair(6, 4), _pair(7, 5)]
    settings = SETTINGS.model_copy(update={"replay_negatives": 2, "replay_positives": 2})
    cases = replay_cases(pairs, positives, settings)
    assert [(c.objective, c.negative) for c in cases] == [
        ("objective 4", True), ("objective 2", True),
        ("objective 5", False), ("objective 6", False),
    ]
    assert replay_cases(pairs, [], SETTINGS)[-1].rubric == (
        'a user rated the earlier answer 1/5 and said: "too long"'
    )


def test_confidence_routes_to_promotion_canary_or_approval() -> None:
    assert route(_attempt(0.8), SETTINGS).decision == Decision.PROMOTED
    assert route(_attempt(0.6), SETTINGS).decision == Decision.CANARY
    waiting = route(_attempt(0.3), SETTINGS)
    assert waiting.decision == Decision.NEEDS_APPROVAL
    assert waiting.reason == "users want brevity"


def test_shared_patterns_always_start_as_a_canary() -> None:
    routed = route(_attempt(0.9, shared=True), SETTINGS)
    assert routed.decision == Decision.CANARY
    assert routed.reason == "bootstrapped from shared patterns (anonymized): users want brevity"


def test_the_stored_validation_names_only_the_checks_that_ran() -> None:
    assert list(Validation().as_json()) == [
        "triggers", "reflect_errors", "fallback", "refused_learnings"
    ]
    failed = Validation(structural=["rule r1 is empty"]).as_json()
    assert failed["structural"] == ["rule r1 is empty"] and "replay" not in failed
