"""The local sandbox: one fresh, limited Python subprocess per run.

Layers, outermost first:

- a fresh temporary directory as working directory, removed afterwards;
- ``python -I -S -B``: isolated mode, no site-packages (no ``.pth`` code of the host's
  environment runs, and start-up is about four times faster), no bytecode writes;
- an empty environment: the host's secrets are not inherited;
- ``resource`` limits set in the child before exec: CPU seconds, address space, file size,
  process count, open files, no core dumps;
- its own session, so a wall-clock timeout kills the whole process group;
- stdout/stderr capped (``truncated`` set when cut);
- where the host allows it (probed once): new user + network (+ pid + mount) namespaces
  and, when the host runs as root, the ``nobody`` user (so that RLIMIT_NPROC applies: the
  kernel does not enforce it for root; this needs an interpreter ``nobody`` can run);
- where the kernel has it, Landlock, set by the runner on itself: read-write in the sandbox
  directory, read-only in the interpreter's and system library paths, nothing else;
- in every case the runner's audit hook (see ``_runner.py``): no sockets, no process
  creation, no ctypes, only allowlisted imports, no file access outside the sandbox directory.

Code that imports the data libraries (see ``data.py``) gets them from the host's
environment, loaded by the runner before Landlock and the hook; only their own packages
become readable. Input files are written into the directory read-only before the start;
the files left in ``out/`` are collected after the process group is dead, before the
directory is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.ports import InputFiles
from engine.sandbox import _runner
from engine.sandbox._launcher import collect_outputs, kill_group
from engine.sandbox.data import DataSite, data_imports, find_data_site, memory_for
from engine.sandbox.files import input_files_problem, write_inputs
from engine.sandbox.limits import (
    DEFAULT_ALLOWED_MODULES,
    OUTPUT_DIR,
    OUTPUT_LIMIT_BYTES,
    RESULT_LIMIT_BYTES,
)
from engine.sandbox.runs import (
    OUTPUT_RULES,
    Finished,
    interpret,
    job_json,
    parse_result,
    rlimits,
    sandbox_files,
)
from engine.types import SandboxResult

RUNNER_PATH = str(Path(_runner.__file__).resolve())
NOBODY = 65534  # the conventional overflow uid/gid
PROBE_TIMEOUT_S = 10.0
READ_CHUNK = 4096
DRAIN_GRACE_S = 1.0  # after the kill, how long to wait for the pipes to close


# Namespaces: user (unprivileged), net (no interface but a down loopback), and, where
# possible, pid + mount with a fresh /proc: the host's processes (and their environments)
# are invisible, and when the sandbox's first process dies the kernel kills every process
# left in the namespace, even one that left the process group.
FULL_NAMESPACES = (
    "--user", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--"
)
NETWORK_NAMESPACES = ("--user", "--net", "--")


@dataclass(frozen=True)
class Isolation:
    """How sandbox processes are started on this host."""

    prefix: tuple[str, ...] = ()  # e.g. ("/usr/bin/unshare", "--user", "--net", "--")
    user: int | None = None  # uid and gid to run as; only when the host runs as root
    landlock: bool = False  # the runner could put a file system allowlist on itself

    @property
    def features(self) -> list[str]:
        features = ["rlimits", "process-group-kill", "audit-hook", "empty-env"]
        if "--net" in self.prefix:
            features.append("user+net-namespace")
        if "--pid" in self.prefix:
            features.append("pid+mount-namespace")
        if self.user is not None:
            features.append(f"uid-{self.user}")
        if self.landlock:
            features.append("landlock")
        return features


def isolation_candidates() -> list[Isolation]:
    """Strongest first; the first one that runs a trivial job is used."""
    prefixes: list[tuple[str, ...]] = []
    unshare = shutil.which("unshare")
    if unshare is not None:
        prefixes += [(unshare, *FULL_NAMESPACES), (unshare, *NETWORK_NAMESPACES)]
    prefixes.append(())
    users: list[int | None] = [NOBODY, None] if os.geteuid() == 0 else [None]
    return [Isolation(prefix=prefix, user=user) for user in users for prefix in prefixes]


@dataclass(frozen=True)
class Run:
    """One run as the host prepares it."""

    code: str
    timeout_s: float
    memory_mb: int  # the address space limit, data libraries included
    inputs: dict[str, Any] = field(default_factory=dict)
    files: InputFiles = field(default_factory=dict)
    data: dict[str, Any] | None = None  # the runner's `data` section, for data imports


class CappedBuffer:
    """Keeps the first `limit` bytes of a stream and drains the rest (the child never blocks)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.truncated = False

    async def drain(self, stream: asyncio.StreamReader | None) -> None:
        if stream is None:
            return
        while chunk := await stream.read(READ_CHUNK):
            room = self.limit - len(self.data)
            if len(chunk) > room:
                self.truncated = True
            self.data += chunk[: max(room, 0)]

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


