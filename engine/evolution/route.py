"""Step 4 — route: a validated candidate is promoted, tried on a canary, or waits for an admin.

Routing rules are tried in order and the first with an answer decides; confidence always has
one, so it comes last. A new consideration is one more rule in `ROUTING_RULES`.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.evolution.attempt import Attempt, Conclusion
from engine.evolution.propose import ops_confidence
from engine.settings import EngineSettings
from engine.types import Decision

RoutingRule = Callable[[Attempt, EngineSettings], Conclusion | None]


def route(attempt: Attempt, settings: EngineSettings) -> Conclusion:
    for rule in ROUTING_RULES:
        conclusion = rule(attempt, settings)
        if conclusion is not None:
            return conclusion
    return route_by_confidence(attempt, settings)


def rationale(attempt: Attempt) -> str:
    """Why the prompt changes, in the learnings' own words."""
    return "; ".join(x.rationale or x.issue for x in attempt.learnings if x.type == "prompt_rule")


def shared_patterns_go_to_canary(attempt: Attempt, settings: EngineSettings) -> Conclusion | None:
    """Shared patterns are someone else's lessons: prove them on this tenant's users first."""
    if not attempt.from_shared_patterns:
        return None
    return Conclusion(
        Decision.CANARY, "bootstrapped from shared patterns (anonymized): " + rationale(attempt)
    )


def route_by_confidence(attempt: Attempt, settings: EngineSettings) -> Conclusion:
    confidence = ops_confidence(attempt.ops)
    if confidence >= settings.promote_confidence:
        decision = Decision.PROMOTED
    elif confidence >= settings.canary_confidence:
        decision = Decision.CANARY
    else:
        decision = Decision.NEEDS_APPROVAL
    return Conclusion(decision, rationale(attempt))


ROUTING_RULES: list[RoutingRule] = [shared_patterns_go_to_canary]
