"""Updates built from python-telegram-bot's own objects and serialized with `to_dict()` — the
JSON Telegram would send."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from telegram import (
    CallbackQuery,
    Chat,
    ForumTopicCreated,
    Message,
    MessageEntity,
    MessageReactionUpdated,
    ReactionTypeCustomEmoji,
    ReactionTypeEmoji,
    ReactionTypePaid,
    Update,
    User,
)

from tests.adapters.telegram.double import BOT_ID, BOT_USERNAME

NOW = datetime(2025, 1, 1, tzinfo=UTC)
_ids = itertools.count(1)
_message_ids = itertools.count(100)

ME = User(id=BOT_ID, is_bot=True, first_name="evobot", username=BOT_USERNAME)


def user(user_id: int, name: str | None = None, *, bot: bool = False) -> User:
    return User(id=user_id, is_bot=bot, first_name=name or f"user{user_id}")


def private(user_id: int) -> Chat:
    return Chat(id=user_id, type=Chat.PRIVATE, first_name=f"user{user_id}")


def group(chat_id: int, *, forum: bool = False) -> Chat:
    return Chat(id=chat_id, type=Chat.SUPERGROUP, title=f"group {chat_id}", is_forum=forum)


def _entities(text: str) -> tuple[MessageEntity, ...]:
    """bot_command at 0 and @mentions, with UTF-16 offsets as Telegram computes them."""
    out = []
    if text.startswith("/"):
        end = len(text.split()[0])
        out.append(MessageEntity(MessageEntity.BOT_COMMAND, 0, end))
    for index, word in _words(text):
        if word.startswith("@") and len(word) > 1:
            offset = len(text[:index].encode("utf-16-le")) // 2
            out.append(MessageEntity(MessageEntity.MENTION, offset, len(word)))
    return tuple(out)


def _words(text: str) -> list[tuple[int, str]]:
    out, index = [], 0
    for word in text.split(" "):
        out.append((index, word.rstrip(",.:!?")))
        index += len(word) + 1
    return out


def message(
    chat: Chat, sender: User | None, text: str, *, message_id: int | None = None,
    reply_to: Message | None = None, thread_id: int | None = None,
    sender_chat: Chat | None = None,
) -> Message:
    msg = Message(
        message_id=message_id or next(_message_ids), date=NOW, chat=chat, from_user=sender,
        text=text, entities=_entities(text), reply_to_message=reply_to,
        message_thread_id=thread_id, is_topic_message=True if thread_id else None,
        sender_chat=sender_chat,
    )
    return msg


def bot_message(chat: Chat, message_id: int, text: str) -> Message:
    return Message(message_id=message_id, date=NOW, chat=chat, from_user=ME, text=text)


def topic_root(chat: Chat, thread_id: int, creator: User) -> Message:
    return Message(message_id=thread_id, date=NOW, chat=chat, from_user=creator,
                   forum_topic_created=ForumTopicCreated(name="topic", icon_color=0x6FB9F0))


def text_update(chat: Chat, sender: User | None, text: str, *, update_id: int | None = None,
                **kwargs: Any) -> dict[str, Any]:
    msg = message(chat, sender, text, **kwargs)
    return Update(update_id=update_id or next(_ids), message=msg).to_dict()


def edited_update(chat: Chat, sender: User, text: str) -> dict[str, Any]:
    msg = message(chat, sender, text)
    return Update(update_id=next(_ids), edited_message=msg).to_dict()


def reaction(kind: str) -> Any:
    if kind == "custom":
        return ReactionTypeCustomEmoji("5368324170671202286")
    if kind == "paid":
        return ReactionTypePaid()
    return ReactionTypeEmoji(kind)


def reaction_update(chat: Chat, sender: User | None, message_id: int, old: list[str],
                    new: list[str], *, update_id: int | None = None,
                    actor_chat: Chat | None = None) -> dict[str, Any]:
    change = MessageReactionUpdated(
        chat=chat, message_id=message_id, date=NOW,
        old_reaction=[reaction(k) for k in old], new_reaction=[reaction(k) for k in new],
        user=sender, actor_chat=actor_chat,
    )
    return Update(update_id=update_id or next(_ids), message_reaction=change).to_dict()


def callback_update(chat: Chat, sender: User, on_message_id: int, data: str, *,
                    text: str = "answer", update_id: int | None = None,
                    thread_id: int | None = None) -> dict[str, Any]:
    msg = Message(message_id=on_message_id, date=NOW, chat=chat, from_user=ME, text=text,
                  message_thread_id=thread_id, is_topic_message=True if thread_id else None)
    query = CallbackQuery(id=f"cq{next(_ids)}", from_user=sender, chat_instance="ci",
                          data=data, message=msg)
    return Update(update_id=update_id or next(_ids), callback_query=query).to_dict()


def next_update_id() -> int:
    return next(_ids)
