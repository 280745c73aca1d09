"""Cold start and per-call overhead of the local sandbox.

    python bench/sandbox.py [runs]

Cold start: the first `run` of a new LocalSandbox (includes the one-off isolation probe).
Per call: `runs` sequential runs of a trivial snippet with the probed isolation, and the
same with weaker isolation settings, to show what each layer costs.
Data libraries: the cold start of a first run that imports pandas (isolation probe plus
the one-off data site probe, which builds matplotlib's font list), then per-call times of
code importing numpy / pandas / matplotlib, loading and grouping a 100k-row CSV input
file, and rendering a chart of it to out/ as PNG, beside the stdlib-only snippet.
Tool call overhead inside an execution: `runs` agent runs (engine.runner.run_agent, the
deterministic `scripted/default` model through litellm) answering without a tool, and
answering "convert 5 miles to km" through the generated `convert_units` tool in the sandbox
(one tool call: one extra model round and one sandbox run).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from dataclasses import replace

from rich.console import Console
from rich.table import Table

from engine.sandbox import LocalSandbox, data
from engine.sandbox.local import NETWORK_NAMESPACES, Isolation

SNIPPET = "result = sum(inputs['xs'])"
INPUTS = {"xs": list(range(100))}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def cold_start() -> tuple[float, Isolation]:
    sandbox = LocalSandbox()
    started = time.perf_counter()
    result = await sandbox.run(SNIPPET, inputs=INPUTS)
    elapsed = time.perf_counter() - started
    assert result.value == 4950, result
    return elapsed, await sandbox.isolation()


async def per_call(isolation: Isolation, runs: int) -> list[float]:
    sandbox = LocalSandbox()
    sandbox._isolation = isolation  # skip the probe: measure this setting as it is
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await sandbox.run(SNIPPET, inputs=INPUTS)
        samples.append(time.perf_counter() - started)
        assert result.value == 4950, result
    return samples


async def main(runs: int) -> None:
    console = Console()
    cold, probed = await cold_start()
    console.print(f"isolation: {', '.join(probed.features)}")
    console.print(f"cold start (probe + first run): {cold * 1000:.0f} ms")

    settings = {"probed (all layers)": probed}
    if probed.prefix:
        network_only = (probed.prefix[0], *NETWORK_NAMESPACES)
        settings["user+net namespaces only"] = replace(probed, prefix=network_only)
    settings["no namespaces"] = replace(probed, prefix=())
    table = Table(title=f"per-call overhead, {runs} sequential runs of a trivial snippet")
    for column in ("setting", "p50 ms", "p95 ms", "mean ms"):
        table.add_column(column, justify="right" if column != "setting" else "left")
    for label, isolation in settings.items():
        samples = await per_call(isolation, runs)
        table.add_row(
            label,
            f"{statistics.median(samples) * 1000:.1f}",
            f"{percentile(samples, 0.95) * 1000:.1f}",
            f"{statistics.fmean(samples) * 1000:.1f}",
        )
    console.print(table)
    await data_library_costs(console, max(5, runs // 5))
    await execution_overhead(console, runs)


# --- the data libraries -----------------------------------------------------------------

CSV_ROWS = 100_000
LOAD_AND_GROUP = (
    "import pandas as pd\n"
    "df = pd.read_csv('sales.csv')\n"
    "df['revenue'] = df.units * df.price\n"
    "by_region = df.groupby('region')['revenue'].sum()\n"
    "result = len(by_region)\n"
)
CHART = (
    "import matplotlib.pyplot as plt\n"
    "ax = by_region.plot.bar()\n"
    "ax.figure.savefig('out/revenue.png')\n"
)
DATA_WORKLOADS = {
    "stdlib-only snippet (as above)": (SNIPPET, False),
    "import numpy": ("import numpy\nresult = 1", False),
    "import pandas": ("import pandas\nresult = 1", False),
    "import matplotlib.pyplot": ("import matplotlib.pyplot\nresult = 1", False),
    "import numpy, pandas, matplotlib.pyplot": (
        "import numpy, pandas, matplotlib.pyplot\nresult = 1", False
    ),
    f"{CSV_ROWS // 1000}k-row CSV: load + group": (LOAD_AND_GROUP, True),
    f"{CSV_ROWS // 1000}k-row CSV: load + group + PNG chart": (LOAD_AND_GROUP + CHART, True),
}


def sales_csv() -> bytes:
    rows = "".join(f"r{i % 7},{i % 50},{i % 13}.25\n" for i in range(CSV_ROWS))
    return ("region,units,price\n" + rows).encode()


async def data_cold_start(csv: bytes) -> float:
    data._sites.clear()  # the data site probe is one-off per process: measure it too
    started = time.perf_counter()
    result = await LocalSandbox().run(LOAD_AND_GROUP, files={"sales.csv": csv}, timeout_s=60)
    elapsed = time.perf_counter() - started
    assert result.error is None, result
    return elapsed


async def data_samples(code: str, files: dict[str, bytes], runs: int) -> list[float]:
    sandbox = LocalSandbox()
    await sandbox.run(code, inputs=INPUTS, files=files, timeout_s=60)  # probes done
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await sandbox.run(code, inputs=INPUTS, files=files, timeout_s=60)
        samples.append(time.perf_counter() - started)
        assert result.error is None, result
    return samples


async def data_library_costs(console: Console, runs: int) -> None:
    csv = sales_csv()
    cold = await data_cold_start(csv)
    console.print(
        f"cold start with pandas (isolation + data site probes, first {CSV_ROWS // 1000}k-row "
        f"load + group): {cold * 1000:.0f} ms"
    )
    table = Table(title=f"per-call time with the data libraries, {runs} sequential runs each")
    for column in ("code", "p50 ms", "p95 ms", "mean ms", "p50 over stdlib ms"):
        table.add_column(column, justify="right" if column != "code" else "left")
    baseline = None
    for label, (code, with_csv) in DATA_WORKLOADS.items():
        samples = await data_samples(code, {"sales.csv": csv} if with_csv else {}, runs)
        p50 = statistics.median(samples)
        baseline = p50 if baseline is None else baseline
        table.add_row(
            label,
            f"{p50 * 1000:.1f}",
            f"{percentile(samples, 0.95) * 1000:.1f}",
            f"{statistics.fmean(samples) * 1000:.1f}",
            f"{(p50 - baseline) * 1000:.1f}",
        )
    console.print(table)


# --- tool call overhead inside an execution ---------------------------------------------


async def execution_samples(objective: str, runs: int, *, with_tool: bool) -> list[float]:
    """Wall time of `runs` agent runs; asserts the tool was (or wasn't) called."""
    from engine.llm.default_script import CONVERT_UNITS
    from engine.llm.gateway import LLMGateway
    from engine.prompt import default_prompt
    from engine.runner import run_agent
    from engine.tools.box import PYTHON_SPEC, ToolBox, ToolSpec
    from engine.types import AgentVersionView

    converter = ToolSpec(
        str(CONVERT_UNITS["name"]), str(CONVERT_UNITS["description"]),
        CONVERT_UNITS["parameters"], str(CONVERT_UNITS["source"]),  # type: ignore[arg-type]
    )
    version = AgentVersionView(
        tenant_id="local:bench", version=2, prompt=default_prompt(), model="scripted/default",
        temperature=0.0, tools=[converter.ref], parent_version=1, created_by="bench",
    )
    gateway = LLMGateway(timeout_s=30, num_retries=0)
    sandbox = LocalSandbox()
    await sandbox.run("result = 1")  # the one-off isolation probe is not part of a call
    toolbox = ToolBox([PYTHON_SPEC, converter], sandbox)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await run_agent(gateway, version, objective, toolbox=toolbox)
        samples.append(time.perf_counter() - started)
        assert result.tools_used == (["convert_units"] if with_tool else []), result
    return samples


async def execution_overhead(console: Console, runs: int) -> None:
    await execution_samples("hello", 3, with_tool=False)  # warm litellm's first-call setup
    plain = await execution_samples("hello", runs, with_tool=False)
    tooled = await execution_samples("convert 5 miles to km", runs, with_tool=True)
    table = Table(title=f"an execution (run_agent, scripted model), {runs} runs each")
    for column in ("execution", "p50 ms", "p95 ms", "mean ms"):
        table.add_column(column, justify="right" if column != "execution" else "left")
    for label, samples in (("no tool call", plain), ("one tool call (sandboxed)", tooled)):
        table.add_row(
            label,
            f"{statistics.median(samples) * 1000:.1f}",
            f"{percentile(samples, 0.95) * 1000:.1f}",
            f"{statistics.fmean(samples) * 1000:.1f}",
        )
    table.add_row(
        "overhead of the tool call",
        f"{(statistics.median(tooled) - statistics.median(plain)) * 1000:.1f}",
        f"{(percentile(tooled, 0.95) - percentile(plain, 0.95)) * 1000:.1f}",
        f"{(statistics.fmean(tooled) - statistics.fmean(plain)) * 1000:.1f}",
    )
    console.print(table)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
