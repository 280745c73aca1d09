"""Static checks on a generated function tool, before anything of it runs (in the sandbox).

The sandbox enforces the limits; these checks give the model readable reasons for a retry:
the name, the JSON schema of the parameters, the source (allowlisted imports, no dynamic
code, files or processes — `check_tool_source`), a function with the tool's name whose
arguments match the schema, and tests that exist.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

import jsonschema

from engine.sandbox import DEFAULT_ALLOWED_MODULES, check_tool_source
from engine.tools.box import PYTHON_TOOL

NAME = re.compile(r"^[a-z][a-z0-9_]{1,47}$")
RESERVED = {PYTHON_TOOL, "result", "inputs"}  # the sandbox convention's globals


@dataclass(frozen=True)
class SuitePlan:
    """What the test program runs after the tests' module-level code: each `test_*`."""

    functions: list[str]
    module_asserts: int

    @property
    def count(self) -> int:
        return len(self.functions) + self.module_asserts


def name_problems(name: str) -> list[str]:
    if not NAME.match(name):
        return [f"the name {name!r} must be snake_case: a-z, 0-9 and _, 2 to 48 characters"]
    if name in RESERVED:
        return [f"the name {name!r} is reserved"]
    return []


def schema_problems(parameters: dict[str, Any]) -> list[str]:
    """A JSON-schema object: what function calling offers the model as the arguments."""
    try:
        jsonschema.Draft202012Validator.check_schema(parameters)
    except jsonschema.SchemaError as exc:
        return [f"parameters is not a valid JSON schema: {exc.message}"]
    if parameters.get("type") != "object" or not isinstance(parameters.get("properties"), dict):
        return ['parameters must be {"type": "object", "properties": {...}}']
    missing = set(parameters.get("required", [])) - set(parameters["properties"])
    if missing:
        return [f"required names unknown properties: {sorted(missing)}"]
    return []


def _function(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    return None


def signature_problems(source: str, name: str, parameters: dict[str, Any]) -> list[str]:
    """The source defines `def name(...)` accepting exactly what the schema describes."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []  # check_tool_source reports it
    function = _function(tree, name)
    if function is None:
        return [f"the source must define a top-level function `def {name}(...)`"]
    args = function.args
    positional = [a.arg for a in [*args.posonlyargs, *args.args]]
    accepted = set(positional) | {a.arg for a in args.kwonlyargs}
    properties = set(parameters.get("properties", {}))
    problems = []
    if args.posonlyargs:
        problems.append("positional-only arguments can't be passed by name")
    if args.kwarg is None and properties - accepted:
        problems.append(f"the function does not accept {sorted(properties - accepted)}")
    without_default = positional[: len(positional) - len(args.defaults)]
    keyword_defaults = zip(args.kwonlyargs, args.kw_defaults, strict=True)
    without_default += [a.arg for a, default in keyword_defaults if default is None]
    required = set(parameters.get("required", []))
    if set(without_default) - required:
        problems.append(
            f"arguments without a default must be required in the schema: "
            f"{sorted(set(without_default) - required)}"
        )
    return problems


def plan_suite(tests: str) -> SuitePlan:
    tree = ast.parse(tests)
    functions = [
        n.name
        for n in tree.body
        if isinstance(n, ast.FunctionDef) and n.name.startswith("test_") and not n.args.args
    ]
    asserts = sum(isinstance(n, ast.Assert) for n in tree.body)
    return SuitePlan(functions, asserts)


def function_problems(
    name: str, description: str, parameters: dict[str, Any], source: str, tests: str
) -> list[str]:
    """Everything wrong with a function tool draft; empty: it may run its tests."""
    problems = name_problems(name)
    if not description.strip():
        problems.append("the description is empty")
    problems += schema_problems(parameters)
    source_problems = check_tool_source(source, allowed_imports=DEFAULT_ALLOWED_MODULES)
    problems += [f"source: {p}" for p in source_problems]
    problems += signature_problems(source, name, parameters)
    test_problems = check_tool_source(tests, allowed_imports=DEFAULT_ALLOWED_MODULES)
    problems += [f"tests: {p}" for p in test_problems]
    if not test_problems and plan_suite(tests).count == 0:
        problems.append("tests: write at least one `assert` or `test_*` function")
    return problems


def suite_program(source: str, tests: str, plan: SuitePlan) -> str:
    """Source, tests, then a call of each test function; `result` reports the count."""
    calls = "\n".join(f"{f}()" for f in plan.functions)
    return (
        f"{source}\n\n# --- tests ---\n{tests}\n\n# --- harness ---\n{calls}\n"
        f"result = {{'passed': {plan.count}}}\n"
    )
