"""Input files of a sandbox run, on the host side: their names and sizes are checked before
anything runs, then they are written into the run directory (local) or read for upload
(E2B). In the run directory they are read-only (mode 0444, and the runner refuses writes)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from engine.ports import InputFiles
from engine.sandbox._launcher import INPUT_MODE
from engine.sandbox.limits import INPUT_NAME_MAX, INPUT_TOTAL_LIMIT_BYTES, RESERVED_NAMES


def input_files_problem(files: InputFiles) -> str | None:
    """Why these input files cannot be used (the run's error), or None."""
    total = 0
    for name, content in files.items():
        problem = name_problem(name)
        size = 0
        if problem is None:
            size, problem = content_size(content)
        if problem is not None:
            return f"input file {name!r} refused: {problem}"
        total += size
    if total > INPUT_TOTAL_LIMIT_BYTES:
        return f"input files too large: {total} bytes (limit {INPUT_TOTAL_LIMIT_BYTES})"
    return None


def name_problem(name: object) -> str | None:
    """A plain file name only: it can name nothing outside the run directory."""
    if not isinstance(name, str) or not name:
        return "not a file name"
    if len(name) > INPUT_NAME_MAX:
        return f"longer than {INPUT_NAME_MAX} characters"
    if "/" in name or "\\" in name:
        return "a plain file name has no path separator"
    if name.startswith("."):  # also "." and ".."
        return "a file name may not start with a dot"
    if not name.isprintable():
        return "control characters in the name"
    if name in RESERVED_NAMES:
        return "the sandbox uses this name itself"
    return None


def content_size(content: object) -> tuple[int, str | None]:
    if isinstance(content, bytes):
        return len(content), None
    if not isinstance(content, Path):
        return 0, "the content must be bytes or a host path"
    try:
        info = content.stat()
    except OSError as exc:
        return 0, f"cannot read {content}: {exc.strerror}"
    if not stat.S_ISREG(info.st_mode):
        return 0, f"{content} is not a regular file"
    return info.st_size, None


def write_inputs(workdir: str, files: InputFiles) -> None:
    """Puts the (checked) input files into the run directory, read-only."""
    for name, content in files.items():
        target = os.path.join(workdir, name)
        if isinstance(content, bytes):
            Path(target).write_bytes(content)
        else:
            shutil.copyfile(content, target)
        os.chmod(target, INPUT_MODE)


def read_inputs(files: InputFiles) -> dict[str, bytes]:
    """The (checked) input files' contents, for an upload."""
    return {
        name: content if isinstance(content, bytes) else content.read_bytes()
        for name, content in files.items()
    }
