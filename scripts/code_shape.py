"""The shape of the code: lines, function lengths per package, the longest functions, and how
often `Any` appears in the engine. Reads the work tree, or any git revision for a before/after.

    python scripts/code_shape.py              # the work tree
    python scripts/code_shape.py --rev HEAD~5 # a revision, read through `git show`
"""

from __future__ import annotations

import argparse
import ast
import io
import statistics
import subprocess
import tokenize
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("engine", "adapters", "bot")
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Function:
    path: str
    name: str
    lines: int


def sources(rev: str | None) -> dict[str, str]:
    """path -> text of every .py file in the packages (migrations excluded: generated)."""
    if rev is None:
        paths = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
        return {str(p.relative_to(ROOT)): p.read_text() for p in paths if _counted(str(p))}
    listing = _git("ls-tree", "-r", "--name-only", rev, *PACKAGES).splitlines()
    return {p: _git("show", f"{rev}:{p}") for p in listing if p.endswith(".py") and _counted(p)}


def _counted(path: str) -> bool:
    return "/migrations/" not in path


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout


def functions(path: str, text: str) -> list[Function]:
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            found.append(Function(path, node.name, length))
    return found


def any_count(text: str) -> int:
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return sum(1 for t in tokens if t.type == tokenize.NAME and t.string == "Any")


def percentile(values: list[int], share: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0


def report(rev: str | None) -> None:
    files = sources(rev)
    everything: list[Function] = []
    print(f"code shape of {rev or 'the work tree'}")
    print(f"{'package':<10}{'files':>7}{'lines':>8}{'functions':>11}{'median':>8}{'p90':>6}"
          f"{'max':>6}")
    for package in PACKAGES:
        mine = {p: t for p, t in files.items() if p.startswith(package + "/")}
        funcs = [f for p, t in mine.items() for f in functions(p, t)]
        everything += funcs
        lengths = [f.lines for f in funcs]
        lines = sum(t.count("\n") for t in mine.values())
        print(f"{package:<10}{len(mine):>7}{lines:>8}{len(funcs):>11}"
              f"{statistics.median(lengths) if lengths else 0:>8.0f}"
              f"{percentile(lengths, 0.9):>6}{max(lengths, default=0):>6}")
    print("\nlongest functions:")
    for f in sorted(everything, key=lambda f: -f.lines)[:10]:
        print(f"  {f.lines:>4}  {f.path}:{f.name}")
    engine_any = sum(any_count(t) for p, t in files.items() if p.startswith("engine/"))
    over = [f for f in everything if f.path.startswith("engine/") and f.lines > 40]
    print(f"\n`Any` in engine/: {engine_any}")
    print(f"engine functions over 40 lines: {len(over)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="a git revision instead of the work tree")
    report(parser.parse_args().rev)


if __name__ == "__main__":
    main()
