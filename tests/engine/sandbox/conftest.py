from __future__ import annotations

import os

import pytest

from engine.sandbox import E2BSandbox, LocalSandbox, Sandbox
from tests.engine.sandbox.fake_e2b import FakeKernelOpener

# Every implementation runs the same contract suite. "e2b-fake-kernel" drives E2BSandbox
# against a local stand-in for the VM; "e2b" is the real service and needs E2B_API_KEY.
IMPLEMENTATIONS = ["local", "e2b-fake-kernel", "e2b"]


@pytest.fixture(params=IMPLEMENTATIONS)
def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    if request.param == "local":
        return LocalSandbox()
    if request.param == "e2b-fake-kernel":
        return E2BSandbox("fake-key", opener=FakeKernelOpener())
    api_key = os.environ.get("E2B_API_KEY")
    if not api_key:
        pytest.skip("E2B_API_KEY is not set: the real E2B service is not reachable")
    return E2BSandbox(api_key)
