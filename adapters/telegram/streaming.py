"""Answers shown in Telegram while they are written (see docs/ARCHITECTURE.md, Adapters).

A partial answer is rendered exactly as the answer is (outbound.render_partial: escaped text,
our own tags, so every partial is whole HTML) into chunks under 4,096. Every chunk but the
last is finished: it is sent as a message of its own. The last, still growing, is shown as
a draft (sendMessageDraft, private chats) or as a message edited in place (editMessageText,
everywhere else, and where drafts are refused). The answer then lands in those messages,
the last carrying the rating keyboard, as a non-streamed answer would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from telegram import InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, InvalidToken

from adapters.telegram.client import Sender
from adapters.telegram.outbound import Chunk, render_partial, render_text, with_failure


class DraftsRefused(Exception):
    """The Bot API here has no sendMessageDraft (an older server) or refuses it."""


@dataclass
class Place:
    """Where an answer goes."""

    chat_id: int
    thread_id: int | None
    reply_to: int | None


@dataclass
class TelegramStream:
    """One answer's messages (and draft) while it is written."""

    sender: Sender
    place: Place
    draft_id: int | None = None  # None: the growing chunk is an edited message
    sent: list[int] = field(default_factory=list)  # message ids, oldest first
    # what each message shows (None: unknown, a message an earlier attempt left)
    shown: list[Chunk | None] = field(default_factory=list)
    drafted: Chunk | None = None  # what the draft shows

    def __post_init__(self) -> None:
        self.shown += [None] * (len(self.sent) - len(self.shown))

    @property
    def first_id(self) -> int | None:
        return self.sent[0] if self.sent else None

    async def write(self, text: str) -> None:
        chunks = render_partial(text)
        if self.draft_id is None:
            await self.show(chunks)
            return
        await self.show(chunks[:-1])
        try:
            await self.sender.draft(self.place.chat_id, self.draft_id, chunks[-1],
                                    thread_id=self.place.thread_id)
        except (BadRequest, InvalidToken, Forbidden) as exc:  # 404: no such method here
            raise DraftsRefused(str(exc)) from exc
        self.drafted = chunks[-1]

    def without_drafts(self) -> None:
        """Go on by editing a message (the draft's chunk is sent at the next write)."""
        self.draft_id = None
        self.drafted = None

    async def show(self, chunks: list[Chunk], markup: InlineKeyboardMarkup | None = None
                   ) -> list[int]:
        """Make the messages show `chunks` (editing only what changed; the last carries
        `markup`); the message ids."""
        for index, chunk in enumerate(chunks):
            last = markup if index == len(chunks) - 1 else None
            if index >= len(self.sent):
                message = await self.sender.send_one(
                    self.place.chat_id, chunk, thread_id=self.place.thread_id,
                    reply_to=self.place.reply_to if index == 0 else None, markup=last)
                self.sent.append(message.message_id)
                self.shown.append(chunk)
            elif self.shown[index] != chunk or last is not None:
                await self.sender.edit(self.place.chat_id, self.sent[index], chunk, last)
                self.shown[index] = chunk
        for message_id in self.sent[len(chunks):]:  # the answer got shorter
            await self.sender.delete(self.place.chat_id, message_id)
        del self.sent[len(chunks):], self.shown[len(chunks):]
        return list(self.sent)

    async def fail(self, reason: str) -> int:
        """What was written stays, marked as cut short: the last message edited (a draft,
        which would vanish, sent); or, unknown, turned into the notice; the notice on its own
        when it won't fit, or nothing was shown."""
        notice = render_text(f"⚠️ {reason}")[0]
        if self.drafted is not None:
            marked = with_failure(self.drafted, reason)
            if marked is not None:
                return (await self.show([*self.shown_chunks(), marked]))[-1]
            await self.show([*self.shown_chunks(), self.drafted])
        elif self.sent:
            last = self.shown[-1]
            marked = with_failure(last, reason) if last is not None else notice
            if marked is not None:
                await self.sender.edit(self.place.chat_id, self.sent[-1], marked)
                return self.sent[-1]
        message = await self.sender.send_one(
            self.place.chat_id, notice, thread_id=self.place.thread_id,
            reply_to=None if self.sent else self.place.reply_to)
        return message.message_id

    def shown_chunks(self) -> list[Chunk]:
        return [chunk for chunk in self.shown if chunk is not None]
