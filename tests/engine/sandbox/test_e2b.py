"""E2BSandbox without the network: the cell it builds, the VM lifecycle, failures."""

from __future__ import annotations

import pytest

from engine.sandbox import E2BSandbox, LocalSandbox, make_sandbox
from engine.sandbox.e2b import LIFETIME_MARGIN_S, parse_envelope
from tests.engine.sandbox.fake_e2b import FakeError, FakeExecution, FakeKernel, FakeKernelOpener


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
