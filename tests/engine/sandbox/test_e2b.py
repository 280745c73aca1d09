"""E2BSandbox without the network: the cell it builds, the VM lifecycle, failures."""

from __future__ import annotations

import asyncio

import pytest

from engine.sandbox import E2BSandbox, LocalSandbox, make_sandbox
from engine.sandbox.e2b import LIFETIME_MARGIN_S, STAGING_PREFIX, checked_output, parse_envelope
from engine.sandbox.limits import DATA_LIBRARIES_MB
from tests.engine.sandbox.fake_e2b import (
    FakeError,
    FakeExecution,
    FakeKernel,
    FakeKernelOpener,
    staging_root,
)

MB = 1024 * 1024


def test_make_sandbox_picks_e2b_only_with_a_key() -> None:
    assert isinstance(make_sandbox(None), LocalSandbox)
    assert isinstance(make_sandbox(""), LocalSandbox)
    sandbox = make_sandbox("e2b_key")
    assert isinstance(sandbox, E2BSandbox)
    assert sandbox.name == "e2b"


@pytest.mark.asyncio
async def test_each_run_gets_a_fresh_vm_that_is_killed_afterwards() -> None:
    opener = FakeKernelOpener()
    sandbox = E2BSandbox("e2b_key", opener=opener)
    await sandbox.run("result = 1", timeout_s=2)
    await sandbox.run("result = 2", timeout_s=2)
    assert [(key, lifetime) for key, lifetime, _ in opener.opened] == [
        ("e2b_key", 2 + LIFETIME_MARGIN_S),
        ("e2b_key", 2 + LIFETIME_MARGIN_S),
    ]
    assert all(kernel.killed for _, _, kernel in opener.opened)


@pytest.mark.asyncio
async def test_the_cell_carries_the_code_and_inputs_as_literals() -> None:
    opener = FakeKernelOpener()
    code = "result = inputs['q'] + ' \"quoted\" \\n'"
    result = await E2BSandbox("k", opener=opener).run(code, inputs={"q": "it's"})
    assert result.error is None, result.stderr
    assert result.value == "it's \"quoted\" \n"
    cell = opener.opened[0][2].cells[0]
    assert cell.rstrip().splitlines()[-1].startswith("launch(")


class BrokenKernel(FakeKernel):
    async def run_code(self, code: str, timeout: float | None = None) -> FakeExecution:  # noqa: ASYNC109
        return FakeExecution(None, FakeError("OSError", "no space left on device"))


class HangingKernel(FakeKernel):
    async def run_code(self, code: str, timeout: float | None = None) -> FakeExecution:  # noqa: ASYNC109
        raise TimeoutError("Execution timed out")


@pytest.mark.asyncio
async def test_a_launcher_failure_is_an_infrastructure_error() -> None:
    kernel = BrokenKernel()

    async def opener(api_key: str, lifetime_s: int) -> FakeKernel:
        return kernel

    with pytest.raises(RuntimeError, match="no space left on device"):
        await E2BSandbox("k", opener=opener).run("result = 1")
    assert kernel.killed


@pytest.mark.asyncio
async def test_a_vm_that_does_not_answer_in_time_is_a_timeout() -> None:
    async def opener(api_key: str, lifetime_s: int) -> FakeKernel:
        return HangingKernel()

    result = await E2BSandbox("k", opener=opener).run("result = 1", timeout_s=1.5)
    assert result.error == "timeout after 1.5s"


def test_parse_envelope_reads_the_repr_of_the_cell_value() -> None:
    text = repr(
        '{"returncode": 0, "timed_out": false, "stdout": "hi\\n", "stderr": "", '
        '"truncated": false, "result_text": "{\\"error\\": null, \\"value\\": 3}"}'
    )
    finished = parse_envelope(text)
    assert finished.stdout == "hi\n"
    assert finished.result_text == '{"error": null, "value": 3}'
    with pytest.raises(RuntimeError):
        parse_envelope(None)


@pytest.mark.asyncio
async def test_input_files_are_uploaded_and_outputs_downloaded_then_the_vm_goes() -> None:
    opener = FakeKernelOpener()
    code = "open('out/copy.csv', 'w').write(open('data.csv').read().upper())"
    result = await E2BSandbox("k", opener=opener).run(code, files={"data.csv": b"a,b\n"})
    assert result.error is None, result.stderr
    assert [(f.name, f.data) for f in result.files] == [("copy.csv", b"A,B\n")]
    kernel = opener.opened[0][2]
    [uploaded] = kernel.written
    assert uploaded.startswith(STAGING_PREFIX) and uploaded.endswith("/in/data.csv")
    assert kernel.read[0].startswith(uploaded.rsplit("/in/", 1)[0] + "/out/")
    assert kernel.killed
    assert not await asyncio.to_thread(staging_root(uploaded).exists)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"name": "chart.png", "path": "/tmp/evobot-files-1/out/0"},
         ("chart.png", "image/png", "/tmp/evobot-files-1/out/0")),
        ({"name": "chart.png", "path": "/tmp/evobot-files-1/out/../../../etc/passwd"}, None),
        ({"name": "chart.png", "path": "/home/user/.bashrc"}, None),
        ({"name": "tool.py", "path": "/tmp/evobot-files-1/out/0"}, None),
    ],
    ids=["staged", "escaping-path", "elsewhere", "type-not-allowed"],
)
def test_the_vms_output_listing_is_checked_again_on_the_host(
    entry: dict[str, str], expected: tuple[str, str, str] | None
) -> None:
    assert checked_output(entry, "/tmp/evobot-files-1") == expected


@pytest.mark.asyncio
async def test_a_data_run_gets_the_libraries_memory_on_top() -> None:
    opener = FakeKernelOpener()
    sandbox = E2BSandbox("k", opener=opener)
    await sandbox.run("import json", memory_mb=100)
    await sandbox.run("import numpy", memory_mb=100, timeout_s=30)
    stdlib_cell, data_cell = (kernel.cells[0] for _, _, kernel in opener.opened)
    assert f", {100 * MB}, " in stdlib_cell
    assert f", {(100 + DATA_LIBRARIES_MB) * MB}, " in data_cell
