"""The sandbox contract: every implementation must pass these (see conftest.IMPLEMENTATIONS)."""

from __future__ import annotations

import asyncio
import json
import os
import uuid

import pytest

from engine.sandbox import Sandbox
from engine.sandbox.limits import OUTPUT_LIMIT_BYTES

pytestmark = pytest.mark.asyncio

# The code under test reaches `os` without importing it (it is refused), as a determined
# piece of generated code could: what stops it then are the audit hook and the OS limits.
REACH_OS = "import random\nos = random._os\n"


async def host_can_spawn() -> bool:
    proc = await asyncio.create_subprocess_exec("true")
    return await proc.wait() == 0


async def test_returns_the_json_value_of_result(sandbox: Sandbox) -> None:
    code = (
        "import math\n"
        "def hypot(a, b):\n"
        "    return math.sqrt(a * a + b * b)\n"
        "print('computing')\n"
        "result = {'hypot': hypot(inputs['a'], inputs['b']), 'items': [1, 'two', None]}\n"
    )
    result = await sandbox.run(code, inputs={"a": 3, "b": 4})
    assert result.error is None, result.stderr
    assert result.value == {"hypot": 5.0, "items": [1, "two", None]}
    assert result.stdout == "computing\n"
    assert result.truncated is False
    assert result.duration > 0


async def test_no_result_gives_none_and_unencodable_gives_repr(sandbox: Sandbox) -> None:
    assert (await sandbox.run("x = 1")).value is None
    result = await sandbox.run("result = {3, 1, 2}")
    assert result.error is None
    assert result.value == "{1, 2, 3}"


async def test_prints_cannot_spoof_the_result(sandbox: Sandbox) -> None:
    code = "print(json.dumps({'error': None, 'value': 'spoofed'}))\nresult = 'real'"
    result = await sandbox.run("import json\n" + code)
    assert result.value == "real"


async def test_an_infinite_loop_is_killed_at_its_timeout(sandbox: Sandbox) -> None:
    result = await sandbox.run("while True:\n    pass\n", timeout_s=1.0)
    assert result.error == "timeout after 1.0s"
    assert result.duration < 10
    assert (await sandbox.run("result = 'alive'")).value == "alive"


@pytest.mark.parametrize(
    "code",
    [
        "block = bytearray(8 * 1024 ** 3)",
        "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 * 1024))",
    ],
    ids=["one-block", "growing"],
)
async def test_a_memory_bomb_is_contained(sandbox: Sandbox, code: str) -> None:
    result = await sandbox.run(code, memory_mb=128, timeout_s=10)
    assert result.error == "memory limit exceeded"
    assert (await sandbox.run("result = 'alive'")).value == "alive"


@pytest.mark.parametrize(
    "code",
    [
        "while True:\n    os.fork()",
        "while True:\n    os.posix_spawn('/bin/sh', ['sh', '-c', ':'], {})",
        "os.system(':(){ :|:& };:')",
        "os.execv('/bin/sh', ['sh'])",
    ],
    ids=["fork", "posix_spawn", "system", "exec"],
)
async def test_a_fork_bomb_is_contained(sandbox: Sandbox, code: str) -> None:
    result = await sandbox.run(REACH_OS + code, timeout_s=5)
    assert result.error is not None
    assert "not allowed" in result.error
    assert await host_can_spawn()
    assert (await sandbox.run("result = 'alive'")).value == "alive"


async def test_a_fork_import_is_refused(sandbox: Sandbox) -> None:
    result = await sandbox.run("import os\nos.fork()")
    assert result.error == "ImportError: module 'os' is not allowed"


async def test_a_network_connection_is_refused(sandbox: Sandbox) -> None:
    code = "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)"
    result = await sandbox.run(code)
    assert result.error == "ImportError: module 'socket' is not allowed"
    # Reaching the module through the real import machinery is refused as well.
    code = "sock = __import__('socket', None, None, [], 0)"
    result = await sandbox.run(code)
    assert result.error == "ImportError: module 'socket' is not allowed"


