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
        """Every key's token: one MGET, and a second round trip only for keys that have
        none yet (a first read, or after a change)."""
        if not keys:
            return []
        tokens: list[bytes | str | None] = list(await self.redis.mget(keys))
        missing = [i for i, token in enumerate(tokens) if token is None]
        if missing:
            async with self.redis.pipeline(transaction=False) as pipe:
                for i in missing:
                    pipe.set(keys[i], uuid.uuid4().hex, nx=True)
                    pipe.get(keys[i])  # ours, or the one another process set first
                replies = await pipe.execute()
            for i, token in zip(missing, replies[1::2], strict=True):
                tokens[i] = token
        return [_text(token) for token in tokens]

    async def changed(self, key: str) -> None:
        await self.redis.delete(key)


def _text(token: bytes | str | None) -> str:
    if isinstance(token, bytes):
        return token.decode()
    return token or ""
