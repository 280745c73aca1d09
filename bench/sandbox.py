"""Cold start and per-call overhead of the local sandbox.

    python bench/sandbox.py [runs]

Cold start: the first `run` of a new LocalSandbox (includes the one-off isolation probe).
Per call: `runs` sequential runs of a trivial snippet with the probed isolation, and the
same with weaker isolation settings, to show what each layer costs.
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

from engine.sandbox import LocalSandbox
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
    await execution_overhead(console, runs)


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
