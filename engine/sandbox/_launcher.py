"""Starts `_runner.py` in a limited subprocess from inside a remote sandbox (E2B).

``E2BSandbox`` sends this module's source, followed by a call to ``launch(...)``, as one
code cell: the remote kernel runs it and the call's return value (a JSON envelope) comes
back as the cell's result, apart from the user's prints. This gives the remote sandbox the
same convention and the same limits as the local one (allowlist, audit hook, rlimits,
timeout, output cap), with E2B's VM as the outer wall.

Input files are uploaded to ``staging/in`` before the cell runs; the launcher copies them
into the run directory, read-only. The files the code leaves in ``out/`` are copied to
``staging/out`` (within the output rules) and listed in the envelope for the host to
download. ``LocalSandbox`` uses the same helpers (``data_layout``, ``collect_outputs``)
on the host, so both implementations find the data libraries and collect files alike.

It runs in someone else's interpreter, so it is synchronous, stdlib only and self-contained
(no ``from __future__`` either: a cell may not start with it after this docstring).
The rlimits travel in ``job.json``; the runner sets them before any untrusted code runs.
"""

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile

INPUT_MODE = 0o444  # input files are read-only for the code (the runner refuses writes too)
READ_CHUNK = 1024 * 1024


def _read_capped(path: str, limit: int) -> tuple[str, bool]:
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    return data[:limit].decode("utf-8", errors="replace"), len(data) > limit


