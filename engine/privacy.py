"""GDPR: export everything of one tenant, and delete it everywhere (DB, chromadb, Redis)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, inspect, select

from engine.runtime import Runtime
from engine.storage.models import (
    Agent,
    AgentVersion,
    Base,
    Evolution,
    Execution,
    Feedback,
    Label,
    LabelMove,
    Tenant,
    Tool,
)
from engine.types import TenantId

# children before parents, so foreign keys never block a delete
TENANT_TABLES: list[type[Base]] = [
    Feedback, Execution, Evolution, Tool, LabelMove, Label, AgentVersion, Agent,
]


def _row(row: Base) -> dict[str, Any]:
    mapper = inspect(type(row))
    return {
        column.key: _plain(getattr(row, column.key)) for column in mapper.column_attrs
    }


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


async def export_tenant_data(rt: Runtime, tenant_id: TenantId) -> dict[str, Any]:
    """Every row and knowledge entry of one tenant, as JSON-ready data."""
    data: dict[str, Any] = {"tenant_id": tenant_id, "tables": {}}
    async with rt.sessions() as session:
        tenant = await session.get(Tenant, tenant_id)
        if tenant is None:
            raise LookupError(f"no tenant {tenant_id!r}")
        data["tables"]["tenants"] = [_row(tenant)]
        for model in TENANT_TABLES:
            rows = await session.scalars(select(model).where(model.tenant_id == tenant_id))  # type: ignore[attr-defined]
            data["tables"][model.__tablename__] = [_row(r) for r in rows]
    data["knowledge"] = await rt.knowledge.export_tenant(tenant_id)
    return data


async def delete_tenant_data(rt: Runtime, tenant_id: TenantId) -> dict[str, int]:
    """Remove the tenant from the database, the knowledge store and Redis. Returns counts."""
    counts: dict[str, int] = {}
    async with rt.sessions() as session, session.begin():
        for model in TENANT_TABLES:
            result = await session.execute(
                delete(model).where(model.tenant_id == tenant_id)  # type: ignore[attr-defined]
            )
            counts[model.__tablename__] = int(result.rowcount or 0)  # type: ignore[attr-defined]
        result = await session.execute(delete(Tenant).where(Tenant.id == tenant_id))
        counts["tenants"] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    counts["knowledge"] = await rt.knowledge.delete_tenant(tenant_id)
    counts["redis_keys"] = await rt.queue.forget_tenant(tenant_id)
    return counts
