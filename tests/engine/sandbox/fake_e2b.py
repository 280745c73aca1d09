"""A stand-in for an E2B VM: runs the cell like a Jupyter kernel, in a local subprocess.

The cell's last expression becomes `Execution.text` (its repr), as in the real kernel, so
the whole E2BSandbox path (cell building, launcher, runner, envelope) runs without network.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

# Executes the cell read from stdin; prints the repr of its last expression.
KERNEL = r"""
import ast, sys
tree = ast.parse(sys.stdin.read())
last = tree.body.pop()
namespace = {"__name__": "__main__"}
exec(compile(tree, "<cell>", "exec"), namespace)
sys.stdout.write(repr(eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)))
"""


@dataclass
class FakeError:
    name: str
    value: str
    traceback: str = ""


@dataclass
class FakeExecution:
    text: str | None
    error: FakeError | None = None


class FakeKernel:
    def __init__(self) -> None:
        self.killed = False
        self.cells: list[str] = []

    async def run_code(self, code: str, timeout: float | None = None) -> FakeExecution:  # noqa: ASYNC109
        self.cells.append(code)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-c",
            KERNEL,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(code.encode()), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            return FakeExecution(None, FakeError("CellError", err.decode()[-500:]))
        return FakeExecution(out.decode())

    async def kill(self) -> bool:
        self.killed = True
        return True


class FakeKernelOpener:
    """An `opener` for E2BSandbox that records what it opened."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, int, FakeKernel]] = []

    async def __call__(self, api_key: str, lifetime_s: int) -> FakeKernel:
        kernel = FakeKernel()
        self.opened.append((api_key, lifetime_s, kernel))
        return kernel
