"""Recovery: how long after a failure the objectives it hit are answered — each exactly once.

  Redis restart  — objectives recorded and queued, then Redis loses every job (the system
                   Redis keeps nothing on disk); the reconciler re-enqueues them from the
                   database once they are EVOBOT's pending grace (15 s) old.
  worker kill -9 — a worker process is killed mid-answer; its execution stops beating, is
                   stale after EVOBOT_STALE_RUNNING_S, and the reconciler hands it on.

    .venv/bin/python bench/recovery.py [--stacks embedded,services] [--json out.json]

Short timers for the run: reconcile every 2 s, heartbeat 2 s, stale after 6 s (the defaults
are 15 s, 10 s, 45 s: recovery then takes correspondingly longer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pipeline import postgres_database, spawn_worker  # noqa: E402
from bot.config import Config  # noqa: E402
from bot.wiring import RedisHandle, build_runtime, close_runtime, connect_redis  # noqa: E402
from bot.worker import EmbeddedWorker  # noqa: E402
from engine.notify import NotifierRouter  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from engine.service import EvobotService  # noqa: E402
from engine.storage.models import Execution  # noqa: E402
from engine.types import Delivery, InboundMessage, OutboundEvent  # noqa: E402

TENANT = "api:recovery"
TIMERS = {"EVOBOT_RECONCILE_EVERY_S": "2", "EVOBOT_HEARTBEAT_S": "2",
          "EVOBOT_STALE_RUNNING_S": "6"}
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/{db}"


class Answers:
    """Every answer delivered, with when (from the worker threads)."""

    def __init__(self) -> None:
        self.at: dict[int, float] = {}
        self.count: Counter[int] = Counter()

    async def deliver(self, event: OutboundEvent) -> Delivery:
        if event.type == "answer":
            self.count[event.execution_id] += 1  # type: ignore[attr-defined]
            self.at.setdefault(event.execution_id, time.monotonic())  # type: ignore[attr-defined]
        return Delivery()

    async def wait_for(self, ids: list[int], timeout_s: float = 180) -> float:
        deadline = time.monotonic() + timeout_s
        while not all(i in self.at for i in ids):
            if time.monotonic() > deadline:
                raise SystemExit(f"not answered within {timeout_s} s: "
                                 f"{[i for i in ids if i not in self.at]}")
            await asyncio.sleep(0.05)
        return max(self.at[i] for i in ids)


def ask(i: int, text: str) -> InboundMessage:
    return InboundMessage(tenant_id=TENANT, channel_id="c", user_id="u", text=text,
                          message_id=f"r{i}")


async def redis_restart(config: Config, redis: RedisHandle, answers: Answers,
                        objectives: int) -> dict[str, Any]:
    runtime = await build_runtime(config, NotifierRouter({"api": answers}), redis)
    ids = []
    for i in range(objectives):
        accepted = await EvobotService(runtime).handle_message(ask(i, f"objective {i}"))
        assert accepted is not None
        ids.append(accepted.execution_id)
    redis.sync.flushdb()  # the restart: every queued job is gone
    lost_at = time.monotonic()
    worker = EmbeddedWorker(config, lambda: NotifierRouter({"api": answers}), redis).start()
    try:
        done = await answers.wait_for(ids)
    finally:
        await worker.stop()
        await close_runtime(runtime)
    return {"recovery_s": done - lost_at, "objectives": objectives,
            "answered_once": all(answers.count[i] == 1 for i in ids),
            "detect_s": runtime.settings.pending_grace_s + config.reconcile_every_s}


async def worker_kill(config: Config, redis: RedisHandle, answers: Answers,
                      env: dict[str, str]) -> dict[str, Any]:
    runtime = await build_runtime(config, NotifierRouter({"api": answers}), redis)
    accepted = await EvobotService(runtime).handle_message(ask(999, "slow <<sleep:3>>"))
    assert accepted is not None
    proc = spawn_worker(env)
    try:
        await _until_running(runtime, accepted.execution_id)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # and RQ's scheduler it forked
        proc.wait(timeout=10)
    killed_at = time.monotonic()
    worker = EmbeddedWorker(config, lambda: NotifierRouter({"api": answers}), redis).start()
    try:
        done = await answers.wait_for([accepted.execution_id])
    finally:
        await worker.stop()
        await close_runtime(runtime)
    return {"recovery_s": done - killed_at,
            "answered_once": answers.count[accepted.execution_id] == 1,
            "detect_s": config.stale_running_s + config.reconcile_every_s}


async def _until_running(runtime: Runtime, execution_id: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        async with runtime.sessions() as session:
            row = await session.get(Execution, execution_id)
            if row is not None and row.status == "running":
                return
        await asyncio.sleep(0.1)
    raise SystemExit("the worker process never picked the job up")


async def stack_config(stack: str, data_dir: Path) -> tuple[Config, dict[str, str]]:
    common: dict[str, Any] = {"LLM_MODEL": "scripted/default",
                              "EVOBOT_ALLOW_MODEL_REQUESTS": False,
                              "EVOBOT_JOB_RETRY_INTERVALS": "0", **TIMERS}
    env = {"PATH": os.environ.get("PATH", ""), "DATA_DIR": str(data_dir),
           "LLM_MODEL": "scripted/default", "EVOBOT_ALLOW_MODEL_REQUESTS": "0",
           "EVOBOT_JOB_RETRY_INTERVALS": "0", "LITELLM_LOCAL_MODEL_COST_MAP": "True", **TIMERS}
    if stack == "embedded":
        config = Config(DATA_DIR=data_dir, **common)
        env["REDIS_URL"] = f"unix://{connect_redis(config).socket_path}"
        return config, env
    database_url = PG.format(db=await postgres_database())
    config = Config(DATA_DIR=data_dir, DATABASE_URL=database_url,
                    REDIS_URL="redis://127.0.0.1:6379/6", **common)
    return config, env | {"DATABASE_URL": database_url, "REDIS_URL": "redis://127.0.0.1:6379/6"}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for stack in args.stacks.split(","):
        config, env = await stack_config(stack, Path(tempfile.mkdtemp(prefix="evobot-rec-")))
        redis = connect_redis(config)
        redis.sync.flushdb()
        try:
            # one recorder for every worker this process starts: a stopped worker may still
            # take one more job before it exits, and its answer counts like any other
            answers = Answers()
            figures[stack] = {
                "redis_restart": await redis_restart(config, redis, answers, args.objectives),
                "worker_kill": await worker_kill(config, redis, answers, env),
            }
        finally:
            redis.sync.flushdb()
        for name, result in figures[stack].items():
            print(f"{stack:9} {name:14} answered {result['recovery_s']:5.1f} s after the "
                  f"failure (detected within {result['detect_s']:.0f} s), each exactly once: "
                  f"{result['answered_once']}")
    return figures


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("rq").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stacks", default="embedded,services")
    parser.add_argument("--objectives", type=int, default=20)
    parser.add_argument("--json", help="write the figures to this file (bench/all.py)")
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    if args.json:
        Path(args.json).write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
