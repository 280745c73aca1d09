"""Background jobs on RQ. `queue` (the JobQueue port), `locks` (the Locks port),
`functions` (what RQ runs), `worker_runtime` (each worker thread's loop and Runtime),
`reconciler` (re-enqueues what the database says is unfinished), `stamps` (the Stamps
port: what other processes may still cache)."""

from engine.jobs.functions import (
    evolve_job,
    execute_job,
    periodic_job,
    reconcile_job,
    review_job,
)
from engine.jobs.locks import RedisLocks
from engine.jobs.queue import EVOLUTION, EXECUTIONS, RQJobQueue
from engine.jobs.reconciler import reconcile
from engine.jobs.stamps import RedisStamps
from engine.jobs.worker_runtime import close_thread_runtime, install_runtime_factory

__all__ = [
    "EVOLUTION",
    "EXECUTIONS",
    "RQJobQueue",
    "RedisLocks",
    "RedisStamps",
    "close_thread_runtime",
    "evolve_job",
    "execute_job",
    "install_runtime_factory",
    "periodic_job",
    "reconcile",
    "reconcile_job",
    "review_job",
]
