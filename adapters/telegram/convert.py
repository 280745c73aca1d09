"""Pure converters between Telegram (Bot API JSON / PTB objects) and the engine's types.

Inbound: messages → objectives, commands and comments; reaction diffs → ratings or
retractions; callback data → ratings, comment requests and document actions.
Outbound: engine Documents and answers → HTML chunks (with a plain-text twin for the retry
when Telegram rejects the formatting), each under the 4,096-character limit; inline keyboards.

Nothing here performs I/O; the app and notifier modules do.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from telegram import (
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    MessageReactionUpdated,
    ReactionType,
    ReactionTypeEmoji,
)
from telegram.constants import ChatType, MessageLimit
from telegram.helpers import mention_html

from engine import ratings
from engine.types import (
    Button,
    Document,
    FeedbackSource,
    InboundCommand,
    InboundFeedback,
    InboundMessage,
    MessageRef,
    TenantId,
)

PLATFORM = "telegram"
TEXT_LIMIT = int(MessageLimit.MAX_TEXT_LENGTH)  # 4096, counted after entity parsing
CALLBACK_LIMIT = 64  # bytes of callback_data

# DESIGN §3's map lives in the engine, shared with the other platforms
DEFAULT_REACTION_RATINGS = ratings.DEFAULT_REACTION_RATINGS


# --- identities ---------------------------------------------------------------------


@dataclass(frozen=True)
class BotIdentity:
    """Who the bot is (from getMe): needed to tell mentions and replies addressed to it."""

    id: int
    username: str


def tenant_of(chat_id: int | str) -> TenantId:
    return f"{PLATFORM}:{chat_id}"


def is_group(chat: Chat) -> bool:
    return chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)


@dataclass(frozen=True)
class Sender:
    user_id: str
    name: str | None
    anonymous_admin: bool = False


def sender_of(message: Message) -> Sender | None:
    """The person behind a message; None for other bots, channels and auto-forwards.

    An anonymous group admin posts as the group itself (`sender_chat` is the chat): that is a
    person, an admin by definition, identified by the chat.
    """
    chat = message.chat
    if message.is_automatic_forward:
        return None
    if message.sender_chat is not None:
        if message.sender_chat.id == chat.id and is_group(chat):
            return Sender(user_id=f"chat{chat.id}", name=chat.title, anonymous_admin=True)
        return None
    user = message.from_user
    if user is None or user.is_bot:
        return None
    return Sender(user_id=str(user.id), name=user.full_name or user.username)


def thread_of(message: Message) -> str | None:
    """Forum topics keep their message_thread_id; plain reply chains are not threads."""
    if message.is_topic_message and message.message_thread_id:
        return str(message.message_thread_id)
    return None


# --- messages → objectives / commands / comments -------------------------------------


def _is_command(message: Message) -> bool:
    entities = message.entities or ()
    return bool(entities) and entities[0].type == MessageEntity.BOT_COMMAND and (
        entities[0].offset == 0
    )


def replies_to_bot(message: Message, me: BotIdentity) -> bool:
    """A real reply to one of the bot's messages (in forum topics every message "replies" to
    the topic's creation message, which does not count)."""
    replied = message.reply_to_message
    if replied is None or replied.from_user is None or replied.from_user.id != me.id:
        return False
    return replied.forum_topic_created is None


