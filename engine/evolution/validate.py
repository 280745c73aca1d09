"""Step 3 — validate: unsafe learnings never reach the prompt, a candidate must pass the
structural checks, then the replay against the current version.

What the replay must show depends on where the edit comes from: one that carries out a
request in a user's comment (or a bootstrap's shared patterns) needs no regression — ties are
no evidence against it; one inferred from ratings alone must win. A judge too weak to tell
answers apart (the embedded `local/` model) is not asked at all: no evidence either way."""

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


WEAK_JUDGE_PROVIDERS = ("local/",)
WEAK_JUDGE_NOTE = "too weak to compare answers: not replayed, not counted as evidence"


def judge_is_weak(model: str) -> bool:
    return model.startswith(WEAK_JUDGE_PROVIDERS)


def needs_a_win(attempt: Attempt) -> bool:
    """Only an edit inferred from ratings must beat the current version."""
    return attempt.request is None and not attempt.from_shared_patterns


async def replay_gate(rt: Runtime, attempt: Attempt) -> Conclusion | None:
    """The candidate's evidence; None when it may go on to routing."""
    if judge_is_weak(rt.settings.judge):
        return without_evidence(attempt, rt.settings.judge)
    return await replay_and_judge(rt, attempt)


def without_evidence(attempt: Attempt, judge: str) -> Conclusion | None:
    """No replay with a weak judge: a request goes ahead, an inference can't be promoted."""
    attempt.validation.judge = {"model": judge, "weak": True, "note": WEAK_JUDGE_NOTE}
    if not needs_a_win(attempt):
        return None
    return Conclusion(
        Decision.REJECTED,
        f"no evidence without a capable judge: {judge} is too weak to compare answers, and a "
        "change inferred from ratings alone must win a replay",
    )


async def replay_and_judge(rt: Runtime, attempt: Attempt) -> Conclusion | None:
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
    """An inference must fix the negatives; a request or a bootstrap must not hurt."""
    return report.passed if needs_a_win(attempt) else report.no_worse
