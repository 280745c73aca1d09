"""Per-chat pacing across every process: at most one post per chat per interval (Slack allows
about one message per second per channel, Telegram one per second per chat).

The turn is a Redis key set with NX and a millisecond TTL, so any number of web and worker
processes share one clock per chat.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from redis.asyncio import Redis

log = logging.getLogger(__name__)


class Pacer(Protocol):
    """Waits for this process's turn to post in a chat."""

    async def turn(self, chat: str) -> None: ...


class RedisPacer:
    def __init__(self, redis: Redis, *, namespace: str, interval_s: float,
                 max_wait_s: float = 60.0) -> None:
        self.redis = redis
        self.namespace = namespace
        self.interval_s = interval_s
        self.max_wait_s = max_wait_s

    async def turn(self, chat: str) -> None:
        """Wait until this process may post in `chat` (never longer than max_wait_s; fails
        open when Redis is unreachable: posting late matters more than pacing)."""
        if self.interval_s <= 0:
            return
        key = f"evobot:{self.namespace}:pace:{chat}"
        ttl_ms = max(1, int(self.interval_s * 1000))
        deadline = time.monotonic() + self.max_wait_s
        while True:
            try:
                if await self.redis.set(key, b"1", nx=True, px=ttl_ms):
                    return
                wait_ms = await self.redis.pttl(key)
            except Exception:
                log.exception("pacing unavailable; posting anyway")
                return
            if time.monotonic() >= deadline:
                return
            await asyncio.sleep(max(wait_ms, 5) / 1000)


class NoPacing:
    """Posts at once (tests and single-message tools): the fake beside RedisPacer."""

    async def turn(self, chat: str) -> None:
        return None
