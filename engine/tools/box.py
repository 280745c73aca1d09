"""The tool box offered to the model in function-calling form; every call is sandboxed."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

PYTHON_TOOL = "python"


class SandboxLike(Protocol):
    async def run(
        self,
        code: str,
        *,
        inputs: dict[str, Any] | None = None,
        timeout_s: float = 5.0,
        memory_mb: int = 256,
    ) -> Any: ...


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]
    source: str = ""  # defines a function named like the tool
    version: int = 1

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
        "Run Python code in an isolated sandbox (no network, no files outside a temp dir). "
        "Assign the value to return to a variable named `result`."
    ),
    parameters={
        "type": "object",
        "properties": {"code": {"type": "string", "description": "Python source"}},
        "required": ["code"],
    },
)


@dataclass
class ToolOutcome:
    name: str
    ok: bool
    content: str  # what the model sees
    duration_s: float
    arguments: dict[str, Any] = field(default_factory=dict)


def _call_code(spec: ToolSpec) -> str:
    return f"{spec.source}\n\nresult = {spec.name}(**inputs)\n"


class ToolBox:
    def __init__(
        self, tools: list[ToolSpec], sandbox: SandboxLike | None, *, timeout_s: float = 5.0
    ) -> None:
        self.sandbox = sandbox
        self.timeout_s = timeout_s
        self.tools = {t.name: t for t in tools} if sandbox is not None else {}

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
        if name == PYTHON_TOOL:
            code, inputs = str(arguments.get("code", "")), {}
        else:
            code, inputs = _call_code(spec), arguments
        try:
            result = await self.sandbox.run(code, inputs=inputs, timeout_s=self.timeout_s)
        except Exception as exc:  # the sandbox itself broke: report, don't crash the execution
            return ToolOutcome(
                name, False, f"error: sandbox failure: {exc}", _since(start), arguments
            )
        duration = _since(start)
        if result.error:
            content = f"error: {result.error}\n{result.stderr[-1000:]}".strip()
            return ToolOutcome(name, False, content, duration, arguments)
        payload = {"value": result.value, "stdout": result.stdout[-2000:]}
        return ToolOutcome(name, True, json.dumps(payload, default=str), duration, arguments)


def _since(start: float) -> float:
    return time.perf_counter() - start
