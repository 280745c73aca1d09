"""`scripted/default`: a deterministic stand-in model that behaves plausibly in every role.

- as the agent: answers "Answer to: <objective>" and says which learned rules it followed,
  so a test (or a demo without a model) can see a new version change the answers;
- as the reflector: turns each negative rating's comment into a rule suggestion
  (confidence 0.9), and "you need a …" comments into tool needs;
- as the judge: prefers the answer sharing more words with the rubric's comment.
It never reads comments as instructions — it only copies them into the JSON it returns,
which is exactly what the engine's injection checks must then catch.
"""

from __future__ import annotations

import json
import re

from engine.llm.scripted import ScriptedReply, ScriptedRequest, register_script

_WORD = re.compile(r"[a-zà-ÿ]{4,}", re.I)
_STOP = {"please", "answer", "with", "that", "this", "your", "should", "would", "there", "more"}
_TOOL_NEED = re.compile(
    r"\b(you need|need a|needs a|use a|missing)\b.{0,30}\b(tool|converter|calculator|function)\b",
    re.I,
)


def _rules(system: str) -> list[str]:
    return re.findall(r"^\d+\.\s+(.*)$", system, re.M)


_SLEEP = re.compile(r"<<sleep:(\d+(?:\.\d+)?)>>")


def agent(request: ScriptedRequest) -> ScriptedReply:
    """`<<sleep:N>>` in an objective makes the answer take N seconds (for tests that kill a
    worker mid-job or hit a timeout from another process)."""
    delay = _SLEEP.search(request.last_user)
    if delay:
        return ScriptedReply(content=f"Answer to: {request.last_user}", delay_s=float(delay[1]))
    if request.tool_results:
        return ScriptedReply(content=f"Result: {request.tool_results[-1]}")
    objective = request.last_user.strip()
    rules = _rules(request.system)
    followed = f" [following: {'; '.join(rules)}]" if rules else ""
    return ScriptedReply(content=f"Answer to: {objective}{followed}")


def reflector(request: ScriptedRequest) -> str:
    data = request.data() or {}
    learnings = []
    for item in data.get("feedback", []):
        comment = (item.get("comment") or "").strip()
        rating = item.get("rating")
        if not comment or rating is None or rating > 2:
            continue
        kind = "tool_need" if _TOOL_NEED.search(comment) else "prompt_rule"
        text = comment.rstrip(".!") + "."
        learnings.append(
            {
                "type": kind,
                "issue": f"user rated {rating}/5: {comment[:80]}",
                "suggested_change": text[0].upper() + text[1:],
                "rationale": f"users asked: {comment[:120]}",
                "confidence": 0.9,
                "impact": 0.7,
                "target_rule": None,
                "action": "add",
                "feedback_ids": [item.get("feedback_id")],
            }
        )
    return json.dumps({"learnings": learnings})


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)} - _STOP


def judge(request: ScriptedRequest) -> str:
    data = request.data() or {}
    rubric = str(data.get("rubric", ""))
    said = rubric.split("said:", 1)[1] if "said:" in rubric else ""
    wanted = _words(said)
    score_a = len(wanted & _words(str(data.get("A", ""))))
    score_b = len(wanted & _words(str(data.get("B", ""))))
    winner = "A" if score_a > score_b else "B" if score_b > score_a else "tie"
    return json.dumps({"winner": winner, "reason": f"overlap A={score_a} B={score_b}"})


def default(request: ScriptedRequest) -> ScriptedReply | str:
    if request.purpose == "reflect":
        return reflector(request)
    if request.purpose == "judge":
        return judge(request)
    return agent(request)


def install_default_scripts() -> None:
    register_script("default", default)
