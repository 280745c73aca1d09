"""Step 4 — route: a validated candidate is promoted, tried on a canary, or waits for an admin.

Reach follows who asked: an edit that carries out a request in a comment is promoted in a
one-person chat, or when an admin asked; elsewhere it is the canary that always serves the
people who asked (plus the usual share). An edit inferred from ratings goes by confidence.

Routing rules are tried in order and the first with an answer decides; confidence always has
one, so it comes last. A new consideration is one more rule in `ROUTING_RULES`.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.evolution.attempt import Attempt, Conclusion
from engine.evolution.propose import ops_confidence
from engine.settings import EngineSettings
from engine.types import Decision, is_one_person_tenant

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


def requests_reach_who_asked(attempt: Attempt, settings: EngineSettings) -> Conclusion | None:
    if attempt.request is None:
        return None
    if is_one_person_tenant(attempt.tenant_id) or attempt.request.from_admin:
        return Conclusion(Decision.PROMOTED, rationale(attempt))
    return Conclusion(Decision.CANARY, rationale(attempt))


def route_by_confidence(attempt: Attempt, settings: EngineSettings) -> Conclusion:
    confidence = ops_confidence(attempt.ops)
    if confidence >= settings.promote_confidence:
        decision = Decision.PROMOTED
    elif confidence >= settings.canary_confidence:
        decision = Decision.CANARY
    else:
        decision = Decision.NEEDS_APPROVAL
    return Conclusion(decision, rationale(attempt))


ROUTING_RULES: list[RoutingRule] = [shared_patterns_go_to_canary, requests_reach_who_asked]
