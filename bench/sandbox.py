"""Cold start and per-call overhead of the local sandbox.

    python bench/sandbox.py [runs]

Cold start: the first `run` of a new LocalSandbox (includes the one-off isolation probe).
Per call: `runs` sequential runs of a trivial snippet with the probed isolation, and the
same with weaker isolation settings, to show what each layer costs.
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


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
