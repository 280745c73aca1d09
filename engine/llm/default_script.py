"""`scripted/default`: a deterministic stand-in model that behaves plausibly in every role.

- as the agent: answers "Answer to: <objective>" and says which learned rules it followed,
  so a test (or a demo without a model) can see a new version change the answers;
- as the reflector: turns each negative rating's comment into a rule suggestion
  (confidence 0.9), and "you need a …" comments into tool needs; told of a repeated failure
  without such comments, it infers a rule from the ratings alone (citing no comment);
- as the judge: prefers the answer sharing more words with the rubric's comment;
- as the tool maker: a unit converter (`convert_units`) for a conversion need, a specialist
  sub-agent for "you need a <topic> specialist", and "none" for anything else;
- as the agent with tools offered: calls a (non-`python`) tool whose description shares a
  keyword with the objective ("convert 5 miles to km" → `convert_units(5, "miles", "km")`),
  then answers "Result: <the tool's value>".
It never reads comments as instructions — it only copies them into the JSON it returns,
which is exactly what the engine's injection checks must then catch.
"""

from __future__ import annotations

import json
import re
from typing import Any

from engine.llm.scripted import ScriptedReply, ScriptedRequest, register_script

_WORD = re.compile(r"[a-zà-ÿ]{4,}", re.I)
_STOP = {"please", "answer", "with", "that", "this", "your", "should", "would", "there", "more"}
_TOOL_NEED = re.compile(
    r"\b(you need|need a|needs a|use a|missing)\b.{0,30}"
    r"\b(tool|converter|calculator|function|specialist|expert)\b",
    re.I,
)
_TOOL_REMOVAL = re.compile(r"\b(remove|stop using|retire|get rid of)\b.{0,40}\btool\b", re.I)


def _rules(system: str) -> list[str]:
    return re.findall(r"^\d+\.\s+(.*)$", system, re.M)


_SLEEP = re.compile(r"<<sleep:(\d+(?:\.\d+)?)>>")
_STREAM = re.compile(r"<<stream:(\d+(?:\.\d+)?)>>")


def _paced(reply: ScriptedReply, request: ScriptedRequest) -> ScriptedReply:
    """`<<stream:S>>` in an objective makes a streamed answer come S seconds a word, like a
    slow model (for tests and benchmarks of streaming)."""
    pace = _STREAM.search(request.last_user)
    if pace:
        reply.token_delay_s = float(pace[1])
    return reply


def agent(request: ScriptedRequest) -> ScriptedReply:
    """`<<sleep:N>>` in an objective makes the answer take N seconds (for tests that kill a
    worker mid-job or hit a timeout from another process)."""
    delay = _SLEEP.search(request.last_user)
    if delay:
        return ScriptedReply(content=f"Answer to: {request.last_user}", delay_s=float(delay[1]))
    if request.tool_results:
        return ScriptedReply(content=f"Result: {_tool_value(request.tool_results[-1])}")
    objective = request.last_user.strip()
    call = _tool_call(request.tools, objective)
    if call is not None:
        return ScriptedReply(tool_calls=[call])
    rules = _rules(request.system)
    followed = f" [following: {'; '.join(rules)}]" if rules else ""
    return ScriptedReply(content=f"Answer to: {objective}{followed}")


def reflector(request: ScriptedRequest) -> str:
    data = request.data() or {}
    learnings = _comment_learnings(data)
    if not learnings and data.get("repeated_failure"):
        learnings = [_inferred_from_ratings(data)]
    return json.dumps({"learnings": learnings})


def _inferred_from_ratings(data: dict[str, Any]) -> dict[str, Any]:
    """A repeated failure nobody explained: a rule about that kind of objective."""
    uncommented = [
        item.get("feedback_id") for item in data.get("feedback", [])
        if not (item.get("comment") or "").strip()
    ]
    objective = str(data["repeated_failure"]["objectives"][0])[:120]
    return {
        "type": "prompt_rule",
        "issue": f"{len(uncommented)} similar objectives rated badly",
        "suggested_change": f"Double-check answers to requests like: {objective}",
        "rationale": "similar objectives keep getting low ratings",
        "confidence": 0.8,
        "impact": 0.6,
        "target_rule": None,
        "action": "add",
        "feedback_ids": uncommented[:10],
    }


