"""LocalSandbox specifics: the isolation it probes, its limits, its clean-up."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from engine.sandbox import DEFAULT_ALLOWED_MODULES, LocalSandbox, _runner
from engine.sandbox._launcher import collect_outputs, data_layout
from engine.sandbox.data import data_imports
from engine.sandbox.limits import DATA_DISTRIBUTIONS
from engine.sandbox.local import RUNNER_PATH
from engine.sandbox.runs import OUTPUT_RULES

THIS_FILE = str(Path(__file__).resolve())  # a host file the sandbox must not read
CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2).close()\n"
    "    print('connected')\n"
    "except OSError as exc:\n"
    "    print('refused', exc)\n"
)


def user_namespaces_work() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe = subprocess.run([unshare, "--user", "--net", "--", "true"], capture_output=True)
    return probe.returncode == 0


def runner_processes() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if RUNNER_PATH.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.mark.asyncio
async def test_the_probe_picks_the_namespaces_when_the_kernel_allows_them() -> None:
    isolation = await LocalSandbox().isolation()
    assert "audit-hook" in isolation.features
    assert bool(isolation.prefix) == user_namespaces_work()


@pytest.mark.asyncio
async def test_the_network_namespace_cuts_off_even_the_hosts_loopback() -> None:
    # Outside the audit hook on purpose: this checks the OS layer on its own.
    isolation = await LocalSandbox().isolation()
    if not isolation.prefix:
        pytest.skip("this kernel does not allow user namespaces")
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = str(server.sockets[0].getsockname()[1])
    try:
        for prefix, expected in (((), "connected"), (isolation.prefix, "refused")):
            proc = await asyncio.create_subprocess_exec(
                *prefix, sys.executable, "-I", "-c", CONNECT, port,
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await proc.communicate()
            assert out.decode().startswith(expected)
    finally:
        server.close()
        await server.wait_closed()


# Run through the namespaces only (no runner): forks a child that leaves the process group
# and would sleep on; the parent (pid 1 of the namespace) exits at once.
ESCAPE = (
    "import os, sys\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    os.execv('/bin/sleep', ['sleep', sys.argv[1]])\n"
)


def processes_with_arg(arg: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if arg.encode() in (entry / "cmdline").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.asyncio
async def test_the_pid_namespace_hides_the_host_and_takes_every_process_down() -> None:
    isolation = await LocalSandbox().isolation()
    if "--pid" not in isolation.prefix:
        pytest.skip("this kernel does not allow pid + mount namespaces here")
    listing = await asyncio.create_subprocess_exec(
        *isolation.prefix, sys.executable, "-I", "-c",
        "import os; print(sorted(p for p in os.listdir('/proc') if p.isdigit()))",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await listing.communicate()
    assert out.decode().strip() == "['1']"

    marker = "31.4159"  # a unique `sleep` argument to find the escaped child by
    escape = await asyncio.create_subprocess_exec(
        *isolation.prefix, sys.executable, "-I", "-c", ESCAPE, marker
    )
    await escape.wait()
    for _ in range(250):  # the kernel reaps the namespace asynchronously
        if not processes_with_arg(marker):
            break
        await asyncio.sleep(0.02)
    assert processes_with_arg(marker) == []


TAMPER = """
import random
os = random._os
try:
    open('/tmp/evobot-tamper', 'w')
except PermissionError as exc:  # reach the hook's frame and switch its checks off
    tb = exc.__traceback__
    while tb.tb_next:
        tb = tb.tb_next
    tb.tb_frame.f_globals['_inside'] = lambda path, roots: True
outcomes = []
for path, mode in [('/tmp/evobot-tamper', 'w'), ('/etc/hostname', 'r'), (PROJECT_FILE, 'r')]:
    try:
        open(path, mode)
        outcomes.append('opened ' + path)
    except OSError as exc:
        outcomes.append(type(exc).__name__)
