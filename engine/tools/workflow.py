"""Workflow tools: a fixed multi-step procedure, declared as data and offered as one tool.

A workflow's `source` is a `WorkflowSpec` as JSON: steps that call a function tool, a
sub-agent or the model, in order. A step's inputs may reference the workflow's inputs
(`{{inputs.name}}`) and earlier steps' outputs (`{{steps.id}}`) — an argument that is exactly
one reference keeps the value's type, anything else is text with the values filled in. Each
step declares the JSON type of its output, checked when it runs. The references make the
steps a small DAG; they run in the order written (every reference points backwards).

`workflow_problems` is the static check (before anything runs); `run_workflow` runs one call
through callables the tool box gives it, and names the step that failed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field

from engine.evolution.checks import text_problems

WORKFLOW = "workflow"
MAX_STEPS = 8
OutputType = Literal["string", "number", "integer", "boolean", "object", "array", "any"]
REFERENCE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
WELL_FORMED = re.compile(r"^(inputs|steps)\.([a-z][a-z0-9_]*)$")

# (tool or sub-agent name, arguments) → (ok, what the box returned: JSON {"value": …} or error)
CallTool = Callable[[str, dict[str, Any]], Awaitable[tuple[bool, str]]]
AskModel = Callable[[str], Awaitable[str]]


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    kind: Literal["tool", "subagent", "llm"]
    tool: str = ""  # tool / subagent: the name of the tenant's tool or sub-agent
    arguments: dict[str, Any] = Field(default_factory=dict)  # tool: its arguments
    task: str = Field(default="", max_length=2000)  # subagent: the task (a template)
    prompt: str = Field(default="", max_length=4000)  # llm: the request (a template)
    output: OutputType = "any"


class WorkflowSpec(BaseModel):
    """What a workflow tool's `source` holds, as JSON."""

    model_config = ConfigDict(extra="forbid")

    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    result: str = ""  # the step whose output the workflow returns (default: the last)

    @property
    def result_step(self) -> str:
        return self.result or self.steps[-1].id


def parse_workflow(source: str) -> WorkflowSpec:
    return WorkflowSpec.model_validate_json(source)


# --- static checks -----------------------------------------------------------------------


def _templates(step: Step) -> list[str]:
    """Every text of a step that may hold references."""
    found: list[str] = [step.task, step.prompt]

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(step.arguments)
    return found


def _reference_problems(step: Step, inputs: set[str], earlier: list[str]) -> list[str]:
    problems = []
    for text in _templates(step):
        for reference in REFERENCE.findall(text):
            match = WELL_FORMED.match(reference)
            if match is None:
                problems.append(f"step {step.id}: `{{{{{reference}}}}}` is not "
                                "{{inputs.<name>}} or {{steps.<id>}}")
            elif match[1] == "inputs" and match[2] not in inputs:
                problems.append(f"step {step.id}: no workflow input named {match[2]!r}")
            elif match[1] == "steps" and match[2] not in earlier:
                problems.append(f"step {step.id}: {{{{steps.{match[2]}}}}} is not an earlier step")
    return problems


def _step_problems(step: Step, tools: dict[str, dict[str, Any]],
                   subagents: Collection[str]) -> list[str]:
    if step.kind == "tool":
        if step.tool not in tools:
            return [f"step {step.id}: unknown tool {step.tool!r} (known: {sorted(tools)})"]
        properties = set(tools[step.tool].get("properties") or {})
        required = set(tools[step.tool].get("required") or [])
        given = set(step.arguments)
        problems = [f"step {step.id}: {step.tool} has no argument {a!r}"
                    for a in sorted(given - properties)]
        problems += [f"step {step.id}: {step.tool} needs argument {a!r}"
                     for a in sorted(required - given)]
        return problems
    if step.kind == "subagent":
        if step.tool not in subagents:
            return [f"step {step.id}: unknown sub-agent {step.tool!r}"]
        return [] if step.task.strip() else [f"step {step.id}: a sub-agent step needs a task"]
    if not step.prompt.strip():
        return [f"step {step.id}: an llm step needs a prompt"]
    return [f"step {step.id}: {p}" for p in text_problems(step.prompt)]


def workflow_problems(
    spec: WorkflowSpec,
    inputs: dict[str, Any],
    tools: dict[str, dict[str, Any]],
    subagents: Collection[str] = (),
) -> list[str]:
    """Everything wrong with a workflow before it runs: unique step ids, references only to
    its inputs and earlier steps, known tools (`tools`: name → parameters schema) called with
    the arguments they take, and a result that names a step."""
    problems: list[str] = []
    names = set(inputs.get("properties") or {})
    earlier: list[str] = []
    for step in spec.steps:
        if step.id in earlier:
            problems.append(f"step id {step.id!r} is used twice")
        problems += _reference_problems(step, names, earlier)
        problems += _step_problems(step, tools, subagents)
        earlier.append(step.id)
    if spec.result and spec.result not in earlier:
        problems.append(f"result names no step: {spec.result!r}")
    return problems


