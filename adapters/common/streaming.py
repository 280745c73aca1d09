"""What both platforms' answer streams share: the cadence of a stream's edits, and a
remembered "this platform feature is refused here" (Slack streaming per workspace, Telegram
drafts per bot) that every process sees through Redis.

A partial answer's text is cumulative (`AnswerDelta.text` is the whole answer so far), so a
stream may skip any delta that comes too early and lose nothing: the next one, or the answer
itself, carries the text.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from redis.asyncio import Redis

log = logging.getLogger(__name__)

REFUSAL_TTL_S = 7 * 24 * 3600  # asked again after a week: plans and API versions change


@dataclass
class Cadence:
    """When a stream may next show new text: at most every `every_s`, and not before a
    rate limit's Retry-After has passed."""

    every_s: float
    next_at: float = 0.0

    def due(self) -> bool:
        return time.monotonic() >= self.next_at

    def shown(self) -> None:
        self.next_at = time.monotonic() + self.every_s

    def back_off(self, seconds: float) -> None:
        self.next_at = max(self.next_at, time.monotonic() + seconds)


class Refusals:
    """Keys a platform refused a feature for (kept in Redis when there is one, so every
    process knows, else in this process). Fails open: an unreachable Redis means asking
    the platform again, which only costs one refused call."""

    def __init__(self, redis: Redis | None, *, namespace: str, feature: str) -> None:
        self.redis = redis
        self.prefix = f"evobot:{namespace}:refused:{feature}:"
        self._local: set[str] = set()

    async def refused(self, key: str) -> bool:
        if key in self._local:
            return True
        if self.redis is None:
            return False
        try:
            found = bool(await self.redis.exists(self.prefix + key))
        except Exception:
            log.warning("refusals unavailable; trying %s anyway", self.prefix + key)
            return False
        if found:
            self._local.add(key)
        return found

    async def refuse(self, key: str) -> None:
        self._local.add(key)
        if self.redis is None:
            return
        try:
            await self.redis.set(self.prefix + key, b"1", ex=REFUSAL_TTL_S)
        except Exception:
            log.warning("could not share the refusal %s", self.prefix + key)