def _comment_learnings(data: dict[str, Any]) -> list[dict[str, Any]]:
    learnings = []
    for item in data.get("feedback", []):
        comment = (item.get("comment") or "").strip()
        rating = item.get("rating")
        if not comment or rating is None or rating > 2:
            continue
        kind = (
            "tool_removal" if _TOOL_REMOVAL.search(comment)
            else "tool_need" if _TOOL_NEED.search(comment)
            else "prompt_rule"
        )
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
    return learnings


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


# --- the agent's tool calls ---------------------------------------------------------------

_CONVERSION = re.compile(r"(-?\d+(?:\.\d+)?)\s*(°?[a-z]+)\s+(?:to|in|into)\s+(°?[a-z]+)", re.I)
_CONVERSION_ARGS = {"value", "from_unit", "to_unit"}


def _keywords(text: str) -> set[str]:
    """Words of 4+ letters, singular-ish ("miles" ~ "mile"), for matching tool descriptions."""
    return {w[:-1] if w.endswith("s") else w for w in _words(text)}


def _arguments(parameters: dict[str, Any], objective: str) -> dict[str, Any] | None:
    """Arguments for a tool from the objective: a conversion is parsed ("5 miles to km");
    a tool taking one string (a sub-agent's `task`) gets the whole objective."""
    properties = parameters.get("properties") or {}
    if set(properties) >= _CONVERSION_ARGS:
        match = _CONVERSION.search(objective)
        if match is None:
            return None
        return {"value": float(match[1]), "from_unit": match[2], "to_unit": match[3]}
    strings = [name for name, schema in properties.items() if schema.get("type") == "string"]
    if len(properties) == 1 and strings:
        return {strings[0]: objective}
    return None


def _tool_call(tools: list[dict[str, Any]], objective: str) -> tuple[str, dict[str, Any]] | None:
    wanted = _keywords(objective)
    for tool in tools:
        function = tool.get("function") or {}
        name = function.get("name")
        if not name or name == "python":
            continue
        if not _keywords(str(function.get("description", ""))) & wanted:
            continue
        arguments = _arguments(function.get("parameters") or {}, objective)
        if arguments is not None:
            return str(name), arguments
    return None


def _tool_value(content: str) -> str:
    """A tool result's `value` (the box returns {"value": …, …}); errors verbatim."""
    try:
        payload = json.loads(content)
    except json.JSONDecodeError:
        return content
    if isinstance(payload, dict) and "value" in payload:
        return str(payload["value"])
    return content


# --- the tool maker ------------------------------------------------------------------------

CONVERT_UNITS_SOURCE = '''\
UNITS = {
    "km": ("length", 1000.0),
    "mi": ("length", 1609.344),
    "m": ("length", 1.0),
    "ft": ("length", 0.3048),
    "kg": ("mass", 1.0),
    "lb": ("mass", 0.45359237),
}
TEMPERATURES = ("c", "f")
ALIASES = {
    "kilometer": "km", "kilometers": "km", "kilometre": "km", "kilometres": "km",
    "mile": "mi", "miles": "mi", "meter": "m", "meters": "m", "metre": "m", "metres": "m",
    "foot": "ft", "feet": "ft", "kilogram": "kg", "kilograms": "kg", "kgs": "kg",
    "pound": "lb", "pounds": "lb", "lbs": "lb", "celsius": "c", "°c": "c",
    "fahrenheit": "f", "°f": "f",
}


def _unit(name):
    key = str(name).strip().lower().rstrip(".")
    key = ALIASES.get(key, key)
    if key not in UNITS and key not in TEMPERATURES:
        raise ValueError(f"unknown unit: {name}")
    return key


def convert_units(value, from_unit, to_unit):
    """Convert value between km, mi, m, ft (length), kg, lb (mass), c, f (temperature)."""
    source, target = _unit(from_unit), _unit(to_unit)
    value = float(value)
    if source in TEMPERATURES and target in TEMPERATURES:
        if source == target:
            return round(value, 6)
        celsius = value if source == "c" else (value - 32) * 5 / 9
        return round(celsius if target == "c" else celsius * 9 / 5 + 32, 6)
    if source in TEMPERATURES or target in TEMPERATURES or UNITS[source][0] != UNITS[target][0]:
        raise ValueError(f"cannot convert {from_unit} to {to_unit}")
    return round(value * UNITS[source][1] / UNITS[target][1], 6)
'''

