"""The execution's files reach every sandboxed call — the `python` tool and the tools the
agent made — read-only; what any call leaves in out/ is collected for the answer."""

from __future__ import annotations

import json

from engine.sandbox import LocalSandbox
from engine.tools.box import PYTHON_SPEC, ToolBox, ToolSpec

SUMMARISE = ToolSpec(
    "summarise_sales", "Count a CSV's rows and write a summary file.",
    {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    "def summarise_sales(name):\n"
    "    rows = open(name).read().splitlines()[1:]\n"
    "    with open('out/summary.txt', 'w') as out:\n"
    "        out.write(f'{len(rows)} orders')\n"
    "    return len(rows)\n",
)


async def test_made_tools_and_python_share_the_files_and_out() -> None:
    box = ToolBox([PYTHON_SPEC, SUMMARISE], LocalSandbox(), timeout_s=30)
    box.files = {"sales.csv": b"order,total\n1,10\n2,20\n3,5\n"}

    made = await box.call("summarise_sales", {"name": "sales.csv"})
    assert made.ok and json.loads(made.content)["value"] == 3
    assert json.loads(made.content)["files_sent_with_answer"] == ["summary.txt"]

    tampered = await box.call("python", {"code": "open('sales.csv', 'w').write('x')"})
    assert not tampered.ok  # read-only
    again = await box.call("python", {"code": "open('out/summary.txt', 'w').write('v2')\n"
                                              "result = open('sales.csv').read().count('\\n')"})
    assert again.ok and json.loads(again.content)["value"] == 4
    assert list(box.made) == ["summary.txt"]
    assert box.made["summary.txt"].data == b"v2"  # the later file of the same name wins
