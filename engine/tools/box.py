"""The tool box offered to the model in function-calling form.

Function tools and the built-in `python` run in the sandbox, each call with its own
timeout; a sub-agent tool runs a whole (bounded) agent through an injected runner. Any
failure becomes an `error: …` result the model reads — a tool never crashes an execution.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from engine.ports import InputFiles, Sandbox
from engine.tools.workflow import WORKFLOW, AskModel, parse_workflow, run_workflow
from engine.types import SandboxFile, SandboxResult

PYTHON_TOOL = "python"
FUNCTION = "function"
SUBAGENT = "subagent"


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]
    source: str = ""  # function: defines a function named like the tool; subagent, workflow:
    # its JSON
    version: int = 1
    kind: str = FUNCTION

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


PYTHON_SPEC = ToolSpec(
    name=PYTHON_TOOL,
    description=(
        "Run Python code in an isolated sandbox (no network, no files outside its working "
        "directory). Assign the value to return to a variable named `result`. numpy, pandas "
        "and matplotlib can be imported. Files the user shared are in the working directory, "
        "read-only (open them by name). Files the code saves in `out/` (e.g. "
        "`plt.savefig('out/chart.png')`, `df.to_csv('out/summary.csv')`) are sent to the user "
        "with your answer."
    ),
    parameters={
        "type": "object",
        "properties": {"code": {"type": "string", "description": "Python source"}},
        "required": ["code"],
    },
)

# Runs a sub-agent tool on a task and returns (answer, names of the tools it called).
SubagentRunner = Callable[[ToolSpec, str], Awaitable[tuple[str, list[str]]]]


@dataclass
class ToolOutcome:
    name: str
    ok: bool
    content: str  # what the model sees
    duration_s: float
    arguments: dict[str, Any] = field(default_factory=dict)


def call_code(spec: ToolSpec) -> str:
    """The program one call of a function tool runs in the sandbox."""
    return f"{spec.source}\n\nresult = {spec.name}(**inputs)\n"


class ToolBox:
    def __init__(
        self,
        tools: list[ToolSpec],
        sandbox: Sandbox | None,
        *,
        timeout_s: float = 5.0,
        run_subagent: SubagentRunner | None = None,
        subagent_timeout_s: float = 60.0,
        ask_model: AskModel | None = None,  # a workflow's llm steps
    ) -> None:
        self.sandbox = sandbox
        # the execution's files, read-only in every sandboxed call's working directory, and
        # the files its calls left in out/ (engine/files/execution.py)
        self.files: InputFiles = {}
        self.made: dict[str, SandboxFile] = {}
        self.ask_model = ask_model
        self.timeout_s = timeout_s
        self.run_subagent = run_subagent
        self.subagent_timeout_s = subagent_timeout_s
        # no sandbox: no tools at all (replay runs side-effect free, and so does a host
        # without a sandbox); a sub-agent without a runner can't be offered either
        offered = [t for t in tools if t.kind != SUBAGENT or run_subagent is not None]
        self.tools = {t.name: t for t in offered} if sandbox is not None else {}

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self.tools.values()]

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        """Run one call; any failure is reported back to the model, never raised."""
        start = time.perf_counter()
        spec = self.tools.get(name)
        if spec is None or self.sandbox is None:
            return ToolOutcome(name, False, f"error: no tool named {name!r}", 0.0, arguments)
        if "__invalid_json__" in arguments:
            return ToolOutcome(name, False, "error: arguments were not valid JSON", 0.0, arguments)
        if spec.kind == SUBAGENT:
            return await self._call_subagent(spec, arguments, start)
        if spec.kind == WORKFLOW:
            return await self._call_workflow(spec, arguments, start)
        if name == PYTHON_TOOL:
            code, inputs = str(arguments.get("code", "")), {}
        else:
            code, inputs = call_code(spec), arguments
        try:
            result = await self.sandbox.run(code, inputs=inputs, files=self.files or None,
                                            timeout_s=self.timeout_s)
        except Exception as exc:  # the sandbox itself broke: report, don't crash the execution
            return ToolOutcome(
                name, False, f"error: sandbox failure: {exc}", _since(start), arguments
            )
        duration = _since(start)
        if result.error:
            content = f"error: {result.error}\n{result.stderr[-1000:]}".strip()
            return ToolOutcome(name, False, content, duration, arguments)
        payload = {"value": result.value, "stdout": result.stdout[-2000:], **self._keep(result)}
        return ToolOutcome(name, True, json.dumps(payload, default=str), duration, arguments)

    def _keep(self, result: SandboxResult) -> dict[str, list[str]]:
        """Collect what the code left in out/ (a later file of the same name replaces an
        earlier one) and tell the model which files will reach the user."""
        for file in result.files:
            self.made[file.name] = file
        told: dict[str, list[str]] = {}
        if result.files:
            told["files_sent_with_answer"] = [f.name for f in result.files]
        if result.files_skipped:
            told["files_not_sent"] = result.files_skipped
        return told

    async def _call_subagent(
        self, spec: ToolSpec, arguments: dict[str, Any], start: float
    ) -> ToolOutcome:
        assert self.run_subagent is not None  # such specs are only offered with a runner
        task = str(arguments.get("task") or "").strip()
        if not task:
            return ToolOutcome(spec.name, False, "error: give the sub-agent a `task`", 0.0,
                               arguments)
        try:
            answer, used = await asyncio.wait_for(
                self.run_subagent(spec, task), timeout=self.subagent_timeout_s
            )
        except TimeoutError:
            content = f"error: the sub-agent took longer than {self.subagent_timeout_s:.0f} s"
            return ToolOutcome(spec.name, False, content, _since(start), arguments)
        except Exception as exc:  # its model failed: the main agent carries on without it
            content = f"error: sub-agent failure: {type(exc).__name__}: {exc}"[:1000]
            return ToolOutcome(spec.name, False, content, _since(start), arguments)
        payload = {"value": answer, "tools_used": used}
        return ToolOutcome(spec.name, True, json.dumps(payload), _since(start), arguments)


    async def _call_workflow(
        self, spec: ToolSpec, arguments: dict[str, Any], start: float
    ) -> ToolOutcome:
        """Each step through this box (engine/tools/workflow.py); a failure names its step."""
        async def call_step(name: str, step_arguments: dict[str, Any]) -> tuple[bool, str]:
            target = self.tools.get(name)
            if target is None or target.kind == WORKFLOW:  # one level: no nested workflows
                return False, f"error: no tool named {name!r}"
            outcome = await self.call(name, step_arguments)
            return outcome.ok, outcome.content

        try:
            workflow = parse_workflow(spec.source)
        except ValueError as exc:
            content = f"error: broken workflow: {exc}"[:1000]
            return ToolOutcome(spec.name, False, content, _since(start), arguments)
        run = await run_workflow(workflow, arguments, call_step, self.ask_model)
        if not run.ok:
            return ToolOutcome(spec.name, False, f"error: {run.error}", _since(start), arguments)
        content = json.dumps({"value": run.value, "steps": run.steps}, default=str)
        return ToolOutcome(spec.name, True, content, _since(start), arguments)


def _since(start: float) -> float:
    return time.perf_counter() - start
