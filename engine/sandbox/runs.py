"""What both sandbox implementations share: the job handed to `_runner.py` and the reading
of what a run left behind (exit status, output, the runner's result file, out/ files)."""

from __future__ import annotations

import json
import math
import signal
from dataclasses import dataclass, field
from typing import Any

from engine.sandbox.limits import (
    OUTPUT_FILE_COUNT,
    OUTPUT_FILE_LIMIT_BYTES,
    OUTPUT_MEDIA_TYPES,
    OUTPUT_TOTAL_LIMIT_BYTES,
)
from engine.types import SandboxFile, SandboxResult

# The rules `_launcher.collect_outputs` applies to out/ (it is stdlib only: a plain dict).
OUTPUT_RULES: dict[str, Any] = {
    "media_types": OUTPUT_MEDIA_TYPES,
    "file_limit": OUTPUT_FILE_LIMIT_BYTES,
    "total_limit": OUTPUT_TOTAL_LIMIT_BYTES,
    "max_files": OUTPUT_FILE_COUNT,
}


def job_json(
    inputs: dict[str, Any],
    allowed_modules: frozenset[str],
    result_limit: int,
    *,
    limits: list[int] | None = None,
    data: dict[str, Any] | None = None,
    read_only: list[str] | None = None,
) -> str:
    """The runner's job: `data` for code that imports the data libraries, `read_only` the
    names of the input files in the run directory."""
    job: dict[str, Any] = {
        "inputs": inputs,
        "allowed_modules": sorted(allowed_modules),
        "result_limit": result_limit,
    }
    if limits is not None:  # the runner applies these itself (see LocalSandbox._execute)
        job["limits"] = limits
    if data is not None:
        job["data"] = data
    if read_only:
        job["read_only"] = read_only
    return json.dumps(job)


def rlimits(
    timeout_s: float,
    memory_mb: int,
    *,
    file_mb: int = 16,
    processes: int = 32,
    open_files: int = 64,
) -> list[int]:
    """Arguments of the runner's `apply_limits` for one run."""
    return [
        math.ceil(timeout_s) + 1,  # CPU seconds: a backstop for the wall-clock timeout
        memory_mb * 1024 * 1024,
        file_mb * 1024 * 1024,
        processes,
        open_files,
    ]


@dataclass(frozen=True)
class Finished:
    """A run as the host saw it, before interpretation."""

    returncode: int | None
    timed_out: bool
    stdout: str
    stderr: str
    truncated: bool
    result_text: str | None  # the runner's result file, if it wrote one
    files: list[SandboxFile] = field(default_factory=list)  # collected from out/
    files_skipped: list[str] = field(default_factory=list)


def interpret(finished: Finished, timeout_s: float, duration: float) -> SandboxResult:
    value: Any = None
    parsed = None if finished.timed_out else parse_result(finished.result_text)
    if parsed is not None:
        value, error = parsed.get("value"), parsed.get("error")
    else:
        error = failure_message(finished, timeout_s)
    return SandboxResult(
        stdout=finished.stdout,
        stderr=finished.stderr,
        value=value,
        error=error,
        duration=duration,
        truncated=finished.truncated,
        files=finished.files,
        files_skipped=finished.files_skipped,
    )


def sandbox_files(collected: list[tuple[str, str, bytes]]) -> list[SandboxFile]:
    return [SandboxFile(name=name, media_type=kind, data=data) for name, kind, data in collected]


def parse_result(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def failure_message(finished: Finished, timeout_s: float) -> str:
    """Why the runner wrote no result."""
    if finished.timed_out:
        return f"timeout after {timeout_s}s"
    code = finished.returncode
    if code == -signal.SIGXCPU:
        return "cpu time limit exceeded"
    if "MemoryError" in finished.stderr:
        return "memory limit exceeded"
    if code is not None and code < 0:
        return f"killed by signal {signal.strsignal(-code) or -code}"
    last_line = finished.stderr.strip().splitlines()[-1:] or ["no output"]
    return f"sandbox exited with code {code} without a result ({last_line[0]})"