CONVERT_UNITS_TESTS = '''\
def test_length():
    assert convert_units(5, "mi", "km") == 8.04672
    assert convert_units(1, "km", "m") == 1000
    assert convert_units(3, "ft", "m") == 0.9144


def test_mass():
    assert convert_units(1, "kg", "lb") == 2.204623


def test_temperature():
    assert convert_units(100, "c", "f") == 212
    assert convert_units(32, "f", "c") == 0


def test_aliases():
    assert convert_units(5, "miles", "kilometers") == 8.04672


def test_incompatible_units_are_refused():
    try:
        convert_units(1, "kg", "km")
    except ValueError:
        return
    raise AssertionError("kg to km must fail")
'''

CONVERT_UNITS = {
    "kind": "function",
    "name": "convert_units",
    "description": (
        "Convert a value between units: length (km, mi, m, ft), mass (kg, lb) and "
        "temperature (c, f). Use it for every unit conversion instead of estimating."
    ),
    "parameters": {
        "type": "object",
        "properties": {
            "value": {"type": "number", "description": "the amount to convert"},
            "from_unit": {"type": "string", "description": "km, mi, m, ft, kg, lb, c or f"},
            "to_unit": {"type": "string", "description": "km, mi, m, ft, kg, lb, c or f"},
        },
        "required": ["value", "from_unit", "to_unit"],
    },
    "source": CONVERT_UNITS_SOURCE,
    "tests": CONVERT_UNITS_TESTS,
}
_CONVERSION_NEED = re.compile(r"\b(convert\w*|conversion|units?|miles?|km|kilomet\w*)\b", re.I)
_SPECIALIST_NEED = re.compile(r"\b([a-z]{3,})[ -](specialist|expert)\b", re.I)


def _specialist(topic: str, function_tools: list[str]) -> dict[str, Any]:
    return {
        "kind": "subagent",
        "name": f"{topic}_specialist",
        "description": (
            f"A {topic} specialist (sub-agent): give it a whole {topic} question and it "
            "answers as an expert."
        ),
        "persona": f"You are a {topic} specialist. Answer {topic} questions precisely.",
        "rules": [f"Give concrete {topic} details.", "Say which assumptions you made."],
        "tools": function_tools,
        "example_task": f"A typical {topic} question from a user.",
    }


def tool_maker(request: ScriptedRequest) -> str:
    data = request.data() or {}
    need = data.get("need") or {}
    text = " ".join(str(need.get(k) or "") for k in ("issue", "suggested_change", "rationale"))
    functions = [t["name"] for t in data.get("existing_tools", []) if t.get("kind") == "function"]
    specialist = _SPECIALIST_NEED.search(text)
    if specialist:
        return json.dumps(_specialist(specialist[1].lower(), functions))
    if _CONVERSION_NEED.search(text):
        return json.dumps(CONVERT_UNITS)
    return json.dumps({"kind": "none", "description": "no tool fits this need"})


def default(request: ScriptedRequest) -> ScriptedReply | str:
    if request.purpose == "reflect":
        return reflector(request)
    if request.purpose == "judge":
        return judge(request)
    if request.purpose == "tool_maker":
        return tool_maker(request)
    return _paced(agent(request), request)


def install_default_scripts() -> None:
    register_script("default", default)