def _addressed_text(message: Message, me: BotIdentity) -> tuple[bool, str]:
    """(is the bot mentioned or replied to, the text without the bot's mention)."""
    text = message.text or ""
    mentioned = False
    handle = "@" + me.username.lower()
    for entity, value in message.parse_entities(
        [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
    ).items():
        if entity.type == MessageEntity.MENTION and value.lower() == handle:
            mentioned = True
        elif entity.type == MessageEntity.TEXT_MENTION and entity.user and (
            entity.user.id == me.id
        ):
            mentioned = True
            text = text.replace(value, " ", 1)
    if mentioned:
        text = re.sub(re.escape(handle) + r"\b[,:]?", " ", text, flags=re.IGNORECASE)
    text = re.sub(r"[ \t]{2,}", " ", text).strip(" \t,:")
    return mentioned or replies_to_bot(message, me), text.strip()


def objective_from_message(message: Message, me: BotIdentity) -> InboundMessage | None:
    """A text message that is an objective for the bot, or None.

    Private chats: every text message. Groups: only when the bot is mentioned or replied to.
    Commands, other bots and anything that isn't plain text are not objectives.
    """
    if not message.text or _is_command(message):
        return None
    sender = sender_of(message)
    if sender is None:
        return None
    chat = message.chat
    if chat.type == ChatType.PRIVATE:
        text = message.text.strip()
    elif is_group(chat):
        addressed, text = _addressed_text(message, me)
        if not addressed:
            return None
    else:
        return None
    if not text:
        return None
    return InboundMessage(
        tenant_id=tenant_of(chat.id), channel_id=str(chat.id), user_id=sender.user_id,
        text=text, message_id=str(message.message_id), thread_id=thread_of(message),
        user_name=sender.name,
    )


def command_from_message(message: Message, me: BotIdentity) -> InboundCommand | None:
    """`/name[@bot] args…` → InboundCommand (is_admin still False: the app decides it)."""
    if not message.text or not _is_command(message):
        return None
    sender = sender_of(message)
    if sender is None:
        return None
    first = (message.entities or ())[0]
    token = message.text[1 : first.length]  # ASCII command: UTF-16 length == str length
    name, _, target = token.partition("@")
    if target and target.lower() != me.username.lower():
        return None  # addressed to another bot
    if not name:
        return None
    chat = message.chat
    return InboundCommand(
        tenant_id=tenant_of(chat.id), user_id=sender.user_id, name=name.lower(),
        args=message.text[first.length :].split(), channel_id=str(chat.id),
        is_admin=chat.type == ChatType.PRIVATE or sender.anonymous_admin,
    )


# The ForceReply prompt that asks for a comment carries the execution it is about.
COMMENT_PROMPT_RE = re.compile(r"comment on answer #(\d+)")


def comment_prompt(execution_id: int, user_id: int, name: str) -> Chunk:
    tail = f", reply to this message with your comment on answer #{execution_id}."
    return Chunk(
        html="💬 " + mention_html(user_id, name) + html.escape(tail, quote=False),
        plain=f"💬 {name}{tail}",
    )


def comment_from_reply(message: Message, me: BotIdentity) -> InboundFeedback | None:
    """A reply to the bot's comment prompt is the comment on that answer."""
    replied = message.reply_to_message
    if not message.text or replied is None or _is_command(message):
        return None
    if replied.from_user is None or replied.from_user.id != me.id:
        return None
    match = COMMENT_PROMPT_RE.search(replied.text or "")
    sender = sender_of(message)
    if match is None or sender is None:
        return None
    return InboundFeedback(
        tenant_id=tenant_of(message.chat.id), user_id=sender.user_id,
        source=FeedbackSource.COMMENT, comment=message.text.strip()[:4000],
        execution_id=int(match.group(1)),
    )


# --- reactions ------------------------------------------------------------------------


def rating_of(emoji: str, table: Mapping[str, int] | None = None) -> int | None:
    return ratings.rating_of(emoji, table)


@dataclass(frozen=True)
class ReactionChange:
    rating: int | None = None
    retract: bool = False


def _rated(reactions: Sequence[ReactionType], table: Mapping[str, int] | None) -> list[int]:
    """Ratings of the plain-emoji reactions, in order; custom and paid reactions are ignored."""
    out = []
    for reaction in reactions:
        if isinstance(reaction, ReactionTypeEmoji):
            rating = rating_of(reaction.emoji, table)
            if rating is not None:
                out.append(rating)
    return out


def _emoji(reactions: Sequence[ReactionType]) -> list[str]:
    return [ratings.normalize_emoji(r.emoji) for r in reactions if isinstance(r, ReactionTypeEmoji)]


def reaction_change(
    old: Sequence[ReactionType], new: Sequence[ReactionType],
    table: Mapping[str, int] | None = None,
) -> ReactionChange | None:
    """What a user's reaction update means as feedback.

    A newly added rated emoji sets the rating (the last one added wins); removing the last rated
    emoji retracts; removing one of several leaves the remaining one as the rating; anything
    else (custom or paid reactions, unmapped emoji) is no change.
    """
    old_emoji, new_emoji = _emoji(old), _emoji(new)
    added = [e for e in new_emoji if e not in old_emoji]
    added_ratings = _rated([ReactionTypeEmoji(e) for e in added], table)
    if added_ratings:
        return ReactionChange(rating=added_ratings[-1])
    old_rated, new_rated = _rated(old, table), _rated(new, table)
    if not new_rated:
        return ReactionChange(retract=True) if old_rated else None
    if [e for e in old_emoji if e not in new_emoji] and old_rated != new_rated:
        return ReactionChange(rating=new_rated[-1])
    return None


def feedback_from_reaction(
    update: MessageReactionUpdated, table: Mapping[str, int] | None = None
) -> InboundFeedback | None:
    """A person's reaction change on a message → a rating/retraction of that answer."""
    user = update.user
    if user is None or user.is_bot:  # anonymous (actor_chat) reactions have no person
        return None
    change = reaction_change(update.old_reaction, update.new_reaction, table)
    if change is None:
        return None
    return InboundFeedback(
        tenant_id=tenant_of(update.chat.id), user_id=str(user.id),
        source=FeedbackSource.REACTION, rating=change.rating, retract=change.retract,
        answer_ref=MessageRef(channel_id=str(update.chat.id), message_id=str(update.message_id)),
    )


# --- inline keyboards and callback data ----------------------------------------------


@dataclass(frozen=True)
class RateCallback:
    execution_id: int
    rating: int


@dataclass(frozen=True)
class CommentCallback:
    execution_id: int


@dataclass(frozen=True)
class ActionCallback:
    action: str  # rollback | apply | dismiss | …: the engine command of the button
    value: str


Callback = RateCallback | CommentCallback | ActionCallback

_FEEDBACK_DATA = re.compile(r"^fb:(\d+):([1-5c])$")
_ACTION_DATA = re.compile(r"^do:([a-z_]{1,20}):(.{0,40})$", re.S)


def answer_keyboard(execution_id: int) -> InlineKeyboardMarkup:
    """👍 👎 💬 / 1–5 under every answer."""
    def data(x: str) -> str:
        return f"fb:{execution_id}:{x}"

    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("👍", callback_data=data("4")),
             InlineKeyboardButton("👎", callback_data=data("2")),
             InlineKeyboardButton("💬", callback_data=data("c"))],
            [InlineKeyboardButton(str(n), callback_data=data(str(n))) for n in range(1, 6)],
        ]
    )


