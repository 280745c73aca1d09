"""Where a tenant's bot token comes from: SLACK_BOT_TOKEN (one workspace), or the OAuth
installation store (any number of workspaces; slack_sdk's async SQLAlchemy store on the
project database, shared by the web and worker processes)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.slack.inbound import parse_tenant
from engine.types import TenantId

log = logging.getLogger(__name__)

STATE_EXPIRATION_S = 600


class TokenSource(Protocol):
    async def token_for(self, tenant: TenantId) -> str | None: ...

    def forget(self, tenant: TenantId) -> None: ...


class StaticToken:
    """Single-workspace mode: one bot token for every Slack tenant."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def token_for(self, tenant: TenantId) -> str | None:
        return self.token

    def forget(self, tenant: TenantId) -> None:
        pass


class InstallationTokens:
    """Multi-workspace mode: the newest bot token installed for the tenant's team."""

    def __init__(self, store: AsyncInstallationStore, ttl_s: float = 60.0) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._cache: dict[TenantId, tuple[float, str | None]] = {}
        self._swept_at = time.monotonic()

    async def token_for(self, tenant: TenantId) -> str | None:
        cached = self._cache.get(tenant)
        if cached is not None and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        enterprise_id, team_id = parse_tenant(tenant)
        bot = await self.store.async_find_bot(enterprise_id=enterprise_id, team_id=team_id)
        if bot is None and enterprise_id:  # an org-wide (Enterprise Grid) install
            bot = await self.store.async_find_bot(
                enterprise_id=enterprise_id, team_id=None, is_enterprise_install=True
            )
        token = bot.bot_token if bot is not None else None
        self._remember(tenant, token)
        return token

    def _remember(self, tenant: TenantId, token: str | None) -> None:
        """An idle workspace costs nothing: entries past their TTL would be read again
        anyway, so they are dropped — once a TTL, not on every read."""
        now = time.monotonic()
        if now - self._swept_at >= self.ttl_s:
            self._cache = {t: entry for t, entry in self._cache.items()
                           if now - entry[0] < self.ttl_s}
            self._swept_at = now
        self._cache[tenant] = (now, token)

    def forget(self, tenant: TenantId) -> None:
        self._cache.pop(tenant, None)


class LazyTokens:
    """A TokenSource built on first use, inside the event loop that uses it (the worker's
    job loop): database engines and pools are bound to their loop."""

    def __init__(self, make: Callable[[], Awaitable[TokenSource]]) -> None:
        self._make = make
        self._source: TokenSource | None = None
        self._lock: asyncio.Lock | None = None

    async def token_for(self, tenant: TenantId) -> str | None:
        if self._source is None:
            self._lock = self._lock or asyncio.Lock()
            async with self._lock:
                if self._source is None:
                    self._source = await self._make()
        return await self._source.token_for(tenant)

    def forget(self, tenant: TenantId) -> None:
        if self._source is not None:
            self._source.forget(tenant)


async def _create_tables(store: AsyncSQLAlchemyInstallationStore | AsyncSQLAlchemyOAuthStateStore
                         ) -> None:
    """metadata.create_all is idempotent; two processes racing on PostgreSQL may still
    collide on the catalog, in which case the other one created them."""
    for attempt in range(3):
        try:
            await store.create_tables()
            return
        except Exception:
            if attempt == 2:
                raise
            log.info("creating the Slack installation tables raced; retrying")


async def installation_store(
    engine: AsyncEngine, client_id: str
) -> AsyncSQLAlchemyInstallationStore:
    store = AsyncSQLAlchemyInstallationStore(client_id=client_id, engine=engine)
    await _create_tables(store)
    return store


async def oauth_state_store(engine: AsyncEngine) -> AsyncSQLAlchemyOAuthStateStore:
    store = AsyncSQLAlchemyOAuthStateStore(expiration_seconds=STATE_EXPIRATION_S, engine=engine)
    await _create_tables(store)
    return store
