"""A stand-in for an E2B VM: runs the cell like a Jupyter kernel, in a local subprocess.

The cell's last expression becomes `Execution.text` (its repr), as in the real kernel, so
the whole E2BSandbox path (cell building, launcher, runner, envelope) runs without network.
The kernel's interpreter is this one with its site-packages (the data libraries included),
as E2B's image has them. Its file system is this machine's: uploads and downloads go to the
paths E2BSandbox names (a staging directory under /tmp), removed when the "VM" is killed.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

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


def staging_root(path: str) -> Path:
    """The run's staging directory, e.g. /tmp/evobot-files-<id>, of a path inside it."""
    return Path(*Path(path).parts[:3])


@dataclass
class FakeKernel:
    killed: bool = False
    cells: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    read: list[str] = field(default_factory=list)

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

    async def write_file(self, path: str, data: bytes) -> None:
        self.written.append(path)
        target = Path(path)
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(target.write_bytes, data)

    async def read_file(self, path: str) -> bytes:
        self.read.append(path)
        return await asyncio.to_thread(Path(path).read_bytes)

    async def kill(self) -> bool:
        """The VM's file system goes with it."""
        self.killed = True
        for root in {staging_root(path) for path in self.written + self.read}:
            await asyncio.to_thread(shutil.rmtree, root, ignore_errors=True)
        return True


class FakeKernelOpener:
    """An `opener` for E2BSandbox that records what it opened."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, int, FakeKernel]] = []

    async def __call__(self, api_key: str, lifetime_s: int) -> FakeKernel:
        kernel = FakeKernel()
        self.opened.append((api_key, lifetime_s, kernel))
        return kernel
