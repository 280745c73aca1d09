"""The E2B sandbox: each run gets a fresh E2B micro-VM (``e2b_code_interpreter.AsyncSandbox``).

The code does not run in the VM's Jupyter kernel directly: the cell sent is `_launcher.py`
plus a call that starts `_runner.py` in a limited subprocess, exactly like the local
sandbox does. So both implementations share one convention (``inputs``, ``result``, error
messages, import allowlist, output cap), and ``memory_mb`` / ``timeout_s`` hold here too.
The call's return value (a JSON envelope) comes back as the cell's result, apart from the
logs, so the code's prints cannot spoof it.

Input files are uploaded into a staging directory of the VM before the cell runs (the
launcher copies them into the run directory, read-only); the files the code left in
``out/`` are staged by the launcher, listed in the envelope and downloaded afterwards. The
data libraries are the VM's own (E2B's code interpreter image ships numpy, pandas and
matplotlib); the launcher finds them there.

``e2b_code_interpreter`` takes about a second to import: it is imported on first use.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import math
import posixpath
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from engine.ports import InputFiles
from engine.sandbox import _launcher, _runner
from engine.sandbox.data import data_imports, memory_for, preloads
from engine.sandbox.files import input_files_problem, read_inputs
from engine.sandbox.limits import (
    DATA_DISTRIBUTIONS,
    DEFAULT_ALLOWED_MODULES,
    OUTPUT_FILE_COUNT,
    OUTPUT_FILE_LIMIT_BYTES,
    OUTPUT_LIMIT_BYTES,
    OUTPUT_MEDIA_TYPES,
    RESULT_LIMIT_BYTES,
)
from engine.sandbox.runs import OUTPUT_RULES, Finished, interpret, job_json, rlimits
from engine.types import SandboxFile, SandboxResult

LAUNCHER_SOURCE = Path(_launcher.__file__).read_text(encoding="utf-8")
RUNNER_SOURCE = Path(_runner.__file__).read_text(encoding="utf-8")
# Beyond the code's own timeout: VM-side interpreter start and the round trip.
EXECUTION_MARGIN_S = 30.0
LIFETIME_MARGIN_S = 60  # the VM kills itself this long after the timeout, if we could not
STAGING_PREFIX = "/tmp/evobot-files-"  # + a run id: input files go to in/, outputs to out/


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

    async def write_file(self, path: str, data: bytes) -> None:
        """Writes a file in the VM (its directories are created)."""
        ...

    async def read_file(self, path: str) -> bytes: ...


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

    async def write_file(self, path: str, data: bytes) -> None:
        await self._sandbox.files.write(path, data)

    async def read_file(self, path: str) -> bytes:
        return bytes(await self._sandbox.files.read(path, format="bytes"))


async def open_e2b_sandbox(api_key: str, lifetime_s: int) -> RemoteSandbox:
    from e2b_code_interpreter import AsyncSandbox

    sandbox = await AsyncSandbox.create(
        timeout=lifetime_s, allow_internet_access=False, api_key=api_key
    )
    return _E2BRemote(sandbox)


def build_cell(
    code: str, job: str, timeout_s: float, limits: list[int], output_limit: int,
    staging: str = "",
) -> str:
    """The launcher's source, then a call whose value is the cell's result."""
    call = (
        f"launch({RUNNER_SOURCE!r}, {job!r}, {code!r}, {timeout_s!r}, {limits!r}, "
        f"{output_limit!r}, {staging!r}, {OUTPUT_RULES!r})"
    )
    return f"{LAUNCHER_SOURCE}\n\n{call}\n"


def decode_envelope(text: str | None) -> dict[str, Any]:
    """The launcher's JSON envelope, shown by the kernel as the repr of a str."""
    if text is None:
        raise RuntimeError("the E2B cell returned no result")
    envelope = json.loads(ast.literal_eval(text))
    if not isinstance(envelope, dict):
        raise RuntimeError("the E2B cell returned no envelope")
    return envelope


