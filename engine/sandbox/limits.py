"""What every sandbox (the `Sandbox` port in engine/ports.py) promises, and its limits.

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
