"""RQ worker entry: `evobot worker` processes, or a thread inside `evobot chat`.

SimpleWorker (no fork per job) so each worker keeps one event loop, one database pool and
one runtime across jobs; warm shutdown on SIGTERM is RQ's (the current job finishes).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from rq import Queue, SimpleWorker
from rq.timeouts import TimerDeathPenalty

from bot.config import Config
from bot.wiring import RedisHandle, build_runtime, connect_redis
from engine.jobs import EVOLUTION, EXECUTIONS, install_runtime_factory, reconcile_job
from engine.notify import NotifierRouter
from engine.runtime import Runtime

log = logging.getLogger(__name__)


class ThreadWorker(SimpleWorker):
    """A SimpleWorker that can run off the main thread (signals belong to the main thread,
    so job timeouts use RQ's timer-based death penalty instead of SIGALRM)."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass  # the embedding program owns the signals


def install_factory(
    config: Config, make_notifier: Callable[[], NotifierRouter], redis: RedisHandle
) -> None:
    async def factory() -> Runtime:
        return await build_runtime(config, make_notifier(), redis)

    install_runtime_factory(factory)


def make_worker(redis: RedisHandle, *, in_thread: bool, name: str | None = None) -> SimpleWorker:
    queues = [Queue(EXECUTIONS, connection=redis.sync), Queue(EVOLUTION, connection=redis.sync)]
    if in_thread:
        # a short TTL keeps the blocking dequeue short, so request_stop takes effect in seconds
        return ThreadWorker(queues, connection=redis.sync, name=name, worker_ttl=17)
    return SimpleWorker(queues, connection=redis.sync, name=name)


def schedule_reconciler(
    redis: RedisHandle, every_s: float, stop: threading.Event
) -> threading.Thread:
    """Enqueue the reconciler now and every `every_s` seconds (deduplicated by job id)."""
    queue = Queue(EVOLUTION, connection=redis.sync)

    def loop() -> None:
        while not stop.is_set():
            try:
                queue.enqueue(reconcile_job, job_id="reconcile", result_ttl=60, failure_ttl=3600)
            except Exception:
                log.exception("could not enqueue the reconciler (is Redis down?)")
            stop.wait(every_s)

    thread = threading.Thread(target=loop, name="evobot-reconciler", daemon=True)
    thread.start()
    return thread


def run_worker(
    config: Config,
    make_notifier: Callable[[], NotifierRouter],
    *,
    burst: bool = False,
) -> None:
    """Blocking: process jobs until SIGTERM (warm shutdown) or, with burst, until idle."""
    redis = connect_redis(config)
    install_factory(config, make_notifier, redis)
    stop = threading.Event()
    schedule_reconciler(redis, config.reconcile_every_s, stop)
    worker = make_worker(redis, in_thread=False)
    try:
        worker.work(with_scheduler=not burst, burst=burst, logging_level="INFO")
    finally:
        stop.set()


def start_worker_thread(
    config: Config, make_notifier: Callable[[], NotifierRouter], redis: RedisHandle
) -> tuple[threading.Thread, SimpleWorker, threading.Event]:
    """The embedded worker of `evobot chat`: same process, its own thread and event loop."""
    install_factory(config, make_notifier, redis)
    stop = threading.Event()
    schedule_reconciler(redis, config.reconcile_every_s, stop)
    worker = make_worker(redis, in_thread=True)

    def work() -> None:
        worker.work(with_scheduler=False, logging_level="WARNING")

    thread = threading.Thread(target=work, name="evobot-worker", daemon=True)
    thread.start()
    return thread, worker, stop


def stop_worker(worker: SimpleWorker, stop: threading.Event) -> None:
    """Stop an in-process worker after its current job (and the reconciler timer).

    RQ's pub/sub shutdown command signals the whole process (SIGINT), which would stop the
    chat too; setting RQ's own stop flag ends the loop at the next dequeue timeout instead.
    """
    stop.set()
    worker._stop_requested = True
