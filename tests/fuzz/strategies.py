"""Hypothesis strategies for hostile input: real payload shapes (from doubles/ and the tests'
sample payloads) with fields removed, retyped, oversized or made unicode-hostile."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

# strings that break naive code: NUL, bidi overrides, a lone surrogate (not encodable as
# UTF-8), a zero-width joiner chain, Slack/Telegram markup, SQL and format-string bait
HOSTILE = [
    "", " ", "\x00", "a\x00b", "\u202e\u2066evil\u2069", "\ud800", "x\udfffy", "\u200d" * 50,
    "<@U0BOT> <!channel> <#C1|x> <https://x|y>", "</b><i>", "'; DROP TABLE executions;--",
    "{0} %s %(x)s", "\r\n\t", "é" * 3, "🏳️‍🌈", "\ufeff", "\U0010ffff",
]


def hostile_text(*, huge: bool = True) -> st.SearchStrategy[str]:
    parts = [st.sampled_from(HOSTILE), st.text(max_size=40),
             st.text(alphabet=st.characters(codec=None), max_size=20)]
    if huge:
        # 100k emoji: far over every length limit, under the body limits
        parts.append(st.sampled_from(["😀" * 100_000, "x" * 9_000, "ب" * 8_001]))
    return st.one_of(*parts)


def leaf() -> st.SearchStrategy[Any]:
    """Any JSON value a field might be retyped to."""
    return st.one_of(
        st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False), hostile_text(huge=False),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    )


Path = tuple[str | int, ...]


def _paths(value: Any, prefix: Path = ()) -> list[Path]:
    found: list[Path] = []
    items: list[tuple[str | int, Any]]
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return found
    for key, child in items:
        found.append((*prefix, key))
        found += _paths(child, (*prefix, key))
    return found


def _parent(root: Any, path: Path) -> Any:
    for key in path[:-1]:
        root = root[key]
    return root


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any], *, max_mutations: int = 4,
            keep: frozenset[str] = frozenset()) -> dict[str, Any]:
    """`base` with 0 to `max_mutations` fields removed, retyped, or replaced by hostile text.
    Top-level keys in `keep` are left alone (e.g. what routes the payload at all)."""
    payload = copy.deepcopy(base)
    for _ in range(draw(st.integers(0, max_mutations))):
        paths = [p for p in _paths(payload) if not (len(p) == 1 and p[0] in keep)]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(payload, path)
        key = path[-1]
        how = draw(st.sampled_from(["remove", "retype", "text"]))
        if how == "remove":
            del parent[key]
        elif how == "retype":
            parent[key] = draw(leaf())
        else:
            parent[key] = draw(hostile_text())
    return payload
