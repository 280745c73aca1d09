"""RQ worker entry: `evobot worker` processes, or a thread inside `evobot chat`.

SimpleWorker (no fork per job) so each worker keeps one event loop, one database pool and
one runtime across jobs; warm shutdown on SIGTERM is RQ's (the current job finishes).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable

from rq import Queue
from rq.cron import CronScheduler
from rq.timeouts import TimerDeathPenalty
from rq.utils import current_timestamp
from rq.worker import WorkerStatus

from bot.config import Config
from bot.observability import ObservedWorker, install_llm_metrics, serve_worker_metrics
from bot.startup import loaded
from bot.wiring import RedisHandle, build_runtime, connect_redis
from engine.jobs import (
    EVOLUTION,
    EXECUTIONS,
    close_thread_runtime,
    install_runtime_factory,
    periodic_job,
    reconcile_job,
)
from engine.notify import NotifierRouter
from engine.runtime import Runtime

log = logging.getLogger(__name__)

# how long a platform process, stopping, waits for its embedded worker's job under way
STOP_GRACE_S = 30.0


class ThreadWorker(ObservedWorker):
    """A SimpleWorker that can run off the main thread (signals belong to the main thread,
    so job timeouts use RQ's timer-based death penalty instead of SIGALRM)."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass  # the embedding program owns the signals

    def stop_after_current_job(self) -> None:
        """RQ's own stop flag, checked at every dequeue timeout. Its public `request_stop`
        installs signal handlers (main thread only) and, when idle, raises instead of
        stopping; the pub/sub shutdown command signals the whole process."""
        self._stop_requested = True


def install_factory(
    config: Config, make_notifier: Callable[[], NotifierRouter], redis: RedisHandle
) -> None:
    async def factory() -> Runtime:
        return await build_runtime(config, make_notifier(), redis)

    install_runtime_factory(factory)
    install_llm_metrics()


def _queues(redis: RedisHandle) -> list[Queue]:
    return [Queue(EXECUTIONS, connection=redis.sync), Queue(EVOLUTION, connection=redis.sync)]


def make_thread_worker(redis: RedisHandle, name: str | None = None) -> ThreadWorker:
    # a short TTL keeps the blocking dequeue short, so a stop takes effect in seconds
    return ThreadWorker(_queues(redis), connection=redis.sync, name=name, worker_ttl=17)


def make_cron(redis: RedisHandle, config: Config) -> CronScheduler:
    """The recurring jobs, on RQ's CronScheduler: the reconciler (at start, then every
    EVOBOT_RECONCILE_EVERY_S) and, unless EVOBOT_PERIODIC_EVOLUTION_S is 0, the sweep that
    queues each active tenant's periodic evolution (the sweep itself enforces the period per
    tenant, so checking hourly is enough)."""
    cron = CronScheduler(connection=redis.sync, name=f"evobot-{uuid.uuid4().hex[:8]}")
    cron.register(reconcile_job, EVOLUTION, interval=max(1, int(config.reconcile_every_s)),
                  result_ttl=60, failure_ttl=3600)
    if config.periodic_evolution_s > 0:
        every = max(1, int(min(config.periodic_evolution_s, 3600)))
        cron.register(periodic_job, EVOLUTION, interval=every, result_ttl=600,
                      failure_ttl=86_400)
    return cron


def enqueue_due_retries(queues: list[Queue]) -> None:
    """What RQ's scheduler does for a retry (or `enqueue_in`) whose time has come. The
    embedded worker runs no scheduler (RQ's forks a process), so its cron thread does this."""
    for queue in queues:
        registry = queue.scheduled_job_registry
        for job_id in registry.get_jobs_to_schedule(current_timestamp()):
            job = queue.fetch_job(job_id)
            registry.remove(job_id)
            if job is not None:
                queue.enqueue_job(job)


def schedule_recurring_jobs(
    redis: RedisHandle, config: Config, stop: threading.Event, *, retries: bool = False
) -> threading.Thread:
    """Wake the CronScheduler when a job is due. Its own `start()` loop installs signal
    handlers (main thread only) and can't be stopped from another thread, so a daemon thread
    asks it what is due and sleeps for as long as it says (with `retries`, at most 1 s, and
    it also queues the retries that are due)."""
    cron = make_cron(redis, config)
    queues = _queues(redis) if retries else []

    def loop() -> None:
        while not stop.is_set():
            try:
                cron.enqueue_jobs()
                enqueue_due_retries(queues)
            except Exception:
                log.exception("could not enqueue recurring jobs (is Redis down?)")
            due = cron.calculate_sleep_interval()
            stop.wait(1.0 if retries else max(1.0, due))

    thread = threading.Thread(target=loop, name="evobot-cron", daemon=True)
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
    schedule_recurring_jobs(redis, config, stop)
    if config.worker_metrics_port:
        serve_worker_metrics(config.worker_metrics_port, config.host,
                             config.prometheus_multiproc_dir)
    worker = ObservedWorker(_queues(redis), connection=redis.sync)
    loaded()  # before the first job builds the runtime: idle, it must collect too
    try:
        worker.work(with_scheduler=not burst, burst=burst, logging_level="INFO")
    finally:
        stop.set()


class EmbeddedWorker:
    """The RQ worker inside a platform process (`evobot chat`, or `serve` / `slack` /
    `telegram` without REDIS_URL, where no separate `evobot worker` can reach the private
    Redis): its own thread, event loop and runtime, plus the reconciler timer. The one place
    an in-process worker is started and stopped."""

    def __init__(
        self, config: Config, make_notifier: Callable[[], NotifierRouter], redis: RedisHandle
    ) -> None:
        self.config = config
        self.make_notifier = make_notifier
        self.redis = redis
        self._stop = threading.Event()
        self.worker = make_thread_worker(redis)
        self.thread = threading.Thread(target=self._work, name="evobot-worker", daemon=True)

    def start(self) -> EmbeddedWorker:
        install_factory(self.config, self.make_notifier, self.redis)
        schedule_recurring_jobs(self.redis, self.config, self._stop, retries=True)
        self.thread.start()
        return self

    def _work(self) -> None:
        try:
            self.worker.work(with_scheduler=False, logging_level="WARNING")
        finally:  # the thread's runtime: its database pool, and tasks litellm left running
            close_thread_runtime()

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop after the current job (and the reconciler timer). A job under way — an answer,
        or the learnings an evolution stores after its announcement — gets up to `grace_s`
        to finish: the thread is a daemon, so the process exiting would cut it off (the
        reconciler would redo an answer later, not an evolution's tail). An idle worker is
        left to notice the stop at its next dequeue timeout."""
        self._stop.set()
        self.worker.stop_after_current_job()
        if self.worker.get_state() == WorkerStatus.BUSY:
            await asyncio.to_thread(self.thread.join, grace_s)
