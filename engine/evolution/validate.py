"""Step 3 — validate: unsafe learnings never reach the prompt, a candidate must pass the
structural checks, then win the replay against the current version."""

from __future__ import annotations

from engine.evolution.attempt import Attempt, Conclusion
from engine.evolution.checks import structural_problems, text_problems
from engine.evolution.reflect import Learning
from engine.evolution.replay import Replayer, ReplayReport
from engine.runtime import Runtime
from engine.tools.box import ToolBox
from engine.types import Decision


def drop_unsafe(learnings: list[Learning]) -> tuple[list[Learning], list[str]]:
    """The learnings that pass the injection/secret checks, and why each other one didn't."""
    safe, refused = [], []
    for learning in learnings:
        problems = text_problems(learning.suggested_change)
        if problems:
            refused.append(f"{learning.suggested_change[:80]!r}: {', '.join(problems)}")
        else:
            safe.append(learning)
    return safe, refused


def check_structure(attempt: Attempt) -> Conclusion | None:
    """Budget, secrets, safety and injection in what the candidate changed."""
    assert attempt.candidate_prompt is not None
    problems = structural_problems(attempt.base.prompt, attempt.candidate_prompt)
    if not problems:
        return None
    attempt.validation.structural = problems
    return Conclusion(Decision.REJECTED, "structural checks failed: " + "; ".join(problems))


async def replay_gate(rt: Runtime, attempt: Attempt) -> Conclusion | None:
    """Replay the cases with the current version and the candidate; None when it passed."""
    report = await replay_candidate(rt, attempt)
    attempt.report = report
    attempt.cost += report.usage.cost_usd
    attempt.validation.replay = report.as_dict()
    if passes_replay(attempt, report):
        return None
    return Conclusion(Decision.REJECTED, f"replay gate: {report.summary()}")


async def replay_candidate(rt: Runtime, attempt: Attempt) -> ReplayReport:
    base = attempt.base
    candidate = base.model_copy(
        update={"prompt": attempt.candidate_prompt, "version": base.version + 1}
    )
    replayer = Replayer(
        rt.gateway, rt.settings.judge, toolbox=ToolBox([], None), max_steps=rt.settings.max_steps
    )
    return await replayer.replay(base, candidate, attempt.cases)


def passes_replay(attempt: Attempt, report: ReplayReport) -> bool:
    """Feedback's candidate must fix the negatives; a bootstrap has none, so must not hurt."""
    return report.no_worse if attempt.from_shared_patterns else report.passed
