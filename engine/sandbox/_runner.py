"""Bootstrap that runs one piece of untrusted code inside the local sandbox.

Started by ``LocalSandbox`` as ``python -I -S -B _runner.py`` with the fresh sandbox
directory as its working directory. It must stay self-contained (stdlib only, nothing
from ``engine``): it runs in a bare interpreter without site-packages.

Steps: read the job (``job.json``: inputs and the import allowlist) and the code
(``main.py``); open the result file; create ``out/``; for code that imports the data
libraries, load them as trusted code (see ``prepare_data``); put up Landlock and an audit
hook that refuses network, process creation, ctypes, non-allowlisted imports, file access
outside the sandbox and writes to the input files; run the code as ``__main__`` with
``inputs`` as a global; write ``{"error": ..., "value": ...}`` to the result file. The
result goes to its own file, not stdout, so user prints cannot spoof it.

The audit hook is a guard against accidents and casual misuse by generated code, and gives
clear error messages; determined code can tamper with it from inside the interpreter. The
walls it cannot pass are Landlock (set up here, before the code runs, where the kernel has
it) and what the host sets up: rlimits, process group kill, namespaces.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import posix
import sys
from collections.abc import Callable, Iterable
from typing import Any

JOB_FILE = "job.json"
CODE_FILE = "main.py"
RESULT_FILE = "result.json"
OUTPUT_DIR = "out"  # what the code leaves here is collected after the run
TMP_DIR = "tmp"  # TMPDIR, HOME and the matplotlib config of a data run
TRACEBACK_FRAMES = 8  # the last frames of a user exception go to stderr
# The interpreter's own import path, before a data run adds the data libraries' site
# directory: only the packages of those libraries become readable, not all of the site.
BASE_PATH = tuple(sys.path)

# Modules the interpreter and the allowlisted modules import internally. Refusing them
# would break e.g. `import dataclasses` (-> inspect -> importlib.machinery) or
# `datetime.strptime` (-> _strptime). User code still cannot import them directly:
# `guarded_import` below only lets it name modules of the user allowlist.
SUPPORT_MODULES = frozenset(
    {
        "__future__", "_abc", "_ast", "_bisect", "_blake2", "_codecs", "_collections",
        "_collections_abc", "_contextvars", "_csv", "_datetime", "_decimal", "_functools",
        "_hashlib", "_heapq", "_io", "_json", "_locale", "_md5", "_opcode", "_operator",
        "_pydecimal", "_random", "_sha1", "_sha256", "_sha3", "_sha512", "_sre", "_stat",
        "_statistics", "_string", "_strptime", "_struct", "_thread", "_typing", "_uuid",
        "_warnings", "_weakref", "_weakrefset", "_zoneinfo", "abc", "ast", "codecs",
        "contextvars", "copyreg", "dis", "encodings", "errno", "genericpath", "importlib",
        "inspect", "io", "linecache", "locale", "opcode", "os", "platform", "posixpath", "stat",
        "stringprep", "sysconfig", "token", "tokenize", "traceback", "warnings",
    }
)

# Standard library modules the data libraries import lazily, at call time, found by running
# real code under the hook (CSV and xlsx in and out, grouping, time zones, charts to PNG and
# SVG, to_markdown). User code cannot name them: its import statements take the allowlist.
DATA_SUPPORT_MODULES = frozenset(
    {
        "_bz2", "_compression", "_elementtree", "_lzma", "argparse", "bz2", "gc", "gettext",
        "gzip", "lzma", "ntpath", "pathlib", "plistlib", "pyexpat", "shlex", "shutil",
        "tempfile", "threading", "timeit", "unittest", "xml", "zipfile", "zlib",
    }
)
# One BLAS / OpenMP thread in a data run (RLIMIT_NPROC counts threads, and the machine is
# shared): set before the libraries load, as OpenBLAS reads them when it starts.
DATA_THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
)

# Default zoneinfo search path of CPython: zoneinfo reads tz files from there.
TZ_DIRS = ("/usr/share/zoneinfo", "/usr/lib/zoneinfo", "/usr/share/lib/zoneinfo", "/etc/zoneinfo")
# Where matplotlib finds system fonts (its own ship in its package); readable in a data run.
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")

PROCESS_EVENTS = frozenset(
    {
        "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
        "os.kill", "os.killpg", "subprocess.Popen", "pty.spawn", "os.startfile",
    }
)
# Events whose first argument (and second, for rename) is a path that gets modified.
PATH_WRITE_EVENTS = frozenset(
    {
        "os.chmod", "os.chown", "os.mkdir", "os.remove", "os.rename", "os.rmdir",
        "os.truncate", "os.utime", "os.chflags", "os.lchflags", "os.setxattr",
        "os.removexattr", "shutil.rmtree",
    }
)
PATH_READ_EVENTS = frozenset({"os.listdir", "os.scandir", "os.getxattr", "os.listxattr"})
DENIED_EVENTS = frozenset(
    {
        "os.symlink", "os.link",  # a link could point outside the sandbox directory
        # Relative paths are checked against the working directory; with `dir_fd` they
        # are relative to a directory inside the sandbox, which is then no less strict.
        "os.chdir",
        "resource.setrlimit", "resource.prlimit",  # limits are not negotiable
        "sys.addaudithook", "sys.unraisablehook", "syslog.openlog", "webbrowser.open",
    }
)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# os functions that raise no audit event and matter only to a privileged process (a host
# running as root where no user namespace is available): removed before the code runs.
UNAUDITED_OS_FUNCTIONS = (
    "chroot", "mknod", "mkfifo", "setuid", "setgid", "seteuid", "setegid", "setreuid",
    "setregid", "setresuid", "setresgid", "setgroups", "initgroups", "setns", "unshare",
)

# Landlock (Linux >= 5.13): a kernel-enforced file system allowlist the process puts on
# itself, irrevocably. The audit hook lives inside the interpreter, where determined code
# can tamper with it; this wall cannot be. Best effort: skipped where the kernel lacks it.
LANDLOCK_SYSCALLS = (444, 445, 446)  # create_ruleset, add_rule, restrict_self (all arches)
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38
LANDLOCK_FILE_RIGHTS = (1 << 0) | (1 << 1) | (1 << 2)  # execute, write file, read file
LANDLOCK_READ = (1 << 0) | (1 << 2) | (1 << 3)  # execute, read file, read dir
# Number of file system access rights each Landlock ABI version knows (1 << n) - 1.
LANDLOCK_RIGHTS_BY_ABI = {1: 13, 2: 14, 3: 15, 4: 15}
LANDLOCK_RIGHTS_LATEST = 16
# Readable besides the sandbox directory: the interpreter and the system libraries it
# loads (e.g. libcrypto for hashlib), time zones, the loader cache.
SYSTEM_READ_PATHS = (
    "/usr", "/lib", "/lib64", "/etc/ld.so.cache", "/etc/localtime", "/dev/null",
    "/dev/urandom",
)
SYSTEM_READABLE = (sys.prefix, sys.base_prefix, *TZ_DIRS, *SYSTEM_READ_PATHS)


def restrict_filesystem(workdir: str, read_paths: Iterable[str] = ()) -> bool:
    """Read-write in `workdir`, read-only in system paths and `read_paths`. True if done."""
    import ctypes

    class PathBeneath(ctypes.Structure):  # struct landlock_path_beneath_attr (packed)
        _pack_ = 1
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    create, add_rule, restrict = LANDLOCK_SYSCALLS
    abi = libc.syscall(create, None, ctypes.c_size_t(0), LANDLOCK_CREATE_RULESET_VERSION)
    if abi < 1:
        return False
    handled = (1 << LANDLOCK_RIGHTS_BY_ABI.get(abi, LANDLOCK_RIGHTS_LATEST)) - 1
    # struct landlock_ruleset_attr grew with the ABI: handled_access_fs, then
    # handled_access_net (v4: TCP bind + connect, all denied), then scoped (v6: abstract
    # unix sockets + signals to processes outside the sandbox, denied).
    fields = [handled] + ([0b11] if abi >= 4 else []) + ([0b11] if abi >= 6 else [])
    attr = (ctypes.c_uint64 * len(fields))(*fields)
    ruleset = libc.syscall(create, ctypes.byref(attr), ctypes.c_size_t(8 * len(fields)), 0)
    if ruleset < 0:
        return False
    try:
        readable = {*BASE_PATH, *SYSTEM_READABLE, *read_paths}
        rules = [(workdir, handled)] + [(path, LANDLOCK_READ) for path in sorted(readable)]
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # not on this system
            if not os.path.isdir(path):
                access &= LANDLOCK_FILE_RIGHTS  # a file takes file rights only
            rule = PathBeneath(allowed_access=access, parent_fd=fd)
            libc.syscall(add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0)
            os.close(fd)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return False
        return bool(libc.syscall(restrict, ruleset, 0) == 0)
    finally:
        os.close(ruleset)


def forget_ctypes() -> None:
    """The code must import ctypes itself to use it (refused); its calls are refused too."""
    for name in [m for m in sys.modules if m == "ctypes" or m.startswith(("ctypes.", "_ctypes"))]:
        del sys.modules[name]


def _inside(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root + os.sep) for root in roots)


class Policy:
    """What the audit hook lets through."""

    def __init__(
        self,
        workdir: str,
        allowed_modules: frozenset[str],
        *,
        support_modules: frozenset[str] = SUPPORT_MODULES,
        read_paths: Iterable[str] = (),
        read_only: Iterable[str] = (),
    ) -> None:
        self.workdir = os.path.realpath(workdir)
        self.allowed_modules = allowed_modules
        self.support_modules = support_modules
        readable = [p for p in (*BASE_PATH, *TZ_DIRS, *read_paths) if p]
        self.read_roots = (self.workdir, *(os.path.realpath(p) for p in readable))
        self.read_only = tuple(os.path.realpath(p) for p in read_only)

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "import":
            self.check_import(args[0])
        elif event == "open":
            self.check_open(args[0], args[1], args[2])
        elif event.startswith("socket."):
            raise PermissionError("network access is not allowed in the sandbox")
        elif event in PROCESS_EVENTS:
            raise PermissionError("starting or signalling processes is not allowed in the sandbox")
        elif event.startswith("ctypes."):
            raise PermissionError("ctypes is not allowed in the sandbox")
        elif event in PATH_WRITE_EVENTS:
            self.check_write(args[0])
            if event == "os.rename":
                self.check_write(args[1])
        elif event in PATH_READ_EVENTS:
            self.check_read(args[0])
        elif event in DENIED_EVENTS:
            raise PermissionError(f"{event} is not allowed in the sandbox")

    def check_import(self, name: str) -> None:
        top = name.partition(".")[0]
        if top in self.allowed_modules or top in self.support_modules:
            return
        if top.startswith("_sysconfigdata_"):  # platform-named module that sysconfig loads
            return
        raise ImportError(f"module {name!r} is not allowed")

    def check_open(self, path: object, mode: object, flags: object) -> None:
        writing = isinstance(flags, int) and bool(flags & WRITE_FLAGS)
        if isinstance(mode, str) and any(c in mode for c in "wax+"):
            writing = True
        if writing:
            self.check_write(path)
            return
        self.check_read(path)
        # A descriptor of an outside directory would let `dir_fd=` calls escape.
        resolved = self.resolve(path)
        if resolved is None or _inside(resolved, [self.workdir]):
            return
        if os.path.isdir(resolved):
            raise PermissionError(f"opening a directory outside the sandbox: {path}")

    def check_write(self, path: object) -> None:
        resolved = self.resolve(path)
        if resolved is None:
            return
        if not _inside(resolved, [self.workdir]):
            raise PermissionError(f"writing outside the sandbox directory is not allowed: {path}")
        # An input file, or a directory holding one (removing it would remove the input).
        if any(_inside(input_path, [resolved]) for input_path in self.read_only):
            raise PermissionError(f"the input files are read-only: {path}")

    def check_read(self, path: object) -> None:
        resolved = self.resolve(path)
        if resolved is not None and not _inside(resolved, self.read_roots):
            raise PermissionError(f"reading outside the sandbox directory is not allowed: {path}")

    def resolve(self, path: object) -> str | None:
        """Absolute real path of a path or descriptor; None for a pipe-like descriptor."""
        if path is None:
            path = "."
        if isinstance(path, int):
            # fchmod(fd) on a file opened for reading must be checked like chmod(path).
            try:
                target = os.readlink(f"/proc/self/fd/{path}")
            except OSError:
                return "/proc/self/fd"  # unknown: treated as outside the sandbox
            return target if target.startswith("/") else None  # "pipe:[…]" is no file
        return os.path.realpath(os.fsdecode(path))  # type: ignore[arg-type]


def guarded_import(allowed: frozenset[str], support: frozenset[str]) -> Callable[..., Any]:
    """`__import__` for user code: only allowlisted modules, even if already loaded.

    The audit hook only sees imports of modules not yet in sys.modules; `os`, `sys` and the
    runner's own imports are, so the import statements of user code are checked here.
    C code called from user code imports through this function too (`datetime.strptime`
    imports `_strptime`); it passes a list as `fromlist` (PyImport_Import), an import
    statement passes None or a tuple, so such lazy imports may use the support modules
    (numpy's C code imports its own submodules that way, from the user's frame).
    """
    real_import = __import__

    def _import(
        name: str,
        globals: dict[str, Any] | None = None,  # the signature of __import__
        locals: dict[str, Any] | None = None,
        fromlist: Any = None,
        level: int = 0,
    ) -> Any:
        if level != 0:
            raise ImportError("relative imports are not allowed in the sandbox")
        top = name.partition(".")[0]
        lazy_support_import = isinstance(fromlist, list) and top in support
        if top not in allowed and not lazy_support_import:
            raise ImportError(f"module {name!r} is not allowed")
        return real_import(name, globals, locals, fromlist, level)

    return _import


def user_globals(
    inputs: dict[str, Any], allowed: frozenset[str], support: frozenset[str], path: str
) -> dict[str, Any]:
    builtins_ns = dict(vars(builtins))
    builtins_ns["__import__"] = guarded_import(allowed, support)
    return {
        "__name__": "__main__",
        "__file__": path,
        "__builtins__": builtins_ns,
        "inputs": inputs,
    }


def prepare_data(data: dict[str, Any], workdir: str) -> tuple[frozenset[str], list[str]]:
    """Trusted set-up of a run that imports the data libraries, before the walls go up:
    environment, import path, font list, then the libraries themselves (their start-up
    probes threads, ctypes and files no wall would allow later). Returns the modules they
    may import lazily and the paths they may read."""
    tmp = os.path.join(workdir, TMP_DIR)
    mpl_config = os.path.join(tmp, "matplotlib")
    os.makedirs(mpl_config)
    os.environ.update(dict.fromkeys(DATA_THREAD_VARIABLES, "1"))
    # No display; matplotlib's config and cache, temporary files and ~ in the run directory.
    os.environ.update(MPLBACKEND="Agg", MPLCONFIGDIR=mpl_config, TMPDIR=tmp, HOME=tmp)
    fontlist = data.get("fontlist")
    if fontlist:  # prepared by the host: matplotlib need not scan the fonts on every run
        with open(os.path.join(mpl_config, os.path.basename(fontlist["name"])), "w") as f:
            f.write(fontlist["text"])
    sites = data.get("sites", [])
    sys.path.extend(sites)
    import importlib.machinery
    import mimetypes

    # List the site directories now: later, only the libraries' own packages are readable.
    importlib.machinery.PathFinder.find_spec("_evobot_no_such_module", sites)
    mimetypes.init(files=[])  # the built-in table only, not the host's /etc/mime.types
    for module in data.get("preload", []):
        with contextlib.suppress(ImportError):  # not installed: the code's import says so
            importlib.import_module(module)
    support = SUPPORT_MODULES | DATA_SUPPORT_MODULES | frozenset(data.get("modules", []))
    return support, [*data.get("read_paths", []), *FONT_DIRS]


def remove_unaudited_os_functions() -> None:
    for module in (os, posix):
        for name in UNAUDITED_OS_FUNCTIONS:
            if hasattr(module, name):
                delattr(module, name)


def describe(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "memory limit exceeded"
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def print_traceback(exc: BaseException) -> None:
    """The last frames of the user's code; the runner's own frames are left out."""
    try:
        import traceback  # only when needed: it adds to every start-up otherwise

        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
        lines = ["Traceback (most recent call last):\n"]
        lines += traceback.format_list(frames[-TRACEBACK_FRAMES:])
        lines += traceback.format_exception_only(type(exc), exc)
        sys.stderr.write("".join(lines))
    except BaseException:  # e.g. no memory left to format it
        sys.stderr.write(describe(exc) + "\n")


def run_user_code(code: str, namespace: dict[str, Any]) -> str | None:
    """Runs the code; returns None on success or the error message."""
    try:
        compiled = compile(code, namespace["__file__"], "exec")
        exec(compiled, namespace)
    except SystemExit as exc:
        if exc.code in (None, 0):
            return None
        return f"SystemExit: {exc.code}"
    except BaseException as exc:  # everything the code raises is its error
        print_traceback(exc)
        return describe(exc)
    return None


def encode_value(namespace: dict[str, Any], limit: int) -> tuple[str, str | None]:
    """JSON text of the `result` global (repr string if JSON cannot take it), and an error."""
    if "result" not in namespace:
        return "null", None
    value = namespace["result"]
    try:
        encoded = json.dumps(value)
    except MemoryError:
        return "null", "memory limit exceeded"
    except (TypeError, ValueError, RecursionError):
        try:
            encoded = json.dumps(repr(value))
        except BaseException:  # a user __repr__ may raise anything
            encoded = json.dumps(f"<unrepresentable {type(value).__name__}>")
    if len(encoded) > limit:
        return "null", f"result too large: {len(encoded)} bytes (limit {limit})"
    return encoded, None


def apply_limits(
    cpu_s: int, memory_bytes: int, file_bytes: int, processes: int, open_files: int
) -> None:
    """The host's rlimits, set before any untrusted code runs. Inside the user namespace
    the process can't raise a hard limit again (no CAP_SYS_RESOURCE in the host's)."""
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def put_up_walls(job: dict[str, Any], workdir: str) -> tuple[bool, frozenset[str]]:
    """Data set-up (trusted), then Landlock, then the audit hook. Returns whether Landlock
    is on and the support modules lazy imports may use."""
    os.mkdir(OUTPUT_DIR)
    support: frozenset[str] = SUPPORT_MODULES
    read_paths: list[str] = []
    if job.get("data") is not None:
        support, read_paths = prepare_data(job["data"], workdir)
    landlocked = restrict_filesystem(workdir, read_paths)
    forget_ctypes()
    remove_unaudited_os_functions()
    policy = Policy(
        workdir,
        frozenset(job["allowed_modules"]),
        support_modules=support,
        read_paths=read_paths,
        read_only=[os.path.join(workdir, name) for name in job.get("read_only", [])],
    )
    sys.addaudithook(policy.hook)
    return landlocked, support


def write_result(result_file: Any, error: str | None, encoded: str, landlocked: bool) -> None:
    """Overwrites whatever the code may have put in the result file."""
    result_file.seek(0)
    error_json, landlock_json = json.dumps(error), json.dumps(landlocked)
    result_file.write(f'{{"error": {error_json}, "value": {encoded}, "landlock": {landlock_json}}}')
    with contextlib.suppress(OSError):  # only needed if the code wrote there first
        result_file.truncate()
    result_file.close()


def main() -> None:
    workdir = os.getcwd()
    with open(JOB_FILE, encoding="utf-8") as f:
        job = json.load(f)
    with open(CODE_FILE, encoding="utf-8") as f:
        code = f.read()
    os.remove(JOB_FILE)  # the code has no business reading its own job description
    if job.get("limits"):
        apply_limits(*job["limits"])
    result_file = open(RESULT_FILE, "w", encoding="utf-8")  # noqa: SIM115 - kept to the end
    stdout, stderr = sys.stdout, sys.stderr
    allowed = frozenset(job["allowed_modules"])
    encoded, landlocked = "null", False
    try:
        landlocked, support = put_up_walls(job, workdir)
    except Exception as exc:  # e.g. no memory left to load the data libraries: nothing runs
        error: str | None = f"the sandbox could not start: {describe(exc)}"
    else:
        namespace = user_globals(job["inputs"], allowed, support, os.path.join(workdir, CODE_FILE))
        error = run_user_code(code, namespace)
        if error is None:
            encoded, error = encode_value(namespace, job["result_limit"])

    for stream in (sys.stdout, sys.stderr, stdout, stderr):
        with contextlib.suppress(BaseException):  # a broken stream must not lose the result
            stream.flush()
    write_result(result_file, error, encoded, landlocked)
    # Skip interpreter shutdown: no user finalizer runs after the result is written.
    os._exit(0)


if __name__ == "__main__":
    main()
