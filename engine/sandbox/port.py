"""The sandbox port: run untrusted Python and get back its output and a JSON value.

Convention shared by every implementation:

- the code runs as a module named ``__main__``;
- the JSON-able dict ``inputs`` is available to it as the global ``inputs``;
- when it finishes, its global ``result`` (if defined) is JSON-encoded inside the sandbox
  and comes back decoded as ``SandboxResult.value`` (a value JSON cannot encode comes back
  as its ``repr`` string);
- an uncaught exception gives ``error = "ExcType: message"`` and the last traceback lines
  in ``stderr``; a limit that was hit gives a short message such as ``"timeout after 2s"``
  or ``"memory limit exceeded"``.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel

OUTPUT_LIMIT_BYTES = 64 * 1024  # per stream; beyond it the output is cut and `truncated` set
RESULT_LIMIT_BYTES = 1024 * 1024  # the JSON-encoded `result`

# What sandboxed code may import: a stdlib subset for computing. The local sandbox enforces
# it at run time; generated tool sources are checked against it before they run at all.
DEFAULT_ALLOWED_MODULES = frozenset(
    {
        "__future__", "abc", "array", "base64", "binascii", "bisect", "calendar", "cmath",
        "collections", "colorsys", "contextlib", "copy", "csv", "dataclasses", "datetime",
        "decimal", "difflib", "enum", "fnmatch", "fractions", "functools", "graphlib",
        "hashlib", "heapq", "hmac", "html", "io", "ipaddress", "itertools", "json", "keyword",
        "math", "numbers", "operator", "pprint", "random", "re", "reprlib", "secrets",
        "statistics", "string", "struct", "textwrap", "time", "types", "typing",
        "unicodedata", "uuid", "weakref", "zoneinfo",
    }
)


class SandboxResult(BaseModel):
    stdout: str = ""
    stderr: str = ""
    value: Any = None
    error: str | None = None  # None on success
    duration: float = 0.0  # seconds, wall clock, as seen by the caller
    truncated: bool = False  # stdout or stderr was cut at the output limit

    @property
    def ok(self) -> bool:
        return self.error is None


class Sandbox(Protocol):
    name: str

    async def run(
        self,
        code: str,
        *,
        inputs: dict[str, Any] | None = None,
        timeout_s: float = 5.0,
        memory_mb: int = 256,
    ) -> SandboxResult: ...
