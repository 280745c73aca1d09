"""`make bench`: the ingress (Slack, Telegram), pipeline and recovery benchmarks on both stacks
— SQLite + embedded Redis, and PostgreSQL + Redis (127.0.0.1:5432 `test`, 127.0.0.1:6379 db
6, flushed) — then one table of the figures against their targets.

    .venv/bin/python bench/all.py [--quick] [--only slack,telegram,pipeline,recovery]

Each benchmark runs in its own process and leaves its figures in a JSON file; the ingress
ratios come from bare and evobot apps measured side by side in alternating rounds of one
run (the range shows the spread of the per-round throughput ratios). Figures depend on the
machine and on what else runs on it: compare ratios, not absolute times, across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
REDIS = "redis://127.0.0.1:6379/6"
STACKS = {"embedded": "SQLite + embedded Redis", "services": "PostgreSQL + Redis"}


def flush_redis() -> None:
    from redis import Redis

    Redis.from_url(REDIS).flushdb()


def fresh_postgres() -> str:
    sys.path.insert(0, str(ROOT))
    from bench.pipeline import PG, postgres_database

    return PG.format(db=asyncio.run(postgres_database()))


def run(script: list[str], out: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """One benchmark in its own process; its output streams through, its figures come back."""
    flush_redis()
    print(f"\n$ {' '.join(script)}", flush=True)
    done = subprocess.run([sys.executable, *script, "--json", str(out)], cwd=ROOT,
                          env={**os.environ, **(env or {})}, check=False)
    if done.returncode != 0 or not out.exists():
        print(f"!! {script[0]} failed (exit {done.returncode}); its figures are missing")
        return {}
    figures: dict[str, Any] = json.loads(out.read_text())
    return figures


def ingress(name: str, stack: str, tmp: Path, quick: bool) -> dict[str, Any]:
    # Rounds alternate the two apps so that the machine's drift slows both alike, and each
    # round ends with its slowest requests draining at less than full concurrency: with
    # 300 requests a round, one stall at a round's end moved the ratio by 0.1, so a round
    # is 1,000 requests (about 2.5 s here).
    size, rounds = ("600", "6") if quick else ("6000", "6")
    if name == "slack":
        env = {} if stack == "embedded" else {"REDIS_URL": REDIS,
                                              "DATABASE_URL": fresh_postgres()}
        script = ["bench/slack_ingress.py", "--events", size, "--rounds", rounds,
                  "--concurrency", "16"]
        return run(script, tmp / f"slack-{stack}.json", env)
    script = ["-m", "bench.telegram_ingress", "--updates", size, "--rounds", rounds,
              "--concurrency", "16"]
    if stack == "services":
        script += ["--redis-url", REDIS, "--database-url", fresh_postgres()]
    return run(script, tmp / f"telegram-{stack}.json")


def rows(found: dict[str, Any]) -> list[tuple[str, str, str, str, bool | None]]:
    """(figure, stack, measured, target, met — None where there is no target)."""
    out: list[tuple[str, str, str, str, bool | None]] = []
    for bench, label in (("slack", "Slack ingress vs bare Bolt"),
                         ("telegram", "Telegram webhook vs bare PTB")):
        for stack, f in found.get(bench, {}).items():
            spread = f"(rounds {f['round_ratio_min']:.2f}–{f['round_ratio_max']:.2f})"
            if "evobot_cpu_ms" in f:  # what each web process spent on an update
                spread += (f"; web CPU {f['evobot_cpu_ms']:.1f} vs {f['bare_cpu_ms']:.1f} ms "
                           "an update")
            out.append((f"{label}: throughput", STACKS[stack],
                        f"{f['throughput_ratio']:.2f}× {spread}", "≥ 0.80×",
                        f["throughput_ratio"] >= 0.8))
            out.append((f"{label}: p99", STACKS[stack],
                        f"{f['p99_ratio']:.2f}× ({f['evobot_p99_ms']:.0f} vs "
                        f"{f['bare_p99_ms']:.0f} ms)", "≤ 1.25×", f["p99_ratio"] <= 1.25))
    for stack, f in found.get("pipeline", {}).items():
        answer, evolve = f["message → answer"], f["rating → evolution announced"]
        # where the jobs ran: a worker thread of the one process, or a process of their own
        where = STACKS[stack.split("/")[0]] + {"thread": ", one process",
                                               "process": ", worker process"}[f["worker"]]
        out.append(("message → answer delivered, p95", where,
                    f"{answer['p95_ms']:.0f} ms (p50 {answer['p50_ms']:.0f})", "< 30 ms",
                    answer["p95_ms"] < 30))
        history = f.get("message → answer, tenant with history")
        if history:
            out.append(("… to a tenant with history, p95", where,
                        f"{history['p95_ms']:.0f} ms (p50 {history['p50_ms']:.0f})", "< 30 ms",
                        history["p95_ms"] < 30))
        out.append(("rating → evolution announced, p95", where,
                    f"{evolve['p95_ms']:.0f} ms (p50 {evolve['p50_ms']:.0f})", "< 60 ms",
                    evolve["p95_ms"] < 60))
        first = f.get("new tenant's first message → answer")
        if first:
            out.append(("a new tenant's first message → answer, p95", where,
                        f"{first['p95_ms']:.0f} ms (p50 {first['p50_ms']:.0f})",
                        "— (also creates its agent)", None))
        if "scale" in f:
            s = f["scale"]
            growth = s["growth_ratio"]
            out.append(("per message: 1,000 tenants × 10 vs 100 × 1", STACKS[stack],
                        f"{growth:.2f}× ({s['small_ms']:.1f} → {s['grown_ms']:.1f} ms; rounds "
                        f"{s['round_ratio_min']:.2f}–{s['round_ratio_max']:.2f})",
                        "no growth (≤ 1.2×)", growth <= 1.2))
            out.append(("tenants held by the web process once idle", STACKS[stack],
                        str(s["idle_tenants_held"]), "0", s["idle_tenants_held"] == 0))
    for stack, f in found.get("recovery", {}).items():
        for name, label in (("redis_restart", "Redis restart"),
                            ("worker_kill", "worker kill -9")):
            r = f[name]
            out.append((f"{label}: answered again after", STACKS[stack],
                        f"{r['recovery_s']:.1f} s, once each: {r['answered_once']}",
                        f"once, ≤ 60 s (stale after {r['detect_s']:.0f} s)",
                        r["answered_once"] and r["recovery_s"] <= 60))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    parser.add_argument("--only", default="slack,telegram,pipeline,recovery")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="evobot-bench-all-"))
    only = args.only.split(",")
    found: dict[str, Any] = {}
    for name in ("slack", "telegram"):
        if name in only:
            found[name] = {stack: ingress(name, stack, tmp, args.quick) for stack in STACKS}
    if "pipeline" in only:
        runs = ["--runs", "40" if args.quick else "100",
                "--tenants", "300" if args.quick else "1000"]
        found["pipeline"] = run(["bench/pipeline.py", *runs], tmp / "pipeline.json")
    if "recovery" in only:
        found["recovery"] = run(["bench/recovery.py"], tmp / "recovery.json")
    table = Table(title=f"evobot benchmarks ({os.cpu_count()} CPUs; figures in {tmp})")
    for column in ("figure", "stack", "measured", "target", "met"):
        table.add_column(column)
    for figure, stack, measured, target, met in rows(found):
        shown = "—" if met is None else "yes" if met else "[red]no[/]"
        table.add_row(figure, stack, measured, target, shown)
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