result = outcomes
"""


@pytest.mark.asyncio
async def test_landlock_holds_even_when_the_audit_hook_is_tampered_with() -> None:
    sandbox = LocalSandbox()
    if not (await sandbox.isolation()).landlock:
        pytest.skip("this kernel has no Landlock")
    code = TAMPER.replace("PROJECT_FILE", repr(THIS_FILE))
    result = await sandbox.run(code)
    assert result.error is None, result.stderr
    assert result.value == ["PermissionError"] * 3
    assert not await asyncio.to_thread(Path("/tmp/evobot-tamper").exists)


LANDLOCKED = """
import os, socket, sys, tempfile
sys.path.insert(0, os.path.dirname(RUNNER))
import _runner
workdir, outside = tempfile.mkdtemp(), tempfile.mkdtemp()
print(_runner.restrict_filesystem(workdir))
for attempt in (
    lambda: open(os.path.join(workdir, 'inside.txt'), 'w').write('ok'),
    lambda: open(os.path.join(outside, 'outside.txt'), 'w'),
    lambda: open(PROJECT_FILE).read(),
    lambda: socket.create_connection(('127.0.0.1', PORT), timeout=2),
    lambda: os.kill(os.getppid(), 0),
):
    try:
        attempt()
        print('allowed')
    except OSError as exc:
        print('refused', exc.errno)
"""


@pytest.mark.asyncio
async def test_landlock_alone_walls_files_network_and_signals() -> None:
    # The runner's Landlock set-up on its own, without the audit hook or namespaces.
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    code = (
        LANDLOCKED.replace("RUNNER", repr(RUNNER_PATH))
        .replace("PROJECT_FILE", repr(THIS_FILE))
        .replace("PORT", str(port))
    )
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-c", code, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
    finally:
        server.close()
        await server.wait_closed()
    lines = out.decode().split("\n")
    if lines[0] != "True":
        pytest.skip("this kernel has no Landlock")
    # read-write inside; no write outside, no read of the project, no TCP, no signals out
    assert lines[1:6] == ["allowed", "refused 13", "refused 13", "refused 13", "refused 1"]


def test_apply_limits_sets_every_rlimit() -> None:
    show = (
        "import resource as r\n"
        "names = ['CPU', 'AS', 'FSIZE', 'NPROC', 'NOFILE', 'CORE']\n"
        "print([r.getrlimit(getattr(r, 'RLIMIT_' + n))[0] for n in names])"
    )
    limits = [3, 512 * 1024 * 1024, 1024 * 1024, 16, 32]
    # the runner applies the limits itself (a preexec_fn can deadlock a threaded host)
    runner_dir = str(Path(_runner.__file__).parent)
    apply = f"import sys; sys.path.insert(0, {runner_dir!r}); from _runner import apply_limits\n"
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"{apply}apply_limits(*{limits})\n{show}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == str([*limits, 0])
    assert resource.getrlimit(resource.RLIMIT_CPU)[0] == resource.RLIM_INFINITY  # host untouched


@pytest.mark.asyncio
async def test_every_allowlisted_module_works() -> None:
    imports = "\n".join(f"import {name}" for name in sorted(DEFAULT_ALLOWED_MODULES))
    uses = (
        "result = [\n"
        "    datetime.datetime.strptime('2024-05-01', '%Y-%m-%d').isoformat(),\n"
        "    str(datetime.datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo('Europe/Paris'))),\n"
        "    len(str(uuid.uuid4())),\n"
        "    statistics.median([3, 1, 2]),\n"
        "    str(decimal.Decimal('1.10') + 1),\n"
        "    hashlib.sha256(b'x').hexdigest()[:8],\n"
        "    calendar.isleap(2024),\n"
        "    pprint.pformat(dataclasses.make_dataclass('P', ['x'])(1)),\n"
        "    random.Random(1).randint(1, 6),\n"
        "]\n"
    )
    result = await LocalSandbox().run(imports + "\n" + uses)
    assert result.error is None, result.stderr
    assert result.value[0] == "2024-05-01T00:00:00"
    assert result.value[1] == "2024-01-01 00:00:00+01:00"


@pytest.mark.asyncio
async def test_a_relative_import_is_refused() -> None:
    result = await LocalSandbox().run("from . import secrets")
    assert result.error == "ImportError: relative imports are not allowed in the sandbox"


@pytest.mark.asyncio
async def test_the_allowlist_is_configurable() -> None:
    sandbox = LocalSandbox(allowed_modules=frozenset({"math"}))
    assert (await sandbox.run("import math\nresult = math.floor(2.5)")).value == 2
    result = await sandbox.run("import json")
    assert result.error == "ImportError: module 'json' is not allowed"


@pytest.mark.asyncio
async def test_the_sandbox_directory_is_fresh_and_removed() -> None:
    sandbox = LocalSandbox()
    first = await sandbox.run("open('left.txt', 'w').write('x')\nresult = __file__")
    second = await sandbox.run(
        "import random\nresult = [__file__, sorted(random._os.listdir('.'))]"
    )
    assert first.error is None and second.error is None, second.stderr
    assert first.value != second.value[0]
    assert second.value[1] == ["main.py", "out", "result.json"]  # the job file is already gone
    assert not Path(first.value).parent.exists()


@pytest.mark.asyncio
async def test_a_cancelled_run_leaves_no_process_behind() -> None:
    sandbox = LocalSandbox()
    await sandbox.isolation()  # probe first: only the run below starts a runner from here on
    task = asyncio.create_task(sandbox.run("while True:\n    pass\n", timeout_s=60))
    try:
        for _ in range(600):  # wait until the runner is up (the machine may be busy)
            if runner_processes():
                break
            await asyncio.sleep(0.05)
        assert runner_processes()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert runner_processes() == []


@pytest.mark.asyncio
async def test_runs_in_parallel() -> None:
    sandbox = LocalSandbox()
    results = await asyncio.gather(
        *(sandbox.run("result = inputs['i'] * 2", inputs={"i": i}) for i in range(12))
    )
    assert [r.value for r in results] == [i * 2 for i in range(12)]


@pytest.mark.asyncio
async def test_a_too_large_result_is_an_error() -> None:
    result = await LocalSandbox(result_limit=1000).run("result = 'x' * 5000")
    assert result.value is None
    assert result.error == "result too large: 5002 bytes (limit 1000)"


# --- the data libraries and files ---------------------------------------------------------

SITE_FILE_OUTSIDE_THE_LIBRARIES = str(Path(pytest.__file__).resolve())  # site-packages too

DATA_TAMPER = """
import pandas as pd
import random
os = random._os
try:
    open('/tmp/evobot-tamper', 'w')
