"""What every sandbox (the `Sandbox` port in engine/ports.py) promises, and its limits.

Convention shared by every implementation:

- the code runs as a module named ``__main__``;
- the JSON-able dict ``inputs`` is available to it as the global ``inputs``;
- when it finishes, its global ``result`` (if defined) is JSON-encoded inside the sandbox
  and comes back decoded as ``SandboxResult.value`` (a value JSON cannot encode comes back
  as its ``repr`` string);
- an uncaught exception gives ``error = "ExcType: message"`` and the last traceback lines
  in ``stderr``; a limit that was hit gives a short message such as ``"timeout after 2s"``
  or ``"memory limit exceeded"``;
- ``files`` (plain name -> bytes or host path) are copied into the working directory before
  the code runs, read-only: ``open("sales.csv")`` reads one, writing to it is refused. A name
  that is not plain (a ``/``, a leading dot, too long, a reserved name) gives an error result
  and nothing runs;
- an empty ``out/`` directory exists in the working directory: the files the code leaves
  there come back as ``SandboxResult.files`` (name relative to ``out/``, media type, bytes)
  within the limits below; the others are named in ``SandboxResult.files_skipped``;
- ``numpy``, ``pandas`` and ``matplotlib`` (Agg backend only: no window) may be imported.
  Code that imports them gets ``DATA_LIBRARIES_MB`` more memory than ``memory_mb``, one BLAS
  thread, a ``tmp/`` directory of its own (``TMPDIR``, ``MPLCONFIGDIR``) and the same walls:
  no network, no processes, no writes outside the working directory.
"""

from __future__ import annotations

OUTPUT_LIMIT_BYTES = 64 * 1024  # per stream; beyond it the output is cut and `truncated` set
RESULT_LIMIT_BYTES = 1024 * 1024  # the JSON-encoded `result`

# What sandboxed code may import: a stdlib subset for computing, and the data libraries.
# The runner enforces it at run time; generated tool sources are checked against it before
# they run at all.
STDLIB_MODULES = frozenset(
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
# The data libraries: importing one of them turns on the set-up described above.
DATA_MODULES = frozenset({"numpy", "pandas", "matplotlib"})
DEFAULT_ALLOWED_MODULES = STDLIB_MODULES | DATA_MODULES

# Imported as trusted code, before the walls go up, when the code imports the key: the
# libraries' own start-up (thread pools, font cache, ctypes probes) then needs no exception
# to the walls. "matplotlib" brings pyplot so the font list is loaded before, not during,
# the run. Optional modules (tabulate, for DataFrame.to_markdown) are skipped if absent.
DATA_PRELOADS: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "pandas": ("pandas", "tabulate"),
    "matplotlib": ("matplotlib", "matplotlib.pyplot"),
}
# Installed distributions whose files the data libraries may read and import at run time
# (their top-level packages and bundled shared libraries): the libraries, their
# dependencies, and the optional ones pandas uses for xlsx and markdown. Nothing else of the
# host's site-packages is readable or importable. Absent ones are skipped.
DATA_DISTRIBUTIONS = (
    "numpy", "pandas", "python-dateutil", "six", "tzdata", "pytz",
    "matplotlib", "contourpy", "cycler", "fonttools", "kiwisolver", "packaging", "pillow",
    "pyparsing", "openpyxl", "et-xmlfile", "tabulate",
)
# Address space the data libraries need on top of the code's own `memory_mb`. Measured as
# the smallest limit that works (python 3.11, numpy 2.4, pandas 3.1, matplotlib 3.11, one
# BLAS thread): importing numpy alone needs 100 MB, all three 200 MB (a stdlib-only run:
# ~25 MB); loading a 100k-row CSV, grouping it and rendering a bar chart to PNG, 240 MB.
# So a default run (memory_mb=256) that imports pandas may use 512 MB: the libraries'
# 200-odd, and the code's 256 for its own data as before.
DATA_LIBRARIES_MB = 256

# Files in: plain names only, and a cap on what is copied into the working directory.
INPUT_NAME_MAX = 100
INPUT_TOTAL_LIMIT_BYTES = 50 * 1024 * 1024
# Names the sandbox itself uses in the working directory.
RESERVED_NAMES = frozenset({"main.py", "job.json", "result.json", "runner.py", "out", "tmp"})

# Files out: what is collected from out/ after the run (anything else is skipped, with a
# note in `files_skipped`).
OUTPUT_DIR = "out"
OUTPUT_MEDIA_TYPES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".csv": "text/csv",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".md": "text/markdown",
    ".txt": "text/plain",
    ".json": "application/json",
}
OUTPUT_FILE_LIMIT_BYTES = 10 * 1024 * 1024
OUTPUT_TOTAL_LIMIT_BYTES = 25 * 1024 * 1024
OUTPUT_FILE_COUNT = 10
