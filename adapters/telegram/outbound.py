"""Pure converters from the engine's outputs to Telegram messages.

Engine Documents and answers become HTML chunks (with a plain-text twin for the retry when
Telegram rejects the formatting), each under 4,096 UTF-16 code units; answers and documents
get their inline keyboards; the feedback category keyboard and the comment prompt are built
here. Nothing here performs I/O.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import MessageLimit
from telegram.helpers import mention_html

from adapters.telegram.inbound import (
    COMMENT_CHOICE,
    COMMENT_MARKER,
    action_data,
    category_data,
    feedback_data,
)
from engine.types import Block, Button, Document, FeedbackCategory

TEXT_LIMIT = int(MessageLimit.MAX_TEXT_LENGTH)  # 4096, counted after entity parsing
SEPARATOR = "\n\n"  # between the pieces of a message


@dataclass(frozen=True)
class Chunk:
    """One Telegram message: the HTML to send and the plain text to retry with."""

    html: str
    plain: str


def escape(text: str) -> str:
    """Escape text for Telegram's HTML parse mode (<, > and & only)."""
    return html.escape(text, quote=False)


def utf16_len(text: str) -> int:
    """Telegram counts lengths in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


# --- keyboards and prompts ------------------------------------------------------------


def answer_keyboard(execution_id: int) -> InlineKeyboardMarkup:
    """👍 👎 💬 / 1–5 under every answer."""
    def button(label: str, choice: str) -> InlineKeyboardButton:
        return InlineKeyboardButton(label, callback_data=feedback_data(execution_id, choice))

    return InlineKeyboardMarkup([
        [button("👍", "4"), button("👎", "2"), button("💬", COMMENT_CHOICE)],
        [button(str(n), str(n)) for n in range(1, 6)],
    ])


def document_keyboard(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    """A document's buttons in one row (any whose data would be too long is left out)."""
    row = []
    for button in buttons:
        data = action_data(button.action, button.value)
        if data is not None:
            row.append(InlineKeyboardButton(button.label, callback_data=data))
    return InlineKeyboardMarkup([row]) if row else None


CATEGORIES_PER_ROW = 2  # full labels ("Incomplete", "Too short") stay readable on a phone


def category_keyboard(execution_id: int, user_id: int) -> InlineKeyboardMarkup:
    """Every feedback category, two a row, then Skip; the buttons are the tapping user's."""
    buttons = [
        InlineKeyboardButton(category.label,
                             callback_data=category_data(execution_id, user_id, category))
        for category in FeedbackCategory
    ]
    rows = [buttons[i : i + CATEGORIES_PER_ROW]
            for i in range(0, len(buttons), CATEGORIES_PER_ROW)]
    skip = InlineKeyboardButton("Skip", callback_data=category_data(execution_id, user_id, None))
    return InlineKeyboardMarkup([*rows, [skip]])


def category_prompt(user_id: int, name: str) -> Chunk:
    """The message under an answer that asks 💬's user what kind of problem it has."""
    tail = ", what was the problem with this answer? Pick one (or Skip), then reply with a comment."
    return Chunk(html="💬 " + mention_html(user_id, name) + escape(tail),
                 plain=f"💬 {name}{tail}")


def category_chosen(user_id: int, name: str, category: FeedbackCategory | None) -> Chunk:
    """The category message once a choice is made: who chose what, without the buttons."""
    choice = category.label if category else "no category"
    return Chunk(html="💬 " + mention_html(user_id, name) + escape(f": {choice}"),
                 plain=f"💬 {name}: {choice}")


def comment_prompt(execution_id: int, user_id: int, name: str,
                   category: FeedbackCategory | None = None) -> Chunk:
    """The ForceReply prompt asking for a comment; inbound.comment_from_reply reads the answer
    and the category back from its end."""
    named = f" ({category.label})" if category else ""
    tail = f", reply to this message with your {COMMENT_MARKER}{execution_id}{named}."
    return Chunk(
        html="💬 " + mention_html(user_id, name) + escape(tail),
        plain=f"💬 {name}{tail}",
    )


