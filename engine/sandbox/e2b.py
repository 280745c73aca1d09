"""The E2B sandbox: each run gets a fresh E2B micro-VM (``e2b_code_interpreter.AsyncSandbox``).

The code does not run in the VM's Jupyter kernel directly: the cell sent is `_launcher.py`
plus a call that starts `_runner.py` in a limited subprocess, exactly like the local
sandbox does. So both implementations share one convention (``inputs``, ``result``, error
messages, import allowlist, output cap), and ``memory_mb`` / ``timeout_s`` hold here too.
The call's return value (a JSON envelope) comes back as the cell's result, apart from the
logs, so the code's prints cannot spoof it.

``e2b_code_interpreter`` takes about a second to import: it is imported on first use.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from engine.sandbox import _launcher, _runner
from engine.sandbox.limits import (
    DEFAULT_ALLOWED_MODULES,
    OUTPUT_LIMIT_BYTES,
    RESULT_LIMIT_BYTES,
)
from engine.sandbox.runs import Finished, interpret, job_json, rlimits
from engine.types import SandboxResult

LAUNCHER_SOURCE = Path(_launcher.__file__).read_text(encoding="utf-8")
RUNNER_SOURCE = Path(_runner.__file__).read_text(encoding="utf-8")
# Beyond the code's own timeout: VM-side interpreter start and the round trip.
EXECUTION_MARGIN_S = 30.0
LIFETIME_MARGIN_S = 60  # the VM kills itself this long after the timeout, if we could not


class RemoteExecution(Protocol):
    """The part of ``e2b_code_interpreter.Execution`` used here."""

    @property
    def text(self) -> str | None: ...  # the cell's result (repr of the last expression)

    @property
    def error(self) -> Any: ...  # ExecutionError (name, value, traceback) or None


class RemoteSandbox(Protocol):
    # `timeout` mirrors AsyncSandbox.run_code, which sends it to the VM.
    async def run_code(self, code: str, timeout: float | None = None) -> RemoteExecution:  # noqa: ASYNC109
        """Runs a cell; raises TimeoutError when `timeout` passes."""
        ...

    async def kill(self) -> Any: ...


# (api_key, lifetime_s) -> a started sandbox; tests pass a fake kernel instead.
SandboxOpener = Callable[[str, int], Awaitable[RemoteSandbox]]


class _E2BRemote:
    """Adapts ``AsyncSandbox`` to RemoteSandbox (E2B's timeout becomes TimeoutError)."""

    def __init__(self, sandbox: Any) -> None:
        self._sandbox = sandbox

    async def run_code(self, code: str, timeout: float | None = None) -> RemoteExecution:  # noqa: ASYNC109
        from e2b import TimeoutException

        try:
            execution: RemoteExecution = await self._sandbox.run_code(code, timeout=timeout)
        except TimeoutException as exc:
            raise TimeoutError(str(exc)) from exc
        return execution

    async def kill(self) -> Any:
        return await self._sandbox.kill()


async def open_e2b_sandbox(api_key: str, lifetime_s: int) -> RemoteSandbox:
    from e2b_code_interpreter import AsyncSandbox

    sandbox = await AsyncSandbox.create(
        timeout=lifetime_s, allow_internet_access=False, api_key=api_key
    )
    return _E2BRemote(sandbox)


def build_cell(
    code: str, job: str, timeout_s: float, limits: list[int], output_limit: int
) -> str:
    """The launcher's source, then a call whose value is the cell's result."""
    call = (
        f"launch({RUNNER_SOURCE!r}, {job!r}, {code!r}, {timeout_s!r}, {limits!r}, "
        f"{output_limit!r})"
    )
    return f"{LAUNCHER_SOURCE}\n\n{call}\n"


def parse_envelope(text: str | None) -> Finished:
    """The launcher's JSON envelope, shown by the kernel as the repr of a str."""
    if text is None:
        raise RuntimeError("the E2B cell returned no result")
    envelope = json.loads(ast.literal_eval(text))
    return Finished(
        returncode=envelope["returncode"],
        timed_out=envelope["timed_out"],
        stdout=envelope["stdout"],
        stderr=envelope["stderr"],
        truncated=envelope["truncated"],
        result_text=envelope["result_text"],
    )


class E2BSandbox:
    name = "e2b"

    def __init__(
        self,
        api_key: str,
        *,
        allowed_modules: frozenset[str] = DEFAULT_ALLOWED_MODULES,
        output_limit: int = OUTPUT_LIMIT_BYTES,
        result_limit: int = RESULT_LIMIT_BYTES,
        opener: SandboxOpener = open_e2b_sandbox,
    ) -> None:
        self._api_key = api_key
        self.allowed_modules = allowed_modules
        self.output_limit = output_limit
        self.result_limit = result_limit
        self._open = opener

    async def run(
        self,
        code: str,
        *,
        inputs: dict[str, Any] | None = None,
        timeout_s: float = 5.0,
        memory_mb: int = 256,
    ) -> SandboxResult:
        started = time.monotonic()
        job = job_json(inputs or {}, self.allowed_modules, self.result_limit)
        cell = build_cell(code, job, timeout_s, rlimits(timeout_s, memory_mb), self.output_limit)
        try:
            finished = await self._execute(cell, timeout_s)
        except TimeoutError:  # the launcher itself did not come back: count it as the code's
            finished = Finished(None, True, "", "", False, None)
        return interpret(finished, timeout_s, time.monotonic() - started)

    async def _execute(self, cell: str, timeout_s: float) -> Finished:
        """Raises on infrastructure failures (no VM, no network): those are not the code's."""
        remote = await self._open(self._api_key, math.ceil(timeout_s) + LIFETIME_MARGIN_S)
        try:
            execution = await remote.run_code(cell, timeout=timeout_s + EXECUTION_MARGIN_S)
        finally:
            # A failed kill is not worth losing the result for: the VM's lifetime ends it.
            with contextlib.suppress(Exception):
                await remote.kill()
        if execution.error is not None:
            error = execution.error
            raise RuntimeError(f"E2B launcher failed: {error.name}: {error.value}")
        return parse_envelope(execution.text)
