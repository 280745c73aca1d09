"""GDPR: export everything of one tenant, and delete it everywhere (DB, chromadb, Redis)."""

from __future__ import annotations

from typing import Any

from engine.runtime import Runtime
from engine.storage.cross_tenant import delete_tenant_rows, export_tenant_rows
from engine.types import TenantId


async def export_tenant_data(rt: Runtime, tenant_id: TenantId) -> dict[str, Any]:
    """Every row and knowledge entry of one tenant, as JSON-ready data."""
    return {
        "tenant_id": tenant_id,
        "tables": await export_tenant_rows(rt.sessions, tenant_id),
        "knowledge": await rt.knowledge.export_tenant(tenant_id),
    }


async def delete_tenant_data(rt: Runtime, tenant_id: TenantId) -> dict[str, int]:
    """Remove the tenant from the database, the knowledge store and Redis. Returns counts."""
    counts = await delete_tenant_rows(rt.sessions, tenant_id)
    counts["knowledge"] = await rt.knowledge.delete_tenant(tenant_id)
    counts["redis_keys"] = await rt.queue.forget_tenant(tenant_id)
    return counts
