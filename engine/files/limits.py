"""What files the agent accepts, and the checks that decide it.

A file's type is decided by its content, not by its name: the extension must name one of
the supported types *and* the bytes must be that type (a PNG header for .png, a workbook
inside a bounded zip for .xlsx, text for .csv …). Anything else is refused with a message
the user sees, and nothing of a refused file is stored.
"""

from __future__ import annotations

import io
import json
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

MB = 1024 * 1024
MAX_FILE_BYTES = 20 * MB  # one file (Telegram's bots can't download more anyway)
MAX_MESSAGE_BYTES = 50 * MB  # all the files of one message (the sandbox's input cap)
MAX_FILES_PER_MESSAGE = 10
# an .xlsx is a zip: what it may unpack to, and how much one member may be compressed
MAX_WORKBOOK_UNPACKED_BYTES = 200 * MB
MAX_WORKBOOK_MEMBERS = 2_000
MAX_COMPRESSION_RATIO = 100
MAX_IMAGE_PIXELS = 50_000_000
NAME_MAX = 100  # the sandbox's plain-name limit (engine/sandbox/limits.py)

TEXT_TYPES = {
    "csv": "text/csv", "tsv": "text/tab-separated-values", "txt": "text/plain",
    "md": "text/markdown", "json": "application/json",
}
BINARY_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf", "png": "image/png", "jpg": "image/jpeg",
}
MEDIA_TYPES = TEXT_TYPES | BINARY_TYPES
ALIASES = {"jpeg": "jpg", "markdown": "md", "text": "txt"}
TABLE_TYPES = frozenset({"csv", "tsv", "xlsx"})
IMAGE_TYPES = frozenset({"png", "jpg"})
SUPPORTED = "CSV, TSV, XLSX, JSON, TXT, MD, PDF (with text), PNG, JPG"
LIMITS_TEXT = (
    f"{SUPPORTED}; up to {MAX_FILE_BYTES // MB} MB a file, {MAX_MESSAGE_BYTES // MB} MB and "
    f"{MAX_FILES_PER_MESSAGE} files a message"
)


class FileRefused(ValueError):
    """A file the agent won't take; the message says why, for the user."""


@dataclass(frozen=True)
class CheckedFile:
    name: str  # a safe plain name: what the sandbox's working directory calls it
    kind: str  # "csv", "xlsx", … (a key of MEDIA_TYPES)
    data: bytes

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.kind]


def check_file(name: str, data: bytes) -> CheckedFile:
    """The file as the agent will see it, or FileRefused saying why not."""
    safe = safe_name(name)
    if len(data) > MAX_FILE_BYTES:
        raise FileRefused(f"{safe} is larger than {MAX_FILE_BYTES // MB} MB")
    if not data:
        raise FileRefused(f"{safe} is empty")
    kind = kind_of(safe)
    if kind is None:
        raise FileRefused(f"{safe}: this type of file is not supported (only {SUPPORTED})")
    problem = content_problem(kind, data)
    if problem is not None:
        raise FileRefused(f"{safe}: {problem}")
    return CheckedFile(safe, kind, data)


def kind_of(name: str) -> str | None:
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    extension = ALIASES.get(extension, extension)
    return extension if extension in MEDIA_TYPES else None


def safe_name(name: str) -> str:
    """A plain file name made from whatever the user's platform called it: the last path
    part only, no control or shell-special characters, no leading dot, bounded length."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name
    base = unicodedata.normalize("NFC", base)
    base = re.sub(r"[^\w.\- ()]+", "_", base).strip(" .")
    if not base:
        base = "file"
    if len(base) > NAME_MAX:
        stem, dot, extension = base.rpartition(".")
        keep = NAME_MAX - len(extension) - 1
        base = f"{stem[:keep]}.{extension}" if dot and keep > 0 else base[:NAME_MAX]
    return base


def content_problem(kind: str, data: bytes) -> str | None:
    """Why these bytes are not a file of `kind`, or None."""
    if kind in TEXT_TYPES:
        return _text_problem(kind, data)
    if kind == "xlsx":
        return workbook_problem(data)
    if kind == "pdf":
        return None if data.startswith(b"%PDF-") else "not a PDF file"
    if kind == "png":
        return _png_problem(data)
    if data.startswith(b"\xff\xd8\xff"):
        return None
    return "not a JPEG image"


def _text_problem(kind: str, data: bytes) -> str | None:
    if b"\x00" in data[:65536]:
        return f"this is a binary file, not {kind.upper()} text"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "not UTF-8 text (save it as UTF-8 and share it again)"
    if kind == "json":
        try:
            json.loads(text)
        except ValueError as exc:
            return f"not valid JSON ({exc})"
    return None


def workbook_problem(data: bytes) -> str | None:
    """An .xlsx must be a zip holding a workbook, and must not unpack to more than the
    limits allow (a zip bomb is refused before anything inflates it)."""
    if not data.startswith(b"PK\x03\x04"):
        return "not an Excel workbook (.xlsx)"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return "a damaged Excel workbook (the zip can't be read)"
    names = {m.filename for m in members}
    if "xl/workbook.xml" not in names or "[Content_Types].xml" not in names:
        return "not an Excel workbook (.xlsx): no workbook inside the zip"
    if len(members) > MAX_WORKBOOK_MEMBERS:
        return f"a workbook of more than {MAX_WORKBOOK_MEMBERS} parts"
    unpacked = sum(m.file_size for m in members)
    if unpacked > MAX_WORKBOOK_UNPACKED_BYTES:
        return f"unpacks to more than {MAX_WORKBOOK_UNPACKED_BYTES // MB} MB"
    if any(m.file_size > MAX_COMPRESSION_RATIO * max(m.compress_size, 1) + MB
           for m in members):
        return "compressed suspiciously well (a zip bomb?)"
    return None


def _png_problem(data: bytes) -> str | None:
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or data[12:16] != b"IHDR":
        return "not a PNG image"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if width * height > MAX_IMAGE_PIXELS:
        return f"an image of {width}×{height} pixels is too large"
    return None


def unique_names(files: list[CheckedFile], taken: set[str] | None = None) -> list[CheckedFile]:
    """Two files of one message may share a name: the later ones get " (2)", " (3)"…"""
    seen = set(taken or ())
    renamed = []
    for file in files:
        name, number = file.name, 1
        while name.lower() in seen:
            number += 1
            stem, _, extension = file.name.rpartition(".")
            name = f"{stem} ({number}).{extension}"
        seen.add(name.lower())
        renamed.append(CheckedFile(name, file.kind, file.data))
    return renamed