def kill_group(pgid: int) -> None:
    """Kills the sandboxed process and everything it started (its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(pgid, signal.SIGKILL)


def launch(
    runner_source: str,
    job_json: str,
    code: str,
    timeout_s: float,
    limits: list[int],
    output_limit: int,
    staging: str = "",
    output_rules: "dict | None" = None,
) -> str:
    """Runs the code once; returns the envelope the host turns into a SandboxResult."""
    workdir = tempfile.mkdtemp(prefix="evobot-sandbox-")
    logdir = tempfile.mkdtemp(prefix="evobot-logs-")  # outside the code's reach
    try:
        job = json.loads(job_json)
        job["limits"] = limits  # applied by the runner itself: no preexec_fn (fork safety)
        if job.get("data") is not None:  # where the data libraries are: in this VM
            job["data"].update(data_layout(job["data"].pop("distributions")) or {})
        files = (("runner.py", runner_source), ("job.json", json.dumps(job)), ("main.py", code))
        for name, text in files:
            with open(os.path.join(workdir, name), "w", encoding="utf-8") as f:
                f.write(text)
        if staging:
            place_staged_inputs(os.path.join(staging, "in"), workdir, job.get("read_only", []))
        out_path, err_path = os.path.join(logdir, "stdout"), os.path.join(logdir, "stderr")
        returncode, timed_out = _run_runner(workdir, out_path, err_path, timeout_s)
        stdout, stdout_cut = _read_capped(out_path, output_limit)
        stderr, stderr_cut = _read_capped(err_path, output_limit)
        envelope = {
            "returncode": returncode, "timed_out": timed_out, "stdout": stdout,
            "stderr": stderr, "truncated": stdout_cut or stderr_cut,
            "result_text": None if timed_out else _read_result(workdir),
        }
        if staging and output_rules is not None:
            envelope.update(stage_outputs(workdir, os.path.join(staging, "out"), output_rules))
        return json.dumps(envelope)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(logdir, ignore_errors=True)


def _run_runner(workdir: str, out_path: str, err_path: str, timeout_s: float) -> tuple[int, bool]:
    """Run the runner in its own session; kill the whole group when it ends or times out."""
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", "runner.py"], cwd=workdir, env={},
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
        )
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            kill_group(proc.pid)
            proc.wait()
    return proc.returncode, timed_out


def _read_result(workdir: str) -> str | None:
    result_path = os.path.join(workdir, "result.json")
    if not os.path.exists(result_path):
        return None
    with open(result_path, encoding="utf-8", errors="replace") as f:
        return f.read()


# --- the data libraries ---------------------------------------------------------------


def data_layout(distributions: "list[str]") -> "dict | None":
    """Where the data libraries are installed for this interpreter (from their RECORD
    files): the site directories to put on sys.path, the top-level packages, modules and
    bundled libraries under them that may be read, and the importable top-level names.
    None when none of them is installed."""
    from importlib import metadata

    sites, read_paths, modules = set(), set(), set()
    for name in distributions:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        site = os.path.realpath(str(dist.locate_file("")))
        for top in {f.parts[0] for f in dist.files or () if f.parts}:
            if top in ("..", "__pycache__") or top.endswith((".dist-info", ".data", ".pth")):
                continue
            sites.add(site)
            read_paths.add(os.path.join(site, top))
            module = top.partition(".")[0]
            if module.isidentifier() and (top == module or top.endswith((".py", ".so"))):
                modules.add(module)
    if not modules:
        return None
    return {"sites": sorted(sites), "read_paths": sorted(read_paths), "modules": sorted(modules)}


# --- files in and out -------------------------------------------------------------------


def place_staged_inputs(inbox: str, workdir: str, names: "list[str]") -> None:
    """Moves the uploaded input files into the run directory, read-only."""
    for name in names:
        target = os.path.join(workdir, name)
        shutil.copyfile(os.path.join(inbox, name), target)
        os.chmod(target, INPUT_MODE)
    shutil.rmtree(inbox, ignore_errors=True)
    with contextlib.suppress(OSError):  # the staging directory, now empty: outputs recreate it
        os.rmdir(os.path.dirname(inbox))


def stage_outputs(workdir: str, outbox: str, rules: dict) -> dict:
    """Copies the collected out/ files to `outbox` for download; lists them."""
    collected, skipped = collect_outputs(os.path.join(workdir, "out"), rules)
    listed = []
    if collected:
        os.makedirs(outbox, exist_ok=True)
    for index, (name, media_type, data) in enumerate(collected):
        path = os.path.join(outbox, str(index))
        with open(path, "wb") as f:
            f.write(data)
        listed.append({"name": name, "media_type": media_type, "path": path})
    return {"files": listed, "files_skipped": skipped}


def collect_outputs(out_dir: str, rules: dict) -> "tuple[list[tuple[str, str, bytes]], list[str]]":
    """The regular files under `out_dir` within the rules, as (name, media type, bytes),
    and a "name: why" note for each one left out. Nothing is followed: no symbolic link
    (fwalk and O_NOFOLLOW, against a swap while reading), no hard link to another file."""
    collected: list[tuple[str, str, bytes]] = []
    skipped: list[str] = []
    if not os.path.isdir(out_dir) or os.path.islink(out_dir):
        return collected, skipped
    total = 0
    for dirpath, _dirs, names, dir_fd in os.fwalk(out_dir, follow_symlinks=False):
        for name in sorted(names):
            relative = os.path.relpath(os.path.join(dirpath, name), out_dir)
            data, why = _read_output(name, dir_fd, rules, len(collected), total)
            if data is None:
                skipped.append(f"{relative}: {why}")
                continue
            extension = os.path.splitext(name)[1].lower()
            collected.append((relative, rules["media_types"][extension], data))
            total += len(data)
    return collected, skipped


def _read_output(
    name: str, dir_fd: int, rules: dict, count: int, total: int
) -> "tuple[bytes | None, str | None]":
    """(bytes, None) for a file to return, or (None, why it is skipped)."""
    extension = os.path.splitext(name)[1].lower()
    if extension not in rules["media_types"]:
        return None, f"type not allowed ({extension or 'no extension'})"
    info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        return None, "not a regular file"
    if info.st_size > rules["file_limit"]:
        return None, f"{info.st_size} bytes, over the {rules['file_limit']} bytes limit per file"
    if count >= rules["max_files"]:
        return None, f"more than {rules['max_files']} files"
    if total + info.st_size > rules["total_limit"]:
        return None, f"over the {rules['total_limit']} bytes limit for all files"
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as f:
        data = f.read(info.st_size + 1)
    if len(data) != info.st_size:
        return None, "changed while it was read"
    return data, None
