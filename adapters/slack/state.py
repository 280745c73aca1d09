"""The adapter's small shared state on Redis (web and worker processes see the same keys):
the threads and messages that are the bot's answers, and invitations to comment.

Redelivery de-duplication and per-channel pacing are adapters.common's (RedisDedup,
RedisPacer), under the same "slack" namespace.
"""

from __future__ import annotations

from redis.asyncio import Redis

from engine.types import TenantId

PREFIX = "evobot:slack"
ANSWER_TTL_S = 30 * 24 * 3600
COMMENT_TTL_S = 15 * 60


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value


class SlackState:
    """Which messages and threads are the bot's answers; who was invited to comment where."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    # --- answers and threads -------------------------------------------------------------

    async def mark_answer(self, tenant: TenantId, channel: str, ts: str,
                          thread_ts: str | None) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(f"{PREFIX}:answer:{tenant}:{channel}:{ts}", thread_ts or "", ex=ANSWER_TTL_S)
        if thread_ts:
            pipe.set(f"{PREFIX}:thread:{tenant}:{channel}:{thread_ts}", b"1", ex=ANSWER_TTL_S)
        await pipe.execute()

    async def answer_thread(self, tenant: TenantId, channel: str, ts: str) -> str | None:
        """The thread an answer was posted in ("" = not threaded; None = unknown message)."""
        return _text(await self.redis.get(f"{PREFIX}:answer:{tenant}:{channel}:{ts}"))

    async def is_bot_thread(self, tenant: TenantId, channel: str, thread_ts: str) -> bool:
        return bool(await self.redis.exists(f"{PREFIX}:thread:{tenant}:{channel}:{thread_ts}"))

    # --- comment invitations ---------------------------------------------------------------

    def _comment_key(self, tenant: TenantId, channel: str, thread: str | None, user: str) -> str:
        return f"{PREFIX}:comment:{tenant}:{channel}:{thread or '-'}:{user}"

    async def invite_comment(self, tenant: TenantId, channel: str, thread: str | None,
                             user: str, execution_id: int) -> None:
        await self.redis.set(self._comment_key(tenant, channel, thread, user),
                             str(execution_id), ex=COMMENT_TTL_S)

    async def take_comment_invitation(self, tenant: TenantId, channel: str, thread: str | None,
                                      user: str) -> int | None:
        value = _text(await self.redis.getdel(self._comment_key(tenant, channel, thread, user)))
        return int(value) if value and value.isdigit() else None
