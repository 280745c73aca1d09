"""The adapter's small shared state on Redis (web and worker processes see the same keys):
delivered event ids, the threads and messages that are the bot's answers, invitations to
comment, and per-channel posting pace."""

from __future__ import annotations

import asyncio
import logging
import time

from redis.asyncio import Redis

from engine.types import TenantId

log = logging.getLogger(__name__)

PREFIX = "evobot:slack"
EVENT_TTL_S = 3600  # Slack retries for about an hour at most
ANSWER_TTL_S = 30 * 24 * 3600
COMMENT_TTL_S = 15 * 60


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value


class SlackState:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    # --- deliveries --------------------------------------------------------------------

    async def first_delivery(self, event_id: str) -> bool:
        """True the first time an event id is seen (fails open if Redis is unreachable: the
        engine's unique message id still stops a duplicate execution)."""
        try:
            return bool(await self.redis.set(f"{PREFIX}:event:{event_id}", b"1", nx=True,
                                              ex=EVENT_TTL_S))
        except Exception:
            log.exception("event dedup unavailable; processing %s", event_id)
            return True

    async def forget_delivery(self, event_id: str) -> None:
        """The delivery failed: let Slack's retry be processed."""
        try:
            await self.redis.delete(f"{PREFIX}:event:{event_id}")
        except Exception:
            log.exception("could not clear the dedup key of %s", event_id)

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

    # --- pacing --------------------------------------------------------------------------

    async def pace(self, tenant: TenantId, channel: str, interval_s: float,
                   max_wait_s: float = 60.0) -> None:
        """At most one post per channel per `interval_s`, across every process (Slack allows
        about one message per second per channel)."""
        if interval_s <= 0:
            return
        key = f"{PREFIX}:pace:{tenant}:{channel}"
        deadline = time.monotonic() + max_wait_s
        while True:
            try:
                if await self.redis.set(key, b"1", nx=True, px=max(1, int(interval_s * 1000))):
                    return
                wait_ms = await self.redis.pttl(key)
            except Exception:
                log.exception("pacing unavailable; posting anyway")
                return
            if time.monotonic() >= deadline:
                return
            await asyncio.sleep(max(wait_ms, 5) / 1000)
