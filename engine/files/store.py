"""Files on disk, one directory per tenant, each file under a generated name.

`DATA_DIR/files/<hash of the tenant id>/<random hex>.<type>`: neither the tenant id nor the
user's file name ever becomes part of a path, so no name (`../../etc/passwd`, a NUL, a
4,000-character name) can reach outside the tenant's directory. The user's (made safe) name
and the content's hash live in the `files` table (engine/storage/files.py). The web process
stores what users share, the worker reads it and stores what the code makes: both need the
same DATA_DIR (a shared volume when they run on different hosts).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from engine.storage import files as rows
from engine.storage.models import StoredFile
from engine.storage.repo import TenantRepo
from engine.types import SandboxFile, TenantId

STORAGE_KEY = re.compile(r"^[0-9a-f]{32}\.[a-z]{2,5}$")


def tenant_dir(root: Path, tenant_id: TenantId) -> Path:
    return root / hashlib.sha256(tenant_id.encode()).hexdigest()[:32]


def path_of(root: Path, row: StoredFile) -> Path:
    """Where a row's bytes are; refuses a storage key we could not have generated."""
    if not STORAGE_KEY.match(row.storage_key):
        raise ValueError(f"bad storage key {row.storage_key!r}")
    return tenant_dir(root, row.tenant_id) / row.storage_key


async def save(repo: TenantRepo, root: Path, *, execution_id: int | None, direction: str,
               file: SandboxFile) -> StoredFile:
    """Write the bytes (atomically) and record the row in the repo's transaction."""
    extension = file.name.rsplit(".", 1)[-1].lower() if "." in file.name else "bin"
    if not re.fullmatch(r"[a-z]{2,5}", extension):
        extension = "bin"
    key = f"{uuid.uuid4().hex}.{extension}"
    target = tenant_dir(root, repo.tenant_id) / key
    await asyncio.to_thread(_write, target, file.data)
    return await rows.add_file(
        repo, execution_id=execution_id, direction=direction, name=file.name[:200],
        media_type=file.media_type[:100], size=len(file.data),
        sha256=hashlib.sha256(file.data).hexdigest(), storage_key=key,
    )


def _write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    os.replace(partial, target)


async def load(root: Path, row: StoredFile) -> SandboxFile:
    data = await asyncio.to_thread(path_of(root, row).read_bytes)
    return SandboxFile(name=row.name, media_type=row.media_type, data=data)


async def export_files(repo: TenantRepo, root: Path) -> list[dict[str, Any]]:
    """Every file of the tenant with its content (base64), for the GDPR export."""
    exported = []
    for row in await rows.tenant_files(repo):
        path = path_of(root, row)
        data = await asyncio.to_thread(path.read_bytes) if path.exists() else None
        exported.append({
            "id": row.id, "execution_id": row.execution_id, "direction": row.direction,
            "name": row.name, "media_type": row.media_type, "size": row.size,
            "sha256": row.sha256,
            "content_base64": base64.b64encode(data).decode() if data is not None else None,
        })
    return exported


async def delete_tenant_files(root: Path, tenant_id: TenantId) -> int:
    """Remove the tenant's directory; returns how many files it held."""
    directory = tenant_dir(root, tenant_id)
    if not directory.is_dir():
        return 0
    count = sum(1 for entry in directory.iterdir() if entry.is_file())
    await asyncio.to_thread(shutil.rmtree, directory)
    return count
