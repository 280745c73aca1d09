"""What every route needs: the app's collaborators (`Api`, on `app.state.api`), who is
calling (a key, checked and rate-limited), which agent a request may touch, and the one
action both the API and the dashboard take (roll back)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import HTTPException, Request
from starlette.requests import HTTPConnection

from adapters.api.auth import KeyStore, RateLimiter, Sessions, bearer_secret
from adapters.api.events import EventHub
from engine.service import EvobotService
from engine.storage.api_keys import KeyInfo
from engine.types import InboundCommand, TenantId


def _no_context(ids: dict[str, object]) -> None:
    return None


@dataclass
class ApiSettings:
    session_secret: str  # signs the dashboard's session cookie
    rate_limit: int = 120  # requests per key per minute (0: no limit)
    wait_s: float = 30.0  # how long `execute` waits for the answer before 202
    max_body_bytes: int = 64 * 1024
    # binds tenant / execution ids to this request's log records (bot/observability.py)
    log_context: Callable[[dict[str, object]], None] = field(default=_no_context)


@dataclass
class Api:
    settings: ApiSettings
    service: EvobotService
    keys: KeyStore
    limiter: RateLimiter
    sessions: Sessions
    hub: EventHub


@dataclass(frozen=True)
class Agent:
    """The agent a request is about, checked against the caller's key."""

    tenant_id: TenantId
    key: KeyInfo


def api_of(connection: HTTPConnection) -> Api:
    api: Api = connection.app.state.api
    return api


async def admitted(api: Api, key: KeyInfo | None) -> KeyInfo:
    """The caller's key once it is known and within its rate limit; else 401 / 429."""
    if key is None:
        raise HTTPException(401, "missing, unknown or revoked API key",
                            headers={"WWW-Authenticate": "Bearer"})
    wait = await api.limiter.retry_after(key.id)
    if wait is not None:
        raise HTTPException(429, "rate limit exceeded", headers={"Retry-After": str(wait)})
    api.settings.log_context({"tenant_id": key.tenant_id, "api_key": key.prefix})
    return key


async def caller(request: Request) -> KeyInfo:
    """The key in `Authorization: Bearer <key>`."""
    api = api_of(request)
    key = await api.keys.by_secret(bearer_secret(request.headers.get("authorization")))
    return await admitted(api, key)


def own_agent(agent_id: str, key: KeyInfo) -> Agent:
    """Another tenant's agent is answered exactly like one that does not exist."""
    if key.tenant_id is None or key.tenant_id != agent_id:
        raise HTTPException(404, "no such agent")
    return Agent(agent_id, key)


async def agent_of(agent_id: str, request: Request) -> Agent:
    return own_agent(agent_id, await caller(request))


async def rollback_to(api: Api, tenant_id: TenantId, key: KeyInfo, target: int) -> None:
    """Make `target` active through the engine's rollback command (so it is recorded and
    announced like one from chat). 404 for a version that doesn't exist."""
    async with api.service.rt.repo(tenant_id) as repo:
        exists = await repo.version(target) is not None
    if not exists:
        raise HTTPException(404, f"no version v{target}")
    reply = await api.service.handle_command(InboundCommand(
        tenant_id=tenant_id, user_id=key.actor, name="rollback", args=[str(target)],
        is_admin=key.is_admin,
    ))
    if not reply.ok:
        raise HTTPException(409, reply.document.plain_text())