def done_note(message_html: str, message_plain: str, note: str) -> Chunk | None:
    """An acted-on announcement with who did what appended; None when it would not fit."""
    chunk = Chunk(html=f"{message_html}{SEPARATOR}<i>✔ {escape(note)}</i>",
                  plain=f"{message_plain}{SEPARATOR}✔ {note}")
    return chunk if utf16_len(chunk.html) <= TEXT_LIMIT else None


# --- text laid out in chunks under the limit -------------------------------------------


@dataclass(frozen=True)
class _Line:
    html: str
    plain: str
    glue: str = "\n"  # what joins it to the previous line ("" for a hard-split continuation)


@dataclass(frozen=True)
class _Piece:
    """A block of lines wrapped in one pair of tags (closed and reopened across chunks)."""

    lines: list[_Line]
    open: str = ""
    close: str = ""

    @property
    def overhead(self) -> int:
        return utf16_len(self.open) + utf16_len(self.close)

    def has_text(self) -> bool:
        return any(line.plain.strip() for line in self.lines)


def _line_budget(limit: int) -> int:
    return max(limit - 100, limit // 2)  # room for the tags around a fragment


def _hard_split(raw: str, budget: int) -> list[str]:
    """Split one over-long raw line so each part's escaped form fits the budget."""
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for char in raw:
        cost = utf16_len(escape(char))
        if size + cost > budget and current:
            parts.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += cost
    if current or not parts:
        parts.append("".join(current))
    return parts


def _text_lines(text: str, limit: int) -> list[_Line]:
    lines: list[_Line] = []
    for raw in text.split("\n"):
        for i, part in enumerate(_hard_split(raw, _line_budget(limit))):
            lines.append(_Line(escape(part), part, "\n" if i == 0 else ""))
    return lines


def _piece(text: str, limit: int, open_: str = "", close: str = "") -> _Piece:
    return _Piece(_text_lines(text, limit), open_, close)


@dataclass
class _Packer:
    """Lays pieces out, SEPARATOR between them, into as few chunks as fit the limit."""

    limit: int
    chunks: list[Chunk] = field(default_factory=list)
    html: list[str] = field(default_factory=list)  # finished fragments of the current chunk
    plain: list[str] = field(default_factory=list)
    body_html: list[str] = field(default_factory=list)  # the open fragment's lines
    body_plain: list[str] = field(default_factory=list)
    used: int = 0  # utf-16 size of the current chunk's finished fragments (with separators)
    body: int = 0  # utf-16 size of the open fragment's lines

    def add(self, piece: _Piece) -> None:
        """A piece too long for one chunk continues in the next, its tags around each part."""
        for line in piece.lines:
            glue = line.glue if self.body_html else ""
            cost = utf16_len(glue) + utf16_len(line.html)
            separator = utf16_len(SEPARATOR) if self.html else 0
            if self.used + separator + piece.overhead + self.body + cost > self.limit:
                self._close_fragment(piece)
                self.flush()
                glue, cost = "", utf16_len(line.html)
            self.body_html.append(glue + line.html)
            self.body_plain.append(glue + line.plain)
            self.body += cost
        if "".join(self.body_plain).strip():
            self._close_fragment(piece)
            self.used = utf16_len(SEPARATOR.join(self.html))
        self._clear_body()

    def _close_fragment(self, piece: _Piece) -> None:
        if self.body_html:
            self.html.append(piece.open + "".join(self.body_html) + piece.close)
            self.plain.append("".join(self.body_plain))
        self._clear_body()

    def _clear_body(self) -> None:
        self.body_html, self.body_plain, self.body = [], [], 0

    def flush(self) -> None:
        if self.html:
            self.chunks.append(Chunk(SEPARATOR.join(self.html), SEPARATOR.join(self.plain)))
        self.html, self.plain, self.used = [], [], 0


def pack(pieces: Sequence[_Piece], limit: int = TEXT_LIMIT) -> list[Chunk]:
    packer = _Packer(limit)
    for piece in pieces:
        packer.add(piece)
    packer.flush()
    return packer.chunks


# --- answers and documents ------------------------------------------------------------


_FENCE = re.compile(r"```[^\n`]*\n?(.*?)```", re.S)


def _answer_pieces(text: str, limit: int) -> list[_Piece]:
    """The model's text, its ``` fenced blocks as <pre>."""
    pieces: list[_Piece] = []
    position = 0
    for match in _FENCE.finditer(text):
        before = text[position : match.start()].strip("\n")
        if before.strip():
            pieces.append(_piece(before, limit))
        code = match.group(1).strip("\n")
        if code.strip():
            pieces.append(_piece(code, limit, "<pre>", "</pre>"))
        position = match.end()
    rest = text[position:].strip("\n")
    if rest.strip() or not pieces:
        pieces.append(_piece(rest or "(empty answer)", limit))
    return pieces


def render_answer(text: str, footer: str, limit: int = TEXT_LIMIT) -> list[Chunk]:
    """An answer: its text, then the footer (`v12 · 2 tools · 3.1 s`) in italics."""
    return pack([*_answer_pieces(text, limit), _piece(footer, limit, "<i>", "</i>")], limit)


def render_partial(text: str, limit: int = TEXT_LIMIT) -> list[Chunk]:
    """An answer still being written, rendered as the answer is (so always whole HTML: text
    is escaped, tags are ours); a ``` block still open is shown closed."""
    if text.count("```") % 2 == 1:
        text += "\n```"
    return pack(_answer_pieces(text, limit), limit)


def with_failure(chunk: Chunk, reason: str, limit: int = TEXT_LIMIT) -> Chunk | None:
    """A partial answer marked as cut short, the notice under it; None when it won't fit."""
    marked = Chunk(html=f"{chunk.html}{SEPARATOR}⚠️ {escape(reason)}",
                   plain=f"{chunk.plain}{SEPARATOR}⚠️ {reason}")
    return marked if utf16_len(marked.html) <= limit else None


# how each kind of text block is wrapped: header bold, diff and code in <pre>, context italics
_BLOCK_TAGS = {
    "header": ("<b>", "</b>"),
    "text": ("", ""),
    "context": ("<i>", "</i>"),
    "code": ("<pre>", "</pre>"),
    "diff": ('<pre><code class="language-diff">', "</code></pre>"),
}


def _fields_piece(fields: Sequence[tuple[str, str]], limit: int) -> _Piece:
    """`key: value` lines, the key in bold (when a long line is split: on its first part)."""
    lines = []
    for key, value in fields:
        for i, part in enumerate(_hard_split(f"{key}: {value}", _line_budget(limit))):
            if i == 0 and part.startswith(f"{key}:"):
                rest = part[len(key) + 1 :]
                lines.append(_Line(f"<b>{escape(key)}</b>:{escape(rest)}", part))
            else:
                lines.append(_Line(escape(part), part, "\n" if i == 0 else ""))
    return _Piece(lines)


def _block_piece(block: Block, limit: int) -> _Piece:
    if block.kind == "fields":
        return _fields_piece(block.fields, limit)
    open_, close = _BLOCK_TAGS[block.kind]
    return _piece(block.text, limit, open_, close)


def render_document(document: Document, limit: int = TEXT_LIMIT) -> list[Chunk]:
    """Every block rendered natively; the summary alone when no block has text."""
    pieces = [_block_piece(block, limit) for block in document.blocks]
    pieces = [piece for piece in pieces if piece.has_text()]
    if not pieces:
        pieces = [_piece(document.summary or "(empty)", limit)]
    return pack(pieces, limit)


def render_text(text: str, limit: int = TEXT_LIMIT) -> list[Chunk]:
    return pack([_piece(text, limit)], limit)
