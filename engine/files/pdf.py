"""The text of a shared PDF (pypdf), so the agent's code can read it as a plain file: the
first pages only, and a bounded amount of text, because a PDF is whatever its sender made."""

from __future__ import annotations

import io
import logging

log = logging.getLogger(__name__)

MAX_PAGES = 50
MAX_TEXT_CHARS = 1_000_000


def text_name(pdf_name: str) -> str:
    """Where the text of `report.pdf` is for the sandboxed code: `report.pdf.txt`."""
    return f"{pdf_name}.txt"


def pdf_text(data: bytes) -> str | None:
    """The text of the first pages; None when the PDF can't be read or holds no text (a
    scan)."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages[:MAX_PAGES]]
    except Exception as exc:  # pypdf raises many kinds on a broken file
        log.info("a shared PDF could not be read: %s", exc)
        return None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    return text[:MAX_TEXT_CHARS] or None
