"""The files of one execution: what its sandboxed code can read (the files shared in its
message and earlier in its thread) and what the model is told about them; then the files
its code made, neutralised where needed, stored, and handed on to be posted."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from engine.files import store
from engine.files.context import SharedFile, files_context
from engine.files.limits import MAX_MESSAGE_BYTES, kind_of
from engine.files.pdf import pdf_text, text_name
from engine.files.safety import neutralise_csv
from engine.runtime import Runtime
from engine.storage.files import OUT
from engine.storage.models import Execution, StoredFile
from engine.types import SandboxFile


@dataclass
class RunFiles:
    inputs: dict[str, bytes | Path] = field(default_factory=dict)  # sandbox name -> content
    context: str = ""  # added to the objective the model reads

    def objective(self, objective: str) -> str:
        return f"{objective}\n\n{self.context}" if self.context else objective


async def files_for(rt: Runtime, shared: list[StoredFile]) -> RunFiles:
    """Of the files shared in the thread (`thread_files`, oldest first), the newest first,
    within the sandbox's input limit; a newer file of the same name hides an older one."""
    if not shared:
        return RunFiles()
    root = rt.settings.files_dir
    chosen: dict[str, Path] = {}
    total = 0
    for stored in reversed(shared):
        if stored.name in chosen or total + stored.size > MAX_MESSAGE_BYTES:
            continue
        path = store.path_of(root, stored)
        if path.is_file():
            chosen[stored.name] = path
            total += stored.size
    if not chosen:
        return RunFiles()
    oldest_first = dict(reversed(chosen.items()))  # as they were shared
    return await asyncio.to_thread(_prepare, oldest_first)


def _prepare(shared: dict[str, Path]) -> RunFiles:
    """The sandbox's inputs (a PDF's text beside it) and what the model is told of them."""
    inputs: dict[str, bytes | Path] = dict(shared)
    described = []
    for name, path in shared.items():
        data = path.read_bytes()
        text = pdf_text(data) if kind_of(name) == "pdf" else None
        if text is not None:
            inputs.setdefault(text_name(name), text.encode())
        described.append(SharedFile(name, data, text))
    return RunFiles(inputs, files_context(described))


async def keep_outputs(rt: Runtime, row: Execution, made: list[SandboxFile]
                       ) -> list[SandboxFile]:
    """Store what the code made with the execution; CSV cells that would run as formulas in
    a spreadsheet are neutralised before anything is posted."""
    if not made:
        return []
    safe = [neutralised(file) for file in made]
    async with rt.repo(row.tenant_id) as repo:
        for file in safe:
            await store.save(repo, rt.settings.files_dir, execution_id=row.id, direction=OUT,
                             file=file)
    return safe


def neutralised(file: SandboxFile) -> SandboxFile:
    kind = kind_of(file.name)
    if kind not in ("csv", "tsv"):
        return file
    data = neutralise_csv(file.data, "\t" if kind == "tsv" else ",")
    return file if data == file.data else file.model_copy(update={"data": data})
