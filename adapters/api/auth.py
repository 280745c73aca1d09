"""Who is calling: a Bearer API key (the REST API) or a signed session cookie naming a key
(the dashboard); a per-key rate limit shared by every web process through Redis."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.storage.api_keys import KeyInfo, find_key, key_by_id

SESSION_COOKIE = "evobot_session"
SESSION_MAX_AGE_S = 12 * 3600


def bearer_secret(authorization: str | None) -> str | None:
    """The key in `Authorization: Bearer <key>`, or None."""
    if not authorization:
        return None
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return secret.strip() or None


@dataclass
class RateLimiter:
    """A fixed window per key: at most `limit` requests per `window_s` seconds."""

    redis: Redis
    limit: int
    window_s: int = 60

    async def retry_after(self, key_id: int) -> int | None:
        """None when the request may go ahead; else the seconds until the window ends."""
        if self.limit <= 0:
            return None
        now = time.time()
        window = int(now // self.window_s)
        name = f"evobot:ratelimit:{key_id}:{window}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, self.window_s + 1)
            count, _ = await pipe.execute()
        if int(count) <= self.limit:
            return None
        return max(1, math.ceil((window + 1) * self.window_s - now))


class Sessions:
    """The dashboard's session cookie: the signed id of the key that signed in (never the
    key itself), and form tokens tied to it."""

    def __init__(self, secret: str) -> None:
        self.cookies = URLSafeTimedSerializer(secret, salt="evobot-dashboard-session")
        self.forms = URLSafeTimedSerializer(secret, salt="evobot-dashboard-form")

    def cookie_for(self, key: KeyInfo) -> str:
        return self.cookies.dumps({"key": key.id})

    def key_id(self, cookie: str | None) -> int | None:
        if not cookie:
            return None
        try:
            data = self.cookies.loads(cookie, max_age=SESSION_MAX_AGE_S)
        except BadSignature:
            return None
        key_id = data.get("key") if isinstance(data, dict) else None
        return key_id if isinstance(key_id, int) else None

    def form_token(self, key: KeyInfo) -> str:
        return self.forms.dumps({"key": key.id})

    def form_token_ok(self, key: KeyInfo, token: str) -> bool:
        try:
            data = self.forms.loads(token, max_age=SESSION_MAX_AGE_S)
        except BadSignature:
            return False
        return isinstance(data, dict) and data.get("key") == key.id


class KeyStore:
    """Looks keys up in the database (a revoked key stops working at once)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def by_secret(self, secret: str | None) -> KeyInfo | None:
        if not secret:
            return None
        async with self.sessions() as session:
            return await find_key(session, secret)

    async def by_id(self, key_id: int | None) -> KeyInfo | None:
        if key_id is None:
            return None
        async with self.sessions() as session:
            return await key_by_id(session, key_id)
