"""GDPR: export everything of one tenant, and delete it everywhere (DB, chromadb, Redis, the
files on disk)."""

from __future__ import annotations

from typing import Any

from engine.files.store import delete_tenant_files, export_files
from engine.runtime import Runtime
from engine.storage.cross_tenant import delete_tenant_rows, export_tenant_rows
from engine.types import TenantId


async def export_tenant_data(rt: Runtime, tenant_id: TenantId) -> dict[str, Any]:
    """Every row, knowledge entry and file (base64) of one tenant, as JSON-ready data."""
    tables = await export_tenant_rows(rt.sessions, tenant_id)
    async with rt.repo(tenant_id) as repo:
        files = await export_files(repo, rt.settings.files_dir)
    return {
        "tenant_id": tenant_id,
        "tables": tables,
        "knowledge": await rt.knowledge.export_tenant(tenant_id),
        "files": files,
    }


async def delete_tenant_data(rt: Runtime, tenant_id: TenantId) -> dict[str, int]:
    """Remove the tenant from the database, the knowledge store, Redis and the file store.
    Returns counts."""
    counts = await delete_tenant_rows(rt.sessions, tenant_id)
    counts["knowledge"] = await rt.knowledge.delete_tenant(tenant_id)
    counts["redis_keys"] = await rt.queue.forget_tenant(tenant_id)
    counts["stored_files"] = await delete_tenant_files(rt.settings.files_dir, tenant_id)
    return counts
