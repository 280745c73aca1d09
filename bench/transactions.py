"""What running work that needs no transaction without one saves on PostgreSQL
(engine/storage/db.py: statement_session_factory; docs/ARCHITECTURE.md, "Ingress").

One process, one runtime on PostgreSQL + Redis (db 6) and an instant scripted model. The
messages alternate between `Runtime.statements` in autocommit (as shipped) and ordinary
transactions (as before), one of each in turn with the order flipping, so the VM's drift
slows both alike. Per message: recording the objective (`handle_message`), its job from
claim to answer delivered (`engine.execute.execute`), and a reaction to a message that is
not an answer (`handle_feedback`); p50 and mean in ms.

    .venv/bin/python -m bench.transactions [--messages 300] [--warmup 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.pipeline import PG, postgres_database
from bot.config import Config
from bot.wiring import build_runtime, close_runtime, connect_redis
from engine.execute import execute
from engine.fakes import RecordingNotifier
from engine.notify import NotifierRouter
from engine.runtime import Runtime
from engine.service import EvobotService
from engine.types import FeedbackSource, InboundFeedback, InboundMessage, MessageRef

STEPS = ("record an objective", "its job, claim → answer", "reaction to a non-answer")
Timings = dict[str, dict[str, list[float]]]


async def one_message(rt: Runtime, service: EvobotService, i: int, mode: str
                      ) -> list[float]:
    """The three steps of message `i`, in ms."""
    tenant = f"local:bench-{i % 5}"
    started = time.perf_counter()
    accepted = await service.handle_message(InboundMessage(
        tenant_id=tenant, channel_id="c", user_id="u", text=f"objective {i}",
        message_id=f"{mode}-{i}"))
    assert accepted is not None
    recorded = time.perf_counter()
    await execute(rt, accepted.execution_id)
    answered = time.perf_counter()
    await service.handle_feedback(InboundFeedback(
        tenant_id=tenant, user_id="u", source=FeedbackSource.REACTION, rating=5,
        answer_ref=MessageRef(channel_id="c", message_id="someone else's message")))
    reacted = time.perf_counter()
    await rt.gateway.settle()  # litellm's bookkeeping of the call, outside the timings
    return [(b - a) * 1000 for a, b in
            ((started, recorded), (recorded, answered), (answered, reacted))]


async def measure(messages: int, warmup: int) -> Timings:
    config = Config(DATA_DIR=Path(tempfile.mkdtemp(prefix="evobot-bench-")),
                    DATABASE_URL=PG.format(db=await postgres_database()),
                    REDIS_URL="redis://127.0.0.1:6379/6", LLM_MODEL="scripted/default",
                    EVOBOT_ALLOW_MODEL_REQUESTS=False)
    redis = connect_redis(config)
    redis.sync.flushdb()
    router = NotifierRouter()
    router.register("local", RecordingNotifier())
    rt = await build_runtime(config, router, redis)
    modes: dict[str, async_sessionmaker[AsyncSession]] = {
        "autocommit": rt.statements, "transactions": rt.sessions}
    timings: Timings = {mode: defaultdict(list) for mode in modes}
    try:
        service = EvobotService(rt)
        for i in range(warmup + messages):
            order = list(modes) if i % 2 else list(modes)[::-1]
            for mode in order:
                rt.statements = modes[mode]
                took = await one_message(rt, service, i, mode)
                if i >= warmup:
                    for step, ms in zip(STEPS, took, strict=True):
                        timings[mode][step].append(ms)
    finally:
        await close_runtime(rt)
        redis.sync.flushdb()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    timings = asyncio.run(measure(args.messages, args.warmup))
    table = Table(title=f"work without a transaction, PostgreSQL ({args.messages} messages "
                        "per mode, alternating)")
    for column in ("ms", "p50 in transactions", "p50 autocommit", "mean in transactions",
                   "mean autocommit"):
        table.add_column(column, justify="left" if column == "ms" else "right")
    for step in STEPS:
        before, after = timings["transactions"][step], timings["autocommit"][step]
        table.add_row(step, *(f"{statistics.median(v):.2f}" for v in (before, after)),
                      *(f"{statistics.mean(v):.2f}" for v in (before, after)))
    Console().print(table)


if __name__ == "__main__":
    main()
