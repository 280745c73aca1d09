"""Starts `_runner.py` in a limited subprocess from inside a remote sandbox (E2B).

``E2BSandbox`` sends this module's source, followed by a call to ``launch(...)``, as one
code cell: the remote kernel runs it and the call's return value (a JSON envelope) comes
back as the cell's result, apart from the user's prints. This gives the remote sandbox the
same convention and the same limits as the local one (allowlist, audit hook, rlimits,
timeout, output cap), with E2B's VM as the outer wall.

It runs in someone else's interpreter, so it is synchronous, stdlib only and self-contained
(no ``from __future__`` either: a cell may not start with it after this docstring).
The rlimits travel in ``job.json``; the runner sets them before any untrusted code runs.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile


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
) -> str:
    """Runs the code once; returns the envelope the host turns into a SandboxResult."""
    workdir = tempfile.mkdtemp(prefix="evobot-sandbox-")
    logdir = tempfile.mkdtemp(prefix="evobot-logs-")  # outside the code's reach
    try:
        job = json.loads(job_json)
        job["limits"] = limits  # applied by the runner itself: no preexec_fn (fork safety)
        files = (("runner.py", runner_source), ("job.json", json.dumps(job)), ("main.py", code))
        for name, text in files:
            with open(os.path.join(workdir, name), "w", encoding="utf-8") as f:
                f.write(text)
        out_path, err_path = os.path.join(logdir, "stdout"), os.path.join(logdir, "stderr")
        returncode, timed_out = _run_runner(workdir, out_path, err_path, timeout_s)
        stdout, stdout_cut = _read_capped(out_path, output_limit)
        stderr, stderr_cut = _read_capped(err_path, output_limit)
        return json.dumps({
            "returncode": returncode, "timed_out": timed_out, "stdout": stdout,
            "stderr": stderr, "truncated": stdout_cut or stderr_cut,
            "result_text": None if timed_out else _read_result(workdir),
        })
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