class LocalSandbox:
    name = "local"

    def __init__(
        self,
        *,
        allowed_modules: frozenset[str] = DEFAULT_ALLOWED_MODULES,
        output_limit: int = OUTPUT_LIMIT_BYTES,
        result_limit: int = RESULT_LIMIT_BYTES,
        max_processes: int = 32,
        max_open_files: int = 64,
        max_file_mb: int = 16,
        python: str = sys.executable,
    ) -> None:
        self.allowed_modules = allowed_modules
        self.output_limit = output_limit
        self.result_limit = result_limit
        self.max_processes = max_processes
        self.max_open_files = max_open_files
        self.max_file_mb = max_file_mb
        self.python = python
        self._isolation: Isolation | None = None
        self._probe_lock = asyncio.Lock()

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
        if problem is not None:  # nothing is written, nothing runs
            return SandboxResult(error=problem, duration=time.monotonic() - started)
        isolation = await self.isolation()
        imports = data_imports(code)
        site = await self.data_site() if imports else None
        run = Run(
            code, timeout_s, memory_for(memory_mb, imports), inputs or {}, files or {},
            data=site.job(imports) if site is not None else None,
        )
        finished = await self._run(run, isolation)
        return interpret(finished, timeout_s, time.monotonic() - started)

    async def isolation(self) -> Isolation:
        """The strongest isolation this host supports, probed on first use."""
        async with self._probe_lock:
            if self._isolation is None:
                self._isolation = await self._probe()
        return self._isolation

    async def data_site(self) -> DataSite | None:
        """Where this host has the data libraries, probed once per process (data.py)."""
        async with self._probe_lock:  # concurrent first runs wait for one probe
            return await find_data_site(self.python)

    async def _probe(self) -> Isolation:
        for candidate in isolation_candidates():
            try:
                finished = await self._run(Run("result = 1", PROBE_TIMEOUT_S, 256), candidate)
            except OSError:  # e.g. the interpreter is not executable for the sandbox user
                continue
            reported = parse_result(finished.result_text) or {}
            if reported.get("error") is None and reported.get("value") == 1:
                return replace(candidate, landlock=reported.get("landlock") is True)
        return Isolation()  # rlimits + audit hook still apply; a failure will show on run

    async def _run(self, run: Run, isolation: Isolation) -> Finished:
        workdir = tempfile.mkdtemp(prefix="evobot-sandbox-")
        try:
            await asyncio.to_thread(self._prepare, workdir, run, isolation)
            finished = await self._execute(workdir, run.timeout_s, isolation)
            # The process group is dead: what is in out/ now is what the code left there.
            collected, skipped = await asyncio.to_thread(
                collect_outputs, os.path.join(workdir, OUTPUT_DIR), OUTPUT_RULES
            )
            return replace(finished, files=sandbox_files(collected), files_skipped=skipped)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, ignore_errors=True)

    def _prepare(self, workdir: str, run: Run, isolation: Isolation) -> None:
        job = job_json(
            run.inputs, self.allowed_modules, self.result_limit,
            limits=self._rlimits(run.timeout_s, run.memory_mb),
            data=run.data, read_only=sorted(run.files),
        )
        Path(workdir, _runner.JOB_FILE).write_text(job, encoding="utf-8")
        Path(workdir, _runner.CODE_FILE).write_text(run.code, encoding="utf-8")
        write_inputs(workdir, run.files)
        if isolation.user is not None:
            os.chown(workdir, isolation.user, isolation.user)

    def _rlimits(self, timeout_s: float, memory_mb: int) -> list[int]:
        return rlimits(
            timeout_s,
            memory_mb,
            file_mb=self.max_file_mb,
            processes=self.max_processes,
            open_files=self.max_open_files,
        )

    async def _start(self, workdir: str, isolation: Isolation) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *isolation.prefix, self.python, "-I", "-S", "-B", RUNNER_PATH,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=workdir,
            env={},
            start_new_session=True,
            # No preexec_fn: Python code between fork and exec can deadlock in a threaded host
            # (chromadb, onnxruntime, the RQ worker thread). The runner sets the rlimits as
            # its first act, before any untrusted code runs.
            user=isolation.user,
            group=isolation.user,
            extra_groups=[] if isolation.user is not None else None,
        )

    async def _execute(self, workdir: str, timeout_s: float, isolation: Isolation) -> Finished:
        proc = await self._start(workdir, isolation)
        stdout, stderr = CappedBuffer(self.output_limit), CappedBuffer(self.output_limit)
        readers = asyncio.gather(stdout.drain(proc.stdout), stderr.drain(proc.stderr))
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            timed_out = True
        finally:
            # Also on success or cancellation: nothing the code started may outlive the run.
            kill_group(proc.pid)
            await proc.wait()
        # A process that escaped the group would hold a pipe open: keep what was read.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(readers, DRAIN_GRACE_S)
        return Finished(
            returncode=proc.returncode,
            timed_out=timed_out,
            stdout=stdout.text(),
            stderr=stderr.text(),
            truncated=stdout.truncated or stderr.truncated,
            result_text=None if timed_out else read_result(workdir),
        )


def read_result(workdir: str) -> str | None:
    try:
        return Path(workdir, _runner.RESULT_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
