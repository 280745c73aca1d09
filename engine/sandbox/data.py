"""The data libraries (numpy, pandas, matplotlib) in the sandbox, on the host side.

Which runs need them: the code's import statements (an `ast` scan), so stdlib-only runs
start exactly as before. Where this host has them: found once per process and interpreter
by running `_launcher.data_layout` in that interpreter, which also builds matplotlib's font
list once (each run gets a copy instead of scanning the system fonts again).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.sandbox import _launcher
from engine.sandbox.limits import (
    DATA_DISTRIBUTIONS,
    DATA_LIBRARIES_MB,
    DATA_MODULES,
    DATA_PRELOADS,
)

LAUNCHER_SOURCE = Path(_launcher.__file__).read_text(encoding="utf-8")
PROBE_TIMEOUT_S = 120.0  # a first font scan on a slow machine
# Appended to the launcher's source and run with the site enabled: the layout, then the
# font list matplotlib builds in MPLCONFIGDIR when pyplot's font manager loads.
PROBE_CALL = """
layout = data_layout(DISTRIBUTIONS)
if layout and "matplotlib" in layout["modules"]:
    import matplotlib.font_manager
print(json.dumps(layout))
"""


def data_imports(code: str) -> list[str]:
    """The data libraries the code's import statements name, sorted."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):  # the runner reports it
        return []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(top for top in (n.partition(".")[0] for n in names) if top in DATA_MODULES)
    return sorted(found)


def preloads(imports: list[str]) -> list[str]:
    return [module for name in imports for module in DATA_PRELOADS[name]]


def memory_for(memory_mb: int, imports: list[str]) -> int:
    """The address space limit: the code's own plus what the data libraries need."""
    return memory_mb + DATA_LIBRARIES_MB if imports else memory_mb


@dataclass(frozen=True)
class DataSite:
    """Where one interpreter has the data libraries (see `_launcher.data_layout`)."""

    layout: dict[str, Any]
    fontlist: dict[str, str] | None  # matplotlib's font list: file name and JSON text

    def job(self, imports: list[str]) -> dict[str, Any]:
        """The runner's `data` section for code with these imports."""
        return {**self.layout, "preload": preloads(imports), "fontlist": self.fontlist}


_sites: dict[str, DataSite] = {}


async def find_data_site(python: str) -> DataSite | None:
    """The data site of `python`, probed on first use (None: no data library installed, or
    the probe failed; it is tried again next time)."""
    if python not in _sites:
        site = await _probe(python)
        if site is None:
            return None
        _sites[python] = site
    return _sites[python]


async def _probe(python: str) -> DataSite | None:
    with tempfile.TemporaryDirectory(prefix="evobot-mpl-") as mpl_dir:
        code = f"{LAUNCHER_SOURCE}\nDISTRIBUTIONS = {list(DATA_DISTRIBUTIONS)!r}\n{PROBE_CALL}"
        env = {"MPLCONFIGDIR": mpl_dir, "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1"}
        proc = await asyncio.create_subprocess_exec(
            python, "-I", "-c", code, env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), PROBE_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return None
        layout = _parse_layout(out)
        if layout is None:
            return None
        return DataSite(layout, await asyncio.to_thread(_read_fontlist, Path(mpl_dir)))


def _parse_layout(out: bytes) -> dict[str, Any] | None:
    try:
        layout = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return layout if isinstance(layout, dict) else None


def _read_fontlist(mpl_dir: Path) -> dict[str, str] | None:
    for path in sorted(mpl_dir.glob("fontlist-v*.json")):
        return {"name": path.name, "text": path.read_text(encoding="utf-8")}
    return None
