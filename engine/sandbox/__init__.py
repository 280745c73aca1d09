"""Runs untrusted Python (the `python` tool, generated tools and their tests) in a sandbox.

`make_sandbox` picks the implementation: E2B when an API key is configured, otherwise the
local subprocess sandbox. Both follow the convention described in `engine/sandbox/limits.py`.
"""

from __future__ import annotations

from engine.ports import Sandbox
from engine.sandbox.e2b import E2BSandbox
from engine.sandbox.limits import DEFAULT_ALLOWED_MODULES
from engine.sandbox.local import LocalSandbox
from engine.sandbox.static_check import check_tool_source
from engine.types import SandboxResult


def make_sandbox(e2b_api_key: str | None) -> Sandbox:
    if e2b_api_key:
        return E2BSandbox(e2b_api_key)
    return LocalSandbox()


__all__ = [
    "DEFAULT_ALLOWED_MODULES",
    "E2BSandbox",
    "LocalSandbox",
    "Sandbox",
    "SandboxResult",
    "check_tool_source",
    "make_sandbox",
]
