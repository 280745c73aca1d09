"""Each worker thread's long-lived event loop and Runtime.

RQ calls plain functions; each job runs its coroutine on this thread's loop with this thread's
Runtime (built once by the factory the composition root installs), so database pools and
HTTP sessions are reused across jobs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from engine.runtime import Runtime

T = TypeVar("T")
RuntimeFactory = Callable[[], Awaitable[Runtime]]

_factory: RuntimeFactory | None = None
_local = threading.local()


def install_runtime_factory(factory: RuntimeFactory) -> None:
    """Called by the composition root in every process that runs jobs."""
    global _factory
    _factory = factory


def _loop() -> asyncio.AbstractEventLoop:
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
    return loop


async def _runtime() -> Runtime:
    runtime: Runtime | None = getattr(_local, "runtime", None)
    if runtime is None:
        if _factory is None:
            raise RuntimeError("no runtime factory installed in this worker process")
        runtime = await _factory()
        _local.runtime = runtime
    return runtime


def run_in_job_loop(make: Callable[[Runtime], Coroutine[Any, Any, T]]) -> T:
    async def with_runtime() -> T:
        runtime = await _runtime()
        try:
            return await make(runtime)
        finally:  # litellm's bookkeeping of this job's calls, not inside the next job
            await runtime.gateway.settle()

    return _loop().run_until_complete(with_runtime())


def close_thread_runtime() -> None:
    """Dispose this thread's runtime and loop (tests and embedded workers on exit)."""
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    runtime: Runtime | None = getattr(_local, "runtime", None)
    if loop is not None:
        if runtime is not None:
            loop.run_until_complete(runtime.close())
        _cancel_leftover_tasks(loop)
        loop.close()
    _local.loop = None
    _local.runtime = None


def _cancel_leftover_tasks(loop: asyncio.AbstractEventLoop) -> None:
    # litellm leaves a logging task on every loop it ran on: cancel before closing
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
