"""Once-only handling of platform deliveries (Slack event ids, Telegram update ids).

A delivery is *claimed* before it is handled (a short TTL, so a process that dies mid-way lets
the platform's redelivery through), *confirmed* once handled (kept long enough to outlast
the platform's retries) and *released* when handling failed (the retry is then processed).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Protocol

from redis.asyncio import Redis

from adapters.common.coalesce import Coalescer

log = logging.getLogger(__name__)


class Dedup(Protocol):
    async def claim(self, delivery_id: str) -> bool: ...

    async def confirm(self, delivery_id: str) -> None: ...

    async def release(self, delivery_id: str) -> None: ...


class RedisDedup:
    """Shared by every web/worker process through Redis (SET NX). Fails open when Redis is
    unreachable: the engine's unique message id still stops a duplicate execution.

    The commands of deliveries handled together share round trips (adapters/common/
    coalesce.py). A confirmation is sent in the background, not waited for: until it lands
    the claim itself holds, and a platform that got its 200 does not deliver again."""

    def __init__(self, redis: Redis, *, namespace: str, claim_ttl_s: int = 120,
                 keep_ttl_s: int = 86_400) -> None:
        self._commands = Coalescer(redis)
        self.namespace = namespace
        self.claim_ttl_s = claim_ttl_s
        self.keep_ttl_s = keep_ttl_s

    def _key(self, delivery_id: str) -> str:
        return f"evobot:{self.namespace}:delivery:{delivery_id}"

    async def claim(self, delivery_id: str) -> bool:
        key = self._key(delivery_id)
        try:
            return bool(await self._commands.call(
                lambda pipe: pipe.set(key, b"1", nx=True, ex=self.claim_ttl_s)))
        except Exception:
            log.exception("dedup unavailable; handling %s anyway", delivery_id)
            return True

    async def confirm(self, delivery_id: str) -> None:
        key = self._key(delivery_id)
        self._commands.send(lambda pipe: pipe.expire(key, self.keep_ttl_s),
                        f"confirm delivery {delivery_id}")

    async def settled(self) -> None:
        """Until the confirmations sent so far have landed (shutdown, tests)."""
        await self._commands.settled()

    async def release(self, delivery_id: str) -> None:
        key = self._key(delivery_id)
        try:
            await self._commands.call(lambda pipe: pipe.delete(key))
        except Exception:
            log.exception("could not release delivery %s", delivery_id)


class MemoryDedup:
    """One process's memory of recent deliveries (bounded): the fake beside RedisDedup."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._seen: OrderedDict[str, None] = OrderedDict()

    async def claim(self, delivery_id: str) -> bool:
        if delivery_id in self._seen:
            return False
        self._seen[delivery_id] = None
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True

    async def confirm(self, delivery_id: str) -> None:
        return None

    async def release(self, delivery_id: str) -> None:
        self._seen.pop(delivery_id, None)
