"""The sandbox contract for files: inputs in (read-only), out/ back (within the caps).
Every implementation must pass these (see conftest.IMPLEMENTATIONS)."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest

from engine.sandbox import Sandbox
from engine.sandbox.limits import (
    OUTPUT_FILE_COUNT,
    OUTPUT_FILE_LIMIT_BYTES,
    OUTPUT_TOTAL_LIMIT_BYTES,
)

pytestmark = pytest.mark.asyncio

REACH_OS = "import random\nos = random._os\n"  # as in test_contract: `os` itself is refused
MB = 1024 * 1024


async def test_input_files_are_readable_in_the_working_directory(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    host_file = tmp_path / "notes.txt"
    await asyncio.to_thread(host_file.write_text, "from a host path\n")
    files = {"data.csv": b"a,b\n1,2\n", "notes.txt": host_file}
    code = (
        REACH_OS + "result = [open('data.csv').read(), open('notes.txt').read(),"
        " oct(os.stat('data.csv').st_mode & 0o777)]"
    )
    result = await sandbox.run(code, files=files)
    assert result.error is None, result.stderr
    assert result.value == ["a,b\n1,2\n", "from a host path\n", "0o444"]  # read-only on disk


@pytest.mark.parametrize(
    "code",
    [
        "open('data.csv', 'w').write('changed')",
        "open('data.csv', 'a').write('more')",
        REACH_OS + "os.remove('data.csv')",
        REACH_OS + "os.rename('data.csv', 'moved.csv')",
        REACH_OS + "open('other.csv', 'w').close()\nos.replace('other.csv', 'data.csv')",
        REACH_OS + "os.chmod('data.csv', 0o666)",
        REACH_OS + "os.truncate('data.csv', 0)",
    ],
    ids=["write", "append", "remove", "rename", "replace", "chmod", "truncate"],
)
async def test_an_input_file_cannot_be_modified(
    sandbox: Sandbox, tmp_path: Path, code: str
) -> None:
    host_file = tmp_path / "data.csv"
    await asyncio.to_thread(host_file.write_bytes, b"a,b\n1,2\n")
    result = await sandbox.run(code + "\nresult = 'modified'", files={"data.csv": host_file})
    assert result.value is None
    assert result.error is not None
    assert result.error.startswith("PermissionError"), result.error
    assert await asyncio.to_thread(host_file.read_bytes) == b"a,b\n1,2\n"  # the host's copy


@pytest.mark.parametrize(
    "name",
    ["../escape-{id}.txt", "/tmp/escape-{id}.txt", "sub/escape-{id}.txt", ".hidden-{id}", "..",
     "", "x" * 101, "main.py", "out", "tab\t{id}"],
    ids=["parent", "absolute", "subdirectory", "dotfile", "dotdot", "empty", "too-long",
         "reserved-code", "reserved-out", "control-character"],
)
async def test_a_bad_input_name_is_an_error_and_nothing_runs(
    sandbox: Sandbox, name: str
) -> None:
    name = name.format(id=uuid.uuid4().hex)
    result = await sandbox.run("print('ran')", files={name: b"escaped"})
    assert result.error is not None
    assert result.error.startswith(f"input file {name!r} refused: ")
    assert result.stdout == ""
    escaped = os.path.join("/tmp", os.path.basename(name))
    if name.startswith(("../", "/tmp/")):
        assert not await asyncio.to_thread(os.path.exists, escaped)


async def test_files_left_in_out_come_back(sandbox: Sandbox) -> None:
    code = (
        "import json\n"
        "open('out/report.md', 'w').write('# Report\\n')\n"
        "open('out/data.json', 'w').write(json.dumps({'n': 1}))\n"
        "open('out/table.csv', 'w').write('a,b\\n1,2\\n')\n"
        "open('elsewhere.txt', 'w').write('not in out/')\n"
        "result = 'done'\n"
    )
    result = await sandbox.run(code)
    assert result.error is None, result.stderr
    returned = {f.name: (f.media_type, f.data) for f in result.files}
    assert returned == {
        "data.json": ("application/json", b'{"n": 1}'),
        "report.md": ("text/markdown", b"# Report\n"),
        "table.csv": ("text/csv", b"a,b\n1,2\n"),
    }
    assert result.files_skipped == []


async def test_no_file_comes_back_from_a_run_that_wrote_none(sandbox: Sandbox) -> None:
    result = await sandbox.run("result = 1")
    assert result.files == []
    assert result.files_skipped == []


async def test_an_output_of_a_type_not_allowed_is_skipped(sandbox: Sandbox) -> None:
    code = (
        "open('out/tool.py', 'w').write('print(1)')\n"
        "open('out/noext', 'w').write('x')\n"
        "open('out/keep.txt', 'w').write('kept')\n"
    )
    result = await sandbox.run(code)
    assert result.error is None, result.stderr
    assert [f.name for f in result.files] == ["keep.txt"]
    assert result.files_skipped == [
        "noext: type not allowed (no extension)",
        "tool.py: type not allowed (.py)",
    ]


async def test_outputs_beyond_the_caps_are_skipped(sandbox: Sandbox) -> None:
    per_file = OUTPUT_FILE_LIMIT_BYTES // MB
    code = (
        f"open('out/a-too-big.txt', 'wb').write(b'x' * ({OUTPUT_FILE_LIMIT_BYTES} + 1))\n"
        f"for name in ('b1', 'b2', 'b3'):\n"  # three files just under the per-file cap
        f"    open(f'out/{{name}}.txt', 'wb').write(b'y' * ({per_file} * {MB} - 1))\n"
        f"for i in range({OUTPUT_FILE_COUNT} + 1):\n"
        f"    open(f'out/c{{i:02}}.txt', 'w').write('small')\n"
    )
    result = await sandbox.run(code, timeout_s=20)
    assert result.error is None, result.stderr
    names = [f.name for f in result.files]
    assert len(names) == OUTPUT_FILE_COUNT
    assert sum(len(f.data) for f in result.files) <= OUTPUT_TOTAL_LIMIT_BYTES
    assert names[:2] == ["b1.txt", "b2.txt"]  # b3 would pass the total cap
    skipped = dict(note.split(": ", 1) for note in result.files_skipped)
    assert skipped["a-too-big.txt"].endswith("limit per file")
    assert skipped["b3.txt"].endswith("limit for all files")
    assert skipped["c10.txt"] == f"more than {OUTPUT_FILE_COUNT} files"


async def test_outputs_in_subdirectories_of_out_come_back(sandbox: Sandbox) -> None:
    code = REACH_OS + "os.mkdir('out/charts')\nopen('out/charts/a.svg', 'w').write('<svg/>')\n"
    result = await sandbox.run(code)
    assert result.error is None, result.stderr
    assert [(f.name, f.media_type) for f in result.files] == [("charts/a.svg", "image/svg+xml")]
