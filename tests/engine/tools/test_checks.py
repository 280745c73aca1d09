"""Static checks on generated function tools, and the test program they run in the sandbox."""

from __future__ import annotations

from engine.llm.default_script import CONVERT_UNITS
from engine.tools.announce import signature
from engine.tools.checks import function_problems, plan_suite, schema_problems, suite_program

GOOD = dict(
    name="add", description="Add two numbers.",
    parameters={"type": "object", "properties": {"a": {"type": "number"},
                                                  "b": {"type": "number"}},
                "required": ["a", "b"]},
    source="def add(a, b):\n    return a + b\n",
    tests="assert add(1, 2) == 3\n",
)


def problems(**changes: object) -> list[str]:
    return function_problems(**{**GOOD, **changes})  # type: ignore[arg-type]


def test_a_good_draft_and_the_scripted_converter_pass() -> None:
    assert problems() == []
    converter = {k: CONVERT_UNITS[k] for k in GOOD}
    assert function_problems(**converter) == []  # type: ignore[arg-type]


def test_the_function_must_be_named_like_the_tool() -> None:
    assert problems(source="def plus(a, b):\n    return a + b\n") == [
        "the source must define a top-level function `def add(...)`"
    ]
    assert "must be snake_case" in problems(name="Add Numbers")[0]
    assert problems(name="python")[0] == "the name 'python' is reserved"


def test_the_schema_must_be_a_valid_json_schema_object() -> None:
    assert schema_problems({"type": "object", "properties": {"a": {"type": "numbr"}}})[0] \
        .startswith("parameters is not a valid JSON schema")
    assert schema_problems({"type": "array", "items": {}}) == [
        'parameters must be {"type": "object", "properties": {...}}'
    ]
    assert schema_problems(
        {"type": "object", "properties": {}, "required": ["x"]}
    ) == ["required names unknown properties: ['x']"]


def test_the_signature_must_accept_what_the_schema_describes() -> None:
    assert problems(source="def add(a):\n    return a\n") == [
        "the function does not accept ['b']"
    ]
    schema = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
              "required": ["a"]}
    assert problems(parameters=schema) == [
        "arguments without a default must be required in the schema: ['b']"
    ]
    assert problems(parameters=schema, source="def add(a, b=0):\n    return a + b\n") == []
    assert problems(source="def add(**kw):\n    return kw['a'] + kw['b']\n") == []


def test_dangerous_source_and_tests_are_refused_before_anything_runs() -> None:
    found = problems(source="import subprocess\ndef add(a, b):\n    return eval('a+b')\n")
    assert any("subprocess" in p for p in found) and any("eval" in p for p in found)
    assert all(p.startswith("source:") for p in found)
    found = problems(tests="import os\nos.system('rm -rf /')\nassert add(1, 2) == 3\n")
    assert any(p.startswith("tests:") and "os" in p for p in found)
    assert problems(tests="x = add(1, 2)\n") == [
        "tests: write at least one `assert` or `test_*` function"
    ]
    assert problems(source="def add(a, b):\n    return open('/etc/passwd').read()\n")


def test_the_suite_program_runs_module_asserts_and_every_test_function() -> None:
    tests = "assert add(1, 1) == 2\n\ndef test_one():\n    assert add(0, 0) == 0\n\n" \
            "def test_helper(x):\n    pass\n"
    plan = plan_suite(tests)
    assert plan.functions == ["test_one"] and plan.module_asserts == 1 and plan.count == 2
    program = suite_program(GOOD["source"], tests, plan)  # type: ignore[arg-type]
    scope: dict[str, object] = {}
    exec(program, scope)  # our own constant test program, not generated code
    assert scope["result"] == {"passed": 2}


def test_signature_shows_types_and_optional_arguments() -> None:
    assert signature("convert_units", CONVERT_UNITS["parameters"]) == (  # type: ignore[arg-type]
        "convert_units(value: number, from_unit: string, to_unit: string)"
    )
    schema = {"type": "object", "properties": {"q": {"type": "string"},
                                               "n": {"type": ["integer", "null"]}},
              "required": ["q"]}
    assert signature("search", schema) == "search(q: string, n?: integer|null)"