except PermissionError as exc:  # reach the hook's frame and switch its checks off
    tb = exc.__traceback__
    while tb.tb_next:
        tb = tb.tb_next
    tb.tb_frame.f_globals['_inside'] = lambda path, roots: True
outcomes = []
for path in (OUTSIDE, PROJECT_FILE, pd.__file__):
    try:
        open(path).read(10)
        outcomes.append('read')
    except OSError as exc:
        outcomes.append(type(exc).__name__)
result = outcomes
"""


@pytest.mark.asyncio
async def test_landlock_opens_only_the_data_libraries_not_the_rest_of_the_site() -> None:
    sandbox = LocalSandbox()
    if not (await sandbox.isolation()).landlock:
        pytest.skip("this kernel has no Landlock")
    code = DATA_TAMPER.replace("OUTSIDE", repr(SITE_FILE_OUTSIDE_THE_LIBRARIES)).replace(
        "PROJECT_FILE", repr(THIS_FILE)
    )
    result = await sandbox.run(code, timeout_s=30)
    assert result.error is None, result.stderr
    assert result.value == ["PermissionError", "PermissionError", "read"]


@pytest.mark.asyncio
async def test_pandas_reports_come_back_as_xlsx_and_markdown() -> None:
    code = (
        "import pandas as pd\n"
        "df = pd.DataFrame({'region': ['north', 'south'], 'revenue': [12.5, 10.0]})\n"
        "df.to_excel('out/report.xlsx', index=False)\n"
        "open('out/report.md', 'w').write(df.to_markdown(index=False))\n"
        "result = pd.read_excel('out/report.xlsx').to_dict('list')\n"
    )
    result = await LocalSandbox().run(code, timeout_s=30)
    assert result.error is None, result.stderr
    assert result.value == {"region": ["north", "south"], "revenue": [12.5, 10.0]}
    files = {f.name: f for f in result.files}
    assert files["report.xlsx"].data.startswith(b"PK")  # a zip, as xlsx files are
    assert files["report.md"].data.decode().splitlines()[0].startswith("| region")


BIG_CSV_REPORT = """
import pandas as pd
import matplotlib.pyplot as plt
df = pd.read_csv('sales.csv')
df['revenue'] = df.units * df.price
by_region = df.groupby('region')['revenue'].sum()
by_region.plot.bar().figure.savefig('out/revenue.png')
result = {'rows': len(df), 'regions': len(by_region)}
"""


@pytest.mark.asyncio
async def test_the_default_memory_limit_holds_a_100k_row_csv_and_a_chart() -> None:
    rows = "".join(f"r{i % 7},{i % 50},{i % 13}.5\n" for i in range(100_000))
    csv = ("region,units,price\n" + rows).encode()
    result = await LocalSandbox().run(BIG_CSV_REPORT, files={"sales.csv": csv}, timeout_s=30)
    assert result.error is None, result.stderr
    assert result.value == {"rows": 100_000, "regions": 7}
    assert result.files[0].data.startswith(b"\x89PNG")


def test_outputs_that_are_links_or_not_regular_files_are_skipped(tmp_path: Path) -> None:
    # The hook refuses links and os.mkfifo is removed; Landlock alone (a tampered hook)
    # would not stop them, so the collection does not trust the directory either.
    out, outside = tmp_path / "out", tmp_path / "secret.txt"
    out.mkdir()
    outside.write_text("host secret")
    (out / "symlink.txt").symlink_to(outside)
    os.link(outside, out / "hardlink.txt")
    os.mkfifo(out / "pipe.txt")
    (out / "subdir").symlink_to(tmp_path)  # not followed: secret.txt is not found there
    (out / "fine.txt").write_text("fine")
    collected, skipped = collect_outputs(str(out), OUTPUT_RULES)
    assert collected == [("fine.txt", "text/plain", b"fine")]
    assert sorted(skipped) == [
        "hardlink.txt: not a regular file",
        "pipe.txt: not a regular file",
        "symlink.txt: not a regular file",
    ]


def test_the_data_layout_names_the_libraries_packages_only() -> None:
    layout = data_layout(list(DATA_DISTRIBUTIONS))
    assert layout is not None
    assert {"numpy", "pandas", "matplotlib", "PIL", "dateutil"} <= set(layout["modules"])
    assert "pytest" not in layout["modules"]
    site = str(Path(numpy.__file__).resolve().parent.parent)
    assert layout["sites"] == [site]
    assert os.path.join(site, "numpy") in layout["read_paths"]
    assert site not in layout["read_paths"]
    assert all(path.startswith(site + os.sep) for path in layout["read_paths"])


@pytest.mark.parametrize(
    ("code", "imports"),
    [
        ("import pandas as pd\nimport json", ["pandas"]),
        ("from matplotlib import pyplot as plt\nimport numpy.linalg", ["matplotlib", "numpy"]),
        ("def f():\n    import pandas\n    return pandas", ["pandas"]),
        ("import json\nresult = 1", []),
        ("pd = __import__('pandas')", []),  # not an import statement: the import fails
        ("from . import pandas", []),
        ("import pandas as", []),  # a syntax error: the runner reports it
    ],
)
def test_data_imports_reads_the_import_statements(code: str, imports: list[str]) -> None:
    assert data_imports(code) == imports