def finished_from(envelope: dict[str, Any]) -> Finished:
    return Finished(
        returncode=envelope["returncode"],
        timed_out=envelope["timed_out"],
        stdout=envelope["stdout"],
        stderr=envelope["stderr"],
        truncated=envelope["truncated"],
        result_text=envelope["result_text"],
        files_skipped=[str(note) for note in envelope.get("files_skipped", [])],
    )


def parse_envelope(text: str | None) -> Finished:
    return finished_from(decode_envelope(text))


async def download_outputs(
    remote: RemoteSandbox, listing: list[dict[str, Any]], staging: str
) -> list[SandboxFile]:
    """The staged out/ files. The listing comes from the VM the code ran in: it is held to
    the output rules again here (paths in the staging directory, types, count, sizes)."""
    files: list[SandboxFile] = []
    for entry in listing[:OUTPUT_FILE_COUNT]:
        checked = checked_output(entry, staging)
        if checked is None:
            continue
        name, media_type, path = checked
        data = await remote.read_file(path)
        if len(data) <= OUTPUT_FILE_LIMIT_BYTES:
            files.append(SandboxFile(name=name, media_type=media_type, data=data))
    return files


def checked_output(entry: dict[str, Any], staging: str) -> tuple[str, str, str] | None:
    """(name, media type, path) of a listed output, or None if it breaks the rules."""
    name, path = str(entry["name"]), posixpath.normpath(str(entry["path"]))
    media_type = OUTPUT_MEDIA_TYPES.get(posixpath.splitext(name)[1].lower())
    if media_type is None or not path.startswith(f"{staging}/out/"):
        return None
    return name, media_type, path


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
        files: InputFiles | None = None,
        timeout_s: float = 5.0,
        memory_mb: int = 256,
    ) -> SandboxResult:
        started = time.monotonic()
        problem = input_files_problem(files or {})
        if problem is not None:  # nothing is uploaded, nothing runs
            return SandboxResult(error=problem, duration=time.monotonic() - started)
        uploads = await asyncio.to_thread(read_inputs, files or {})
        imports = data_imports(code)
        data = None
        if imports:  # the launcher adds where the VM has the libraries
            data = {"preload": preloads(imports), "distributions": list(DATA_DISTRIBUTIONS)}
        job = job_json(
            inputs or {}, self.allowed_modules, self.result_limit,
            data=data, read_only=sorted(uploads),
        )
        staging = STAGING_PREFIX + uuid.uuid4().hex
        limits = rlimits(timeout_s, memory_for(memory_mb, imports))
        cell = build_cell(code, job, timeout_s, limits, self.output_limit, staging)
        try:
            finished = await self._execute(cell, timeout_s, staging, uploads)
        except TimeoutError:  # the launcher itself did not come back: count it as the code's
            finished = Finished(None, True, "", "", False, None)
        return interpret(finished, timeout_s, time.monotonic() - started)

    async def _execute(
        self, cell: str, timeout_s: float, staging: str, uploads: dict[str, bytes]
    ) -> Finished:
        """Raises on infrastructure failures (no VM, no network): those are not the code's."""
        remote = await self._open(self._api_key, math.ceil(timeout_s) + LIFETIME_MARGIN_S)
        try:
            for name, content in uploads.items():
                await remote.write_file(f"{staging}/in/{name}", content)
            execution = await remote.run_code(cell, timeout=timeout_s + EXECUTION_MARGIN_S)
            if execution.error is not None:
                error = execution.error
                raise RuntimeError(f"E2B launcher failed: {error.name}: {error.value}")
            envelope = decode_envelope(execution.text)
            files = await download_outputs(remote, envelope.get("files", []), staging)
        finally:
            # A failed kill is not worth losing the result for: the VM's lifetime ends it.
            with contextlib.suppress(Exception):
                await remote.kill()
        return replace(finished_from(envelope), files=files)
