from __future__ import annotations

import pytest

from engine.sandbox import DEFAULT_ALLOWED_MODULES, check_tool_source


def check(source: str) -> list[str]:
    return check_tool_source(source, allowed_imports=DEFAULT_ALLOWED_MODULES)


def test_a_plain_tool_passes() -> None:
    source = (
        "from __future__ import annotations\n"
        "import math\n"
        "from collections import Counter\n"
        "from datetime import date\n"
        "\n"
        "class Stats:\n"
        "    def __init__(self, values: list[float]) -> None:\n"
        "        self.values = values\n"
        "\n"
        "def word_stats(text: str) -> dict:\n"
        "    counts = Counter(text.split())\n"
        '    """Docstring with {braces}."""\n'
        "    return {'top': counts.most_common(1), 'root': math.sqrt(len(counts)),\n"
        "            'kind': type(counts).__name__, 'label': '{0:>5}'.format(1)}\n"
        "\n"
        "if __name__ == '__main__':\n"
        "    result = word_stats(inputs['text'])\n"
    )
    assert check(source) == []


def test_a_syntax_error_is_reported_with_its_line() -> None:
    problems = check("def f(x:\n    return x\n")
    assert len(problems) == 1
    assert problems[0].startswith("syntax error at line 1")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import socket", "line 1: import of `socket` is not allowed"),
        ("import os.path", "line 1: import of `os.path` is not allowed"),
        ("from urllib import request", "line 1: import of `urllib` is not allowed"),
        ("import subprocess", "line 1: `subprocess` (process creation) is not allowed"),
        ("from . import sibling", "line 1: relative imports are not allowed"),
    ],
)
def test_only_allowlisted_imports(source: str, expected: str) -> None:
    assert check(source) == [expected]


def test_the_allowlist_is_the_callers() -> None:
    assert check_tool_source("import os", allowed_imports=frozenset({"os"})) == []
    assert check_tool_source("import math", allowed_imports=frozenset()) == [
        "line 1: import of `math` is not allowed"
    ]


@pytest.mark.parametrize(
    "name", ["eval", "exec", "compile", "__import__", "open", "globals", "breakpoint"]
)
def test_dynamic_code_and_files_are_refused(name: str) -> None:
    assert check(f"x = 1\ny = {name}('1')") == [f"line 2: use of `{name}` is not allowed"]


def test_even_an_alias_of_eval_is_refused() -> None:
    assert check("run = eval\nrun('1')") == ["line 1: use of `eval` is not allowed"]


def test_process_creation_is_refused_even_when_os_is_allowed() -> None:
    allowed = frozenset({"os", "subprocess"})
    problems = check_tool_source(
        "import os\nos.system('ls')\nos.execv('/bin/sh', [])\nsubprocess.run(['ls'])\n"
        "from os import fork, path\n",
        allowed_imports=allowed,
    )
    assert problems == [
        "line 2: `os.system` (process creation) is not allowed",
        "line 3: `os.execv` (process creation) is not allowed",
        "line 4: `subprocess.run` (process creation) is not allowed",
        "line 5: `os.fork` (process creation) is not allowed",
    ]


@pytest.mark.parametrize(
    ("source", "attr"),
    [
        ("f.__globals__", "__globals__"),
        ("().__class__.__base__.__subclasses__()", "__subclasses__"),
        ("x.__builtins__", "__builtins__"),
        ("g.gi_frame.f_back", "gi_frame"),
        ("getattr(f, '__globals__')", "__globals__"),
        ("setattr(f, '__code__', None)", "__code__"),
    ],
)
def test_escape_attributes_are_refused(source: str, attr: str) -> None:
    assert f"line 1: access to the attribute `{attr}` is not allowed" in check(source)


def test_a_bare_builtins_name_is_refused() -> None:
    assert check("b = __builtins__") == ["line 1: use of `__builtins__` is not allowed"]


def test_format_strings_that_read_escape_attributes_are_refused() -> None:
    problems = check("'{0.__init__.__globals__}'.format(obj)")
    assert problems == [
        "line 1: a format string reading the attribute `__globals__` is not allowed"
    ]


def test_problems_are_reported_once_each_in_order() -> None:
    problems = check("import socket\nimport socket\nexec('1')\n")
    assert problems == [
        "line 1: import of `socket` is not allowed",
        "line 2: import of `socket` is not allowed",
        "line 3: use of `exec` is not allowed",
    ]
