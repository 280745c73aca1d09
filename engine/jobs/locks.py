"""The Locks port on Redis: one evolution per tenant at a time, across every worker."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis as AsyncRedis

log = logging.getLogger(__name__)


class RedisLocks:
    def __init__(self, redis: AsyncRedis) -> None:
        self.redis = redis

    @asynccontextmanager
    async def lock(self, name: str, timeout_s: float) -> AsyncIterator[bool]:
        lock = self.redis.lock(name, timeout=timeout_s, blocking_timeout=timeout_s)
        acquired = bool(await lock.acquire())
        try:
            yield acquired
        finally:
            if acquired:
                try:
                    await lock.release()
                except Exception:
                    log.warning("lock %s expired before release", name)