def document_keyboard(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    row = []
    for button in buttons:
        data = f"do:{button.action}:{button.value}"
        if len(data.encode()) > CALLBACK_LIMIT:
            continue
        row.append(InlineKeyboardButton(button.label, callback_data=data))
    return InlineKeyboardMarkup([row]) if row else None


def parse_callback(data: str | None) -> Callback | None:
    if not data:
        return None
    match = _FEEDBACK_DATA.match(data)
    if match:
        execution_id, what = int(match.group(1)), match.group(2)
        if what == "c":
            return CommentCallback(execution_id)
        return RateCallback(execution_id, int(what))
    match = _ACTION_DATA.match(data)
    if match:
        return ActionCallback(match.group(1), match.group(2))
    return None


# --- outbound text: HTML chunks under the limit ------------------------------------


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


@dataclass(frozen=True)
class _Line:
    html: str
    plain: str
    glue: str = "\n"  # what joins it to the previous line ("" for a hard-split continuation)


@dataclass(frozen=True)
class _Piece:
    lines: list[_Line]
    open: str = ""
    close: str = ""


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


def pack(pieces: Sequence[_Piece], limit: int = TEXT_LIMIT) -> list[Chunk]:
    """Lay pieces out ("\n\n" between them) into as few chunks as fit the limit; a piece too
    long for one chunk continues in the next, its tags closed and reopened around each part."""
    chunks: list[Chunk] = []
    frags_html: list[str] = []
    frags_plain: list[str] = []
    used = 0  # utf-16 size of the current chunk's finished fragments (with separators)

    def flush() -> None:
        nonlocal used
        if frags_html:
            chunks.append(Chunk("\n\n".join(frags_html), "\n\n".join(frags_plain)))
        frags_html.clear()
        frags_plain.clear()
        used = 0

    for piece in pieces:
        overhead = utf16_len(piece.open) + utf16_len(piece.close)
        body_html: list[str] = []
        body_plain: list[str] = []
        body = 0
        for line in piece.lines:
            glue = line.glue if body_html else ""
            cost = utf16_len(glue) + utf16_len(line.html)
            sep = 2 if frags_html else 0
            if used + sep + overhead + body + cost > limit:
                if body_html:
                    frags_html.append(piece.open + "".join(body_html) + piece.close)
                    frags_plain.append("".join(body_plain))
                    body_html, body_plain, body = [], [], 0
                flush()
                glue, cost = "", utf16_len(line.html)
            body_html.append(glue + line.html)
            body_plain.append(glue + line.plain)
            body += cost
        if body_html and "".join(body_plain).strip():
            frags_html.append(piece.open + "".join(body_html) + piece.close)
            frags_plain.append("".join(body_plain))
            used = utf16_len("\n\n".join(frags_html))
    flush()
    return chunks


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


def render_document(document: Document, limit: int = TEXT_LIMIT) -> list[Chunk]:
    """Blocks rendered natively: header bold, diff and code in <pre>, context italics."""
    pieces: list[_Piece] = []
    for block in document.blocks:
        if block.kind == "header":
            pieces.append(_piece(block.text, limit, "<b>", "</b>"))
        elif block.kind == "text":
            pieces.append(_piece(block.text, limit))
        elif block.kind == "context":
            pieces.append(_piece(block.text, limit, "<i>", "</i>"))
        elif block.kind == "code":
            pieces.append(_piece(block.text, limit, "<pre>", "</pre>"))
        elif block.kind == "diff":
            pieces.append(_piece(
                block.text, limit, '<pre><code class="language-diff">', "</code></pre>"
            ))
        elif block.kind == "fields":
            lines = []
            for key, value in block.fields:
                for i, part in enumerate(_hard_split(f"{key}: {value}", _line_budget(limit))):
                    if i == 0 and part.startswith(f"{key}:"):
                        rest = part[len(key) + 1 :]
                        lines.append(_Line(f"<b>{escape(key)}</b>:{escape(rest)}", part))
                    else:
                        lines.append(_Line(escape(part), part, "\n" if i == 0 else ""))
            pieces.append(_Piece(lines))
    pieces = [p for p in pieces if any(line.plain.strip() for line in p.lines)]
    if not pieces:
        pieces = [_piece(document.summary or "(empty)", limit)]
    return pack(pieces, limit)


def render_text(text: str, limit: int = TEXT_LIMIT) -> list[Chunk]:
    return pack([_piece(text, limit)], limit)