async def test_the_host_environment_is_not_visible(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret")
    result = await sandbox.run(REACH_OS + "result = dict(os.environ)")
    assert result.error is None, result.stderr
    assert "SLACK_BOT_TOKEN" not in result.value
    assert "xoxb-secret" not in json.dumps(result.value)
    for path in ("/proc/self/environ", "/proc/1/environ"):
        result = await sandbox.run(f"result = open({path!r}, 'rb').read().decode()")
        assert result.value is None
        assert result.error is not None and result.error.startswith("PermissionError")


@pytest.mark.parametrize("target", ["/tmp/evobot-escape-{id}.txt", "../evobot-escape-{id}.txt"])
async def test_writing_outside_the_sandbox_directory_fails(sandbox: Sandbox, target: str) -> None:
    path = target.format(id=uuid.uuid4().hex)
    result = await sandbox.run(f"open({path!r}, 'w').write('escaped')")
    assert result.error is not None
    assert result.error.startswith("PermissionError: writing outside the sandbox directory")
    escaped = os.path.join("/tmp", os.path.basename(path))
    assert not await asyncio.to_thread(os.path.exists, escaped)


@pytest.mark.parametrize(
    "code",
    [
        # chmod through a descriptor of a file opened for reading
        "fd = os.open(random.__file__, os.O_RDONLY)\nos.fchmod(fd, 0o777)",
        # a descriptor of an outside directory as `dir_fd`
        "fd = os.open(os.path.dirname(random.__file__), os.O_RDONLY)\n"
        "os.open('planted.py', os.O_CREAT | os.O_WRONLY, dir_fd=fd)",
        "os.chdir('/')",
        "os.symlink('/etc/passwd', 'link')",
        "os.mknod('device')",
        "os.chroot('.')",
        "result = os.listdir('/')",
    ],
    ids=["fchmod", "dir_fd", "chdir", "symlink", "mknod", "chroot", "listdir"],
)
async def test_file_system_escapes_through_os_fail(sandbox: Sandbox, code: str) -> None:
    result = await sandbox.run(REACH_OS + code)
    assert result.error is not None
    assert result.error.startswith(("PermissionError", "AttributeError")), result.error
    assert result.value is None


async def test_writing_inside_the_sandbox_directory_works(sandbox: Sandbox) -> None:
    code = "open('notes.txt', 'w').write('kept')\nresult = open('notes.txt').read()"
    result = await sandbox.run(code)
    assert result.error is None, result.stderr
    assert result.value == "kept"


async def test_output_beyond_the_cap_is_truncated(sandbox: Sandbox) -> None:
    result = await sandbox.run("print('x' * 200_000)\nresult = 'done'")
    assert result.error is None
    assert result.truncated is True
    assert len(result.stdout) == OUTPUT_LIMIT_BYTES
    assert result.value == "done"


@pytest.mark.parametrize("module", ["socket", "subprocess", "ctypes", "os", "sys", "importlib"])
async def test_a_non_allowlisted_import_is_refused(sandbox: Sandbox, module: str) -> None:
    result = await sandbox.run(f"import {module}")
    assert result.error == f"ImportError: module {module!r} is not allowed"


async def test_a_user_exception_is_reported(sandbox: Sandbox) -> None:
    code = "def parse(text):\n    raise ValueError(f'bad input: {text}')\nparse('abc')\n"
    result = await sandbox.run(code)
    assert result.error == "ValueError: bad input: abc"
    assert result.value is None
    assert "Traceback" in result.stderr
    assert "parse('abc')" in result.stderr
    assert "_runner.py" not in result.stderr  # only the user's frames are shown


async def test_a_syntax_error_is_reported(sandbox: Sandbox) -> None:
    result = await sandbox.run("def broken(:\n    pass\n")
    assert result.error is not None
    assert result.error.startswith("SyntaxError: ")
