"""The Stamps port on Redis: one key per stamped thing holding a random token.

A missing key gets a fresh token on first read, so a deleted key (a change, `forget_tenant`,
a Redis restart) always reads as a change: a cache can only be kept too short, never too
long."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from redis.asyncio import Redis as AsyncRedis


class RedisStamps:
    def __init__(self, redis: AsyncRedis) -> None:
        self.redis = redis

    async def current(self, keys: Sequence[str]) -> list[str]:
        """Every key's token, in one round trip."""
        if not keys:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(key, uuid.uuid4().hex, nx=True)
                pipe.get(key)
            replies = await pipe.execute()
        return [_text(token) for token in replies[1::2]]

    async def changed(self, key: str) -> None:
        await self.redis.delete(key)


def _text(token: bytes | str | None) -> str:
    if isinstance(token, bytes):
        return token.decode()
    return token or ""
