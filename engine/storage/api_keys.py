"""API keys: created (the secret is returned once), found by their secret, listed, revoked.

Keys are 256-bit random strings, so one SHA-256 is enough to store them: there is nothing to
guess that a slow hash would protect. Finding a key by its secret is the one lookup that is
not scoped by tenant — it is how the tenant is learned.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.storage.models import ApiKey, utcnow
from engine.types import TenantId

KEY_PREFIX = "evk_"
SHOWN_CHARS = 12  # "evk_" + 8: enough to tell keys apart in a list, useless to an attacker


class KeyRole(StrEnum):
    OPERATOR = "operator"  # no tenant: creates agents
    ADMIN = "admin"  # a tenant's key that may also roll back
    MEMBER = "member"  # a tenant's key: read, execute, rate


@dataclass(frozen=True)
class KeyInfo:
    """What a request learns from its key (never the secret)."""

    id: int
    tenant_id: TenantId | None
    role: KeyRole
    prefix: str
    name: str

    @property
    def is_admin(self) -> bool:
        return self.role is KeyRole.ADMIN

    @property
    def actor(self) -> str:
        """Who did it, in audit trails (label moves, feedback)."""
        return f"apikey:{self.prefix}"


@dataclass(frozen=True)
class NewKey:
    info: KeyInfo
    secret: str  # shown once


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(id=row.id, tenant_id=row.tenant_id, role=KeyRole(row.role),
                   prefix=row.prefix, name=row.name)


async def create_key(session: AsyncSession, tenant_id: TenantId | None, role: KeyRole, *,
                     name: str = "", created_by: str = "") -> NewKey:
    if (tenant_id is None) != (role is KeyRole.OPERATOR):
        raise ValueError("an operator key has no tenant; every other key has one")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(tenant_id=tenant_id, role=role.value, name=name[:100],
                 prefix=secret[:SHOWN_CHARS], secret_hash=hash_secret(secret),
                 created_by=created_by[:200])
    session.add(row)
    await session.flush()
    return NewKey(_info(row), secret)


async def find_key(session: AsyncSession, secret: str) -> KeyInfo | None:
    """The live key with this secret, or None (unknown or revoked)."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        return None
    row = await session.scalar(
        select(ApiKey).where(ApiKey.secret_hash == hash_secret(secret),
                             ApiKey.revoked_at.is_(None))
    )
    return _info(row) if row is not None else None


async def key_by_id(session: AsyncSession, key_id: int) -> KeyInfo | None:
    """A live key by id (the dashboard's session cookie names the key, not its secret)."""
    row = await session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
    )
    return _info(row) if row is not None else None


async def list_keys(session: AsyncSession, tenant_id: TenantId | None) -> list[ApiKey]:
    """A tenant's live keys (None: the operator keys), oldest first."""
    query = select(ApiKey).where(ApiKey.revoked_at.is_(None)).order_by(ApiKey.id)
    query = query.where(ApiKey.tenant_id.is_(None) if tenant_id is None
                        else ApiKey.tenant_id == tenant_id)
    return list(await session.scalars(query))


async def revoke_key(session: AsyncSession, prefix: str, *,
                     tenant_id: TenantId | None = None) -> int:
    """Revoke the live keys shown as `prefix` — only that tenant's when `tenant_id` is given
    (a chat command), any when not (the operator's CLI). Returns how many were revoked."""
    query = select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
    if tenant_id is not None:
        query = query.where(ApiKey.tenant_id == tenant_id)
    rows = list(await session.scalars(query))
    for row in rows:
        row.revoked_at = utcnow()
    return len(rows)
