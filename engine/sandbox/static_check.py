"""Static checks for generated tool source, run before the tool's tests run in the sandbox.

An AST walk that rejects what a computing tool never needs: imports outside the allowlist,
dynamic code (`eval`, `exec`, `compile`, `__import__`), files (`open`), process creation
(`os.system`, `subprocess`) and the dunder/frame attributes that sandbox escapes go through
(`__globals__`, `__subclasses__`, `__builtins__`, `f_globals`, ...). It is a first filter
that gives the tool maker readable reasons; the sandbox is what enforces the limits.
"""

from __future__ import annotations

import ast
import re

FORBIDDEN_NAMES = frozenset(
    {
        "eval", "exec", "compile", "__import__", "open", "breakpoint", "input", "globals",
        "locals", "vars", "memoryview", "__builtins__", "__loader__", "__spec__",
    }
)
OS_PROCESS_ATTRS = frozenset(
    {
        "system", "popen", "fork", "forkpty", "kill", "killpg", "posix_spawn", "posix_spawnp",
        "execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe",
        "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp",
        "spawnvpe", "startfile",
    }
)
PROCESS_MODULES = frozenset({"subprocess", "multiprocessing", "pty"})
# Dunders ordinary code uses; every other dunder attribute is refused.
HARMLESS_DUNDERS = frozenset(
    {"__init__", "__name__", "__qualname__", "__doc__", "__module__", "__post_init__"}
)
# Frame, code and generator attributes: the non-dunder way to reach other globals.
INTROSPECTION_ATTRS = frozenset(
    {
        "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "gi_frame", "gi_code",
        "cr_frame", "cr_code", "ag_frame", "ag_code", "tb_frame", "tb_next", "co_code",
        "func_globals",
    }
)
ATTR_FUNCTIONS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
# "{0.__globals__}".format(f) reads attributes too: the `.name` parts of a replacement field.
FORMAT_FIELD = re.compile(r"\{([^{}]*)\}")
FIELD_ATTRIBUTE = re.compile(r"\.(\w+)")


def check_tool_source(source: str, *, allowed_imports: frozenset[str]) -> list[str]:
    """Human-readable problems with `source`; an empty list means it passed."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"syntax error at line {exc.lineno}, column {exc.offset}: {exc.msg}"]
    checker = _Checker(allowed_imports)
    checker.visit(tree)
    return list(dict.fromkeys(checker.problems))  # de-duplicated, in source order


def _is_refused_attribute(attr: str) -> bool:
    is_dunder = attr.startswith("__") and attr.endswith("__")
    return (is_dunder and attr not in HARMLESS_DUNDERS) or attr in INTROSPECTION_ATTRS


def _attribute_named_in_call(node: ast.Call) -> str | None:
    """The name in getattr(x, "name") and friends: attribute access spelled as a call."""
    if not (isinstance(node.func, ast.Name) and node.func.id in ATTR_FUNCTIONS):
        return None
    if len(node.args) < 2:
        return None
    name = node.args[1]
    if isinstance(name, ast.Constant) and isinstance(name.value, str):
        return name.value
    return None


def _format_field_attributes(text: str) -> list[str]:
    """Refused attributes named in the replacement fields of a would-be format string."""
    return [
        attr
        for field in FORMAT_FIELD.findall(text)
        for attr in FIELD_ATTRIBUTE.findall(field)
        if _is_refused_attribute(attr)
    ]


class _Checker(ast.NodeVisitor):
    def __init__(self, allowed_imports: frozenset[str]) -> None:
        self.allowed_imports = allowed_imports
        self.problems: list[str] = []

    def problem(self, node: ast.AST, message: str) -> None:
        self.problems.append(f"line {getattr(node, 'lineno', '?')}: {message}")

    def check_module(self, node: ast.AST, module: str) -> None:
        top = module.partition(".")[0]
        if top in PROCESS_MODULES:
            self.problem(node, f"`{module}` (process creation) is not allowed")
        elif top not in self.allowed_imports:
            self.problem(node, f"import of `{module}` is not allowed")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.check_module(node, alias.name)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.problem(node, "relative imports are not allowed")
        elif node.module is not None:
            self.check_module(node, node.module)
            if node.module == "os":  # `from os import system` when os itself is allowed
                for alias in node.names:
                    if alias.name in OS_PROCESS_ATTRS:
                        self.problem(node, f"`os.{alias.name}` (process creation) is not allowed")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_NAMES:
            self.problem(node, f"use of `{node.id}` is not allowed")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        owner = node.value.id if isinstance(node.value, ast.Name) else None
        if owner == "os" and node.attr in OS_PROCESS_ATTRS:
            self.problem(node, f"`os.{node.attr}` (process creation) is not allowed")
        elif owner in PROCESS_MODULES:
            self.problem(node, f"`{owner}.{node.attr}` (process creation) is not allowed")
        elif _is_refused_attribute(node.attr):
            self.problem(node, f"access to the attribute `{node.attr}` is not allowed")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        attr = _attribute_named_in_call(node)
        if attr is not None and _is_refused_attribute(attr):
            self.problem(node, f"access to the attribute `{attr}` is not allowed")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            for attr in _format_field_attributes(node.value):
                self.problem(node, f"a format string reading the attribute `{attr}` is not allowed")
        self.generic_visit(node)
