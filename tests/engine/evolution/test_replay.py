"""The replay: every case answered by both versions and judged in both orders — side by side,
never more than its limit of model calls at once; one failing call fails the replay."""

from __future__ import annotations

import asyncio
import json

import litellm
import pytest

from engine.evolution.replay import ReplayCase, Replayer
from engine.llm.gateway import LLMError, LLMGateway
from engine.llm.scripted import ScriptedReply, ScriptedRequest, register_script
from engine.tools.box import ToolBox
from engine.types import AgentVersionView, StructuredPrompt

CURRENT = AgentVersionView(
    tenant_id="local:replay", version=1, prompt=StructuredPrompt(persona="A helper."),
    model="scripted/replay-side-by-side", temperature=0.0, parent_version=None,
    created_by="seed",
)
CANDIDATE = CURRENT.model_copy(
    update={"version": 2, "prompt": StructuredPrompt(persona="A brief helper.")}
)
CASES = [ReplayCase(objective=f"objective {n}", rubric="too long", negative=True)
         for n in range(3)]


class SlowModel:
    """Answers like a model that takes a moment, counting the calls in flight; the brief
    persona answers better, and the judge can tell."""

    def __init__(self, fail_judging: bool = False) -> None:
        self.in_flight = 0
        self.most_in_flight = 0
        self.fail_judging = fail_judging

    async def __call__(self, request: ScriptedRequest) -> ScriptedReply | str:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.02)
        finally:
            self.in_flight -= 1
        if request.purpose == "judge":
            if self.fail_judging:
                return ScriptedReply(error=litellm.exceptions.APIConnectionError(
                    "judge unreachable", llm_provider="scripted", model="replay"))
            data = request.data()
            winner = "A" if data["A"].startswith("brief") else "B"
            return json.dumps({"winner": winner, "reason": "shorter"})
        brief = "brief" in request.system
        return f"{'brief' if brief else 'long-winded'} answer to {request.last_user}"


def _replayer(model: SlowModel, calls_at_once: int) -> Replayer:
    register_script("replay-side-by-side", model)
    return Replayer(LLMGateway(), "scripted/replay-side-by-side", toolbox=ToolBox([], None),
                    max_steps=2, calls_at_once=calls_at_once)


async def test_a_replay_runs_its_calls_side_by_side_but_never_more_than_its_limit() -> None:
    model = SlowModel()
    report = await _replayer(model, calls_at_once=3).replay(CURRENT, CANDIDATE, CASES)

    assert model.most_in_flight == 3  # 3 cases x (2 answers + 2 verdicts), 3 at a time
    assert [c.objective for c in report.cases] == ["objective 0", "objective 1", "objective 2"]
    assert [c.score for c in report.cases] == [2, 2, 2]  # won in both orders, every case
    assert report.cases[0].candidate_answer == "brief answer to objective 0"
    assert report.passed and report.usage.calls == 12


async def test_with_one_call_at_a_time_the_replay_reaches_the_same_verdicts() -> None:
    model = SlowModel()
    report = await _replayer(model, calls_at_once=1).replay(CURRENT, CANDIDATE, CASES)
    assert model.most_in_flight == 1
    assert [c.score for c in report.cases] == [2, 2, 2] and report.usage.calls == 12


# litellm makes the model's coroutine in a thread: one cancelled before it is awaited warns
@pytest.mark.filterwarnings("ignore:coroutine 'ScriptedLLM.acompletion' was never awaited")
async def test_a_failing_judge_fails_the_replay_with_its_own_error() -> None:
    model = SlowModel(fail_judging=True)
    with pytest.raises(LLMError, match="judge unreachable"):
        await _replayer(model, calls_at_once=4).replay(CURRENT, CANDIDATE, CASES)
    await asyncio.sleep(0.05)
    assert model.in_flight == 0  # the other calls were cancelled, none left running