# --- running --------------------------------------------------------------------------------


class StepFailed(Exception):
    """One step failed; the message says which and why."""


@dataclass(frozen=True)
class WorkflowRun:
    ok: bool
    value: Any = None
    steps: int = 0  # steps that ran to completion
    error: str = ""  # "step 2 `km` (tool convert_units): …"


def _lookup(reference: str, inputs: dict[str, Any], outputs: dict[str, Any]) -> Any:
    scope, _, name = reference.partition(".")
    values = inputs if scope == "inputs" else outputs
    if name not in values:
        raise StepFailed(f"{{{{{reference}}}}} has no value")
    return values[name]


def resolve(value: Any, inputs: dict[str, Any], outputs: dict[str, Any]) -> Any:
    """Fill references in: a lone reference keeps its value's type; text gets it as text."""
    if isinstance(value, dict):
        return {k: resolve(v, inputs, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, inputs, outputs) for v in value]
    if not isinstance(value, str):
        return value
    whole = REFERENCE.fullmatch(value.strip())
    if whole:
        return _lookup(whole[1].strip(), inputs, outputs)

    def text(match: re.Match[str]) -> str:
        found = _lookup(match[1].strip(), inputs, outputs)
        return found if isinstance(found, str) else json.dumps(found, ensure_ascii=False)

    return REFERENCE.sub(text, value)


def _box_value(content: str) -> Any:
    """The `value` of what the tool box returned for a tool or sub-agent call."""
    try:
        payload = json.loads(content)
    except json.JSONDecodeError:
        return content
    return payload.get("value") if isinstance(payload, dict) else payload


def _typed(text: str, output: OutputType) -> Any:
    """A model's answer as the step's declared type (JSON unless it is text)."""
    if output in ("string", "any"):
        return text.strip()
    cleaned = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    try:
        return json.loads(cleaned)
    except json.JSONDecodeError as exc:
        raise StepFailed(f"the model's answer is not a JSON {output}: {text[:200]!r}") from exc


def _check_type(value: Any, output: OutputType) -> None:
    if output == "any":
        return
    try:
        jsonschema.validate(value, {"type": output})
    except jsonschema.ValidationError as exc:
        raise StepFailed(f"returned {json.dumps(value, default=str)[:200]}, not "
                         f"{'an' if output[0] in 'aeiou' else 'a'} {output}") from exc


async def _run_step(step: Step, arguments: Any, call_tool: CallTool,
                    ask_model: AskModel | None) -> Any:
    if step.kind == "llm":
        if ask_model is None:
            raise StepFailed("no model is available to this workflow")
        return _typed(await ask_model(str(arguments)), step.output)
    ok, content = await call_tool(step.tool, arguments)
    if not ok:
        raise StepFailed(content.removeprefix("error: ")[:1000])
    return _box_value(content)


def _step_input(step: Step) -> Any:
    return {"tool": step.arguments, "subagent": {"task": step.task}, "llm": step.prompt}[step.kind]


async def run_workflow(
    spec: WorkflowSpec, inputs: dict[str, Any], call_tool: CallTool,
    ask_model: AskModel | None,
) -> WorkflowRun:
    outputs: dict[str, Any] = {}
    for number, step in enumerate(spec.steps, 1):
        try:
            arguments = resolve(_step_input(step), inputs, outputs)
            value = await _run_step(step, arguments, call_tool, ask_model)
            _check_type(value, step.output)
        except Exception as exc:  # a step's failure (or its model's) ends the run, named
            why = str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {exc}"
            return WorkflowRun(False, steps=number - 1,
                               error=f"step {number} `{step.id}` ({describe(step)}): {why}")
        outputs[step.id] = value
    return WorkflowRun(True, outputs[spec.result_step], len(spec.steps))


# --- showing --------------------------------------------------------------------------------


def describe(step: Step) -> str:
    return "llm" if step.kind == "llm" else f"{step.kind} {step.tool}"


def render_steps(spec: WorkflowSpec) -> str:
    """One line per step, for announcements: `2. km ← convert_units(value={{inputs.x}}, …)`."""
    lines = []
    for number, step in enumerate(spec.steps, 1):
        if step.kind == "tool":
            args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}"
                             for k, v in step.arguments.items())
            call = f"{step.tool}({args})"
        elif step.kind == "subagent":
            call = f"sub-agent {step.tool}: {step.task[:120]!r}"
        else:
            call = f"model: {step.prompt[:120]!r}"
        typed = "" if step.output == "any" else f" : {step.output}"
        lines.append(f"{number}. {step.id}{typed} ← {call}")
    lines.append(f"returns {spec.result_step}")
    return "\n".join(lines)
