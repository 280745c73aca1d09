"""Files in the console: `/attach PATH` reads a local file for the next objective (checked at
once with the engine's rules, so a refusal is said before anything is asked); the files an
answer brings are saved under DATA_DIR/outbox and their paths printed."""

from __future__ import annotations

from pathlib import Path

from engine.files.limits import MAX_FILE_BYTES, FileRefused, check_file, safe_name
from engine.types import Attachment, SandboxFile

USAGE = "/attach PATH — share a file (CSV, XLSX, JSON, …) with your next objective"


def read_attachment(path_text: str) -> Attachment:
    """The file at `path_text`, or FileRefused / OSError saying why it can't be shared.
    Never reads more than one byte past the engine's per-file limit."""
    path = Path(path_text.strip()).expanduser()
    if not path.is_file():
        raise FileRefused(f"{path} is not a file")
    with path.open("rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    checked = check_file(path.name, data)  # raises FileRefused with the reason
    return Attachment(name=checked.name, data=checked.data)


def save_outputs(outbox: Path, execution_id: int, files: list[SandboxFile]) -> list[Path]:
    """Write an answer's files to `outbox/<execution>-<name>` (plain names only)."""
    outbox.mkdir(parents=True, exist_ok=True)
    saved = []
    for file in files:
        target = outbox / f"{execution_id}-{safe_name(file.name)}"
        target.write_bytes(file.data)
        saved.append(target)
    return saved
