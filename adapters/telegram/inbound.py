"""Pure converters from Telegram (PTB objects) to the engine's inputs.

Messages become objectives, commands and comments; reaction diffs become ratings or
retractions; callback data becomes ratings, comment requests, feedback categories and document
actions. The formats this module parses (callback data, the comment prompt's marker) are
defined here too, so outbound.py builds exactly what is read back. Nothing here performs I/O.

A chosen feedback category needs no server-side state: it is recorded when tapped, and the
ForceReply prompt that follows names it, so the reply (which Telegram delivers with the
prompt's text) brings it back to whichever process handles it, however much later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from telegram import (
    Chat,
    Message,
    MessageEntity,
    MessageReactionUpdated,
    ReactionType,
    ReactionTypeEmoji,
    Update,
    User,
)
from telegram.constants import ChatType

from engine import ratings
from engine.types import (
    FeedbackCategory,
    FeedbackSource,
    InboundCommand,
    InboundFeedback,
    InboundMessage,
    MessageRef,
    TenantId,
)

PLATFORM = "telegram"


# --- shape ----------------------------------------------------------------------------------


def well_formed(update: Update) -> bool:
    """The fields the handlers read have the Bot API's types (PTB builds objects from any
    JSON without checking): a message's chat, id, sender, text and entities; a button press's
    sender, data and message; a reaction's chat, message and reactions; and for any update,
    the chat and user PTB itself files it under."""
    try:
        return _parts_ok(update) and _effective_ok(update)
    except (AttributeError, TypeError, ValueError):
        return False


def _effective_ok(update: Update) -> bool:
    chat, user = update.effective_chat, update.effective_user
    return (chat is None or _chat_ok(chat)) and (user is None or _user_ok(user))


def _parts_ok(update: Update) -> bool:
    if update.message is not None:
        return _message_ok(update.message) and (
            update.message.reply_to_message is None
            or _message_ok(update.message.reply_to_message))
    query = update.callback_query
    if query is not None:
        return _user_ok(query.from_user) and isinstance(query.data or "", str) and (
            query.message is None or (isinstance(query.message, Message)
                                      and _message_ok(query.message)))
    reaction = update.message_reaction
    if reaction is not None:
        return (_chat_ok(reaction.chat) and type(reaction.message_id) is int
                and (reaction.user is None or _user_ok(reaction.user))
                and all(isinstance(r, ReactionType) and (
                    not isinstance(r, ReactionTypeEmoji) or isinstance(r.emoji, str))
                        for r in (*reaction.old_reaction, *reaction.new_reaction)))
    return True


def _message_ok(message: Message) -> bool:
    return (_chat_ok(message.chat) and type(message.message_id) is int
            and (message.from_user is None or _user_ok(message.from_user))
            and all(isinstance(t, str) for t in (message.text or "", message.caption or ""))
            and all(isinstance(e, MessageEntity) and type(e.offset) is int
                    and type(e.length) is int for e in message.entities)
            and (message.message_thread_id is None or type(message.message_thread_id) is int))


def _chat_ok(chat: object) -> bool:
    return isinstance(chat, Chat) and type(chat.id) is int and isinstance(chat.type, str)


def _user_ok(user: object) -> bool:
    return isinstance(user, User) and type(user.id) is int and isinstance(
        user.first_name, str) and all(isinstance(v, str | None)
                                      for v in (user.last_name, user.username))
# the reaction map lives in the engine, shared with the other platforms
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
class Author:
    """The person behind a message."""

    user_id: str
    name: str | None
    anonymous_admin: bool = False


def author_of(message: Message) -> Author | None:
    """The person behind a message; None for other bots, channels and auto-forwards.

    An anonymous group admin posts as the group itself (`sender_chat` is the chat): that is a
    person, an admin by definition, identified by the chat.
    """
    chat = message.chat
    if message.is_automatic_forward:
        return None
    if message.sender_chat is not None:
        if message.sender_chat.id == chat.id and is_group(chat):
            return Author(user_id=f"chat{chat.id}", name=chat.title, anonymous_admin=True)
        return None
    user = message.from_user
    if user is None or user.is_bot:
        return None
    return Author(user_id=str(user.id), name=user.full_name or user.username)


def thread_of(message: Message) -> str | None:
    """Forum topics keep their message_thread_id; plain reply chains are not threads."""
    if message.is_topic_message and message.message_thread_id:
        return str(message.message_thread_id)
    return None


def topic_of(message: Message) -> int | None:
    """thread_of as the Bot API's message_thread_id."""
    thread = thread_of(message)
    return int(thread) if thread else None


# --- messages → objectives / commands / comments -------------------------------------


def is_command(message: Message) -> bool:
    """A text, or a file's caption (`/import` sent with an agent file), that is a command."""
    entities = message.entities or message.caption_entities or ()
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


def _mentions_bot(message: Message, me: BotIdentity) -> tuple[bool, str]:
    """(is the bot mentioned, the text — or a file's caption — with text-mentions of the bot
    blanked out)."""
    kinds: list[str | None] = [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
    text = message.text or message.caption or ""
    entities = (message.parse_entities(kinds) if message.text
                else message.parse_caption_entities(kinds))
    mentioned = False
    handle = "@" + me.username.lower()
    for entity, value in entities.items():
        if entity.type == MessageEntity.MENTION and value.lower() == handle:
            mentioned = True
        elif entity.type == MessageEntity.TEXT_MENTION and entity.user and (
            entity.user.id == me.id
        ):
            mentioned = True
            text = text.replace(value, " ", 1)
    return mentioned, text


def _addressed_text(message: Message, me: BotIdentity) -> tuple[bool, str]:
    """(is the bot mentioned or replied to, the text without the bot's mention)."""
    mentioned, text = _mentions_bot(message, me)
    if mentioned:
        handle = re.escape("@" + me.username.lower())
        text = re.sub(handle + r"\b[,:]?", " ", text, flags=re.IGNORECASE)
    text = re.sub(r"[ \t]{2,}", " ", text).strip(" \t,:")
    return mentioned or replies_to_bot(message, me), text.strip()


def _objective_text(message: Message, me: BotIdentity) -> str | None:
    """Private chats: every text message. Groups: only when the bot is mentioned or replied
    to. Other chats (channels): never."""
    chat = message.chat
    if chat.type == ChatType.PRIVATE:
        return (message.text or message.caption or "").strip()
    if not is_group(chat):
        return None
    addressed, text = _addressed_text(message, me)
    return text if addressed else None


def objective_from_message(message: Message, me: BotIdentity) -> InboundMessage | None:
    """A text message, or a document / photo (its caption the text, maybe empty), that is an
    objective for the bot; None for commands, other bots and anything else. The files are
    fetched by the app (adapters/telegram/files.py), see `shared_files`."""
    if not (message.text or shared_files(message)) or is_command(message):
        return None
    author = author_of(message)
    if author is None:
        return None
    text = _objective_text(message, me)
    if text is None or not (text or shared_files(message)):
        return None
    chat = message.chat
    return InboundMessage(
        tenant_id=tenant_of(chat.id), channel_id=str(chat.id), user_id=author.user_id,
        text=text, message_id=str(message.message_id), thread_id=thread_of(message),
        user_name=author.name,
    )


@dataclass(frozen=True)
class SharedFile:
    """A document or photo in a message, to fetch with getFile."""

    file_id: str
    name: str  # the sender's name for it (untrusted: the engine makes it safe)
    size: int | None


def shared_files(message: Message) -> list[SharedFile]:
    """The message's document, or its photo in the largest size Telegram made of it."""
    if message.document is not None:
        document = message.document
        return [SharedFile(document.file_id, document.file_name or "document",
                           document.file_size)]
    if message.photo:
        photo = message.photo[-1]
        return [SharedFile(photo.file_id, f"photo_{message.message_id}.jpg", photo.file_size)]
    return []


def command_from_message(message: Message, me: BotIdentity) -> InboundCommand | None:
    """`/name[@bot] args…` → InboundCommand. is_admin is only known here for private chats
    and anonymous group admins; the app asks Telegram about everyone else when it matters."""
    text = message.text or message.caption
    if not text or not is_command(message):
        return None
    author = author_of(message)
    if author is None:
        return None
    first = (message.entities or message.caption_entities or ())[0]
    token = text[1 : first.length]  # ASCII command: UTF-16 length == str length
    name, _, target = token.partition("@")
    if target and target.lower() != me.username.lower():
        return None  # addressed to another bot
    if not name:
        return None
    chat = message.chat
    return InboundCommand(
        tenant_id=tenant_of(chat.id), user_id=author.user_id, name=name.lower(),
        args=text[first.length :].split(), channel_id=str(chat.id),
        is_admin=chat.type == ChatType.PRIVATE or author.anonymous_admin,
    )


# The ForceReply prompt that asks for a comment ends with the execution it is about and,
# when one was chosen, the category's label: "… comment on answer #<id> (Too long)."
COMMENT_MARKER = "comment on answer #"
COMMENT_PROMPT_RE = re.compile(
    re.escape(COMMENT_MARKER) + r"(\d+)(?: \(([A-Za-z ]{1,20})\))?\.?\s*$"
)


def comment_target(prompt_text: str) -> tuple[int, FeedbackCategory | None] | None:
    """(execution id, category) named at the end of a comment prompt; None if it isn't one.
    Anchored at the end so a user's name inside the prompt can't redirect the comment."""
    match = COMMENT_PROMPT_RE.search(prompt_text)
    if match is None:
        return None
    label = match.group(2)
    return int(match.group(1)), FeedbackCategory.parse(label) if label else None


def comment_from_reply(message: Message, me: BotIdentity) -> InboundFeedback | None:
    """A reply to the bot's comment prompt is the comment on that answer, with the category
    the prompt names. from_admin is only known here for private chats (the user owns it) and
    anonymous group admins; the app asks Telegram about everyone else."""
    replied = message.reply_to_message
    if not message.text or replied is None or is_command(message):
        return None
    if replied.from_user is None or replied.from_user.id != me.id:
        return None
    target = comment_target(replied.text or "")
    author = author_of(message)
    if target is None or author is None:
        return None
    execution_id, category = target
    return InboundFeedback(
        tenant_id=tenant_of(message.chat.id), user_id=author.user_id,
        source=FeedbackSource.COMMENT, comment=message.text.strip()[:4000],
        category=category, execution_id=execution_id,
        from_admin=message.chat.type == ChatType.PRIVATE or author.anonymous_admin,
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


# --- callback data --------------------------------------------------------------------


@dataclass(frozen=True)
class RateCallback:
    execution_id: int
    rating: int


@dataclass(frozen=True)
class CommentCallback:
    execution_id: int


@dataclass(frozen=True)
class CategoryCallback:
    """A category (None: Skip) chosen on the keyboard 💬 opened for one user."""

    execution_id: int
    user_id: int  # who tapped 💬: the keyboard is theirs
    category: FeedbackCategory | None


@dataclass(frozen=True)
class ActionCallback:
    action: str  # rollback | apply | dismiss | …: the engine command of the button
    value: str


Callback = RateCallback | CommentCallback | CategoryCallback | ActionCallback

CALLBACK_LIMIT = 64  # bytes of callback_data
COMMENT_CHOICE = "c"
SKIP_CHOICE = "skip"
# an execution id past the database's 64-bit integer is no row of ours (and would overflow)
MAX_EXECUTION_ID = 2**63 - 1
_FEEDBACK_DATA = re.compile(r"^fb:(\d{1,19}):([1-5c])$")
_CATEGORY_DATA = re.compile(r"^fc:(\d{1,19}):(\d{1,20}):([a-z_]{1,20})$")
_ACTION_DATA = re.compile(r"^do:([a-z_]{1,20}):(.{0,40})$", re.S)


def feedback_data(execution_id: int, choice: str) -> str:
    """The callback data of an answer's button: a rating 1–5 or COMMENT_CHOICE."""
    return f"fb:{execution_id}:{choice}"


def category_data(execution_id: int, user_id: int, category: FeedbackCategory | None) -> str:
    """The callback data of a category button (None: Skip); at most 3+19+1+20+1+10 bytes."""
    return f"fc:{execution_id}:{user_id}:{category.value if category else SKIP_CHOICE}"


def action_data(action: str, value: str) -> str | None:
    """The callback data of a document's button; None when it would exceed Telegram's limit."""
    data = f"do:{action}:{value}"
    return data if len(data.encode()) <= CALLBACK_LIMIT else None


def _feedback_callback(data: str) -> RateCallback | CommentCallback | None:
    match = _FEEDBACK_DATA.match(data)
    if match is None or int(match.group(1)) > MAX_EXECUTION_ID:
        return None
    execution_id, choice = int(match.group(1)), match.group(2)
    if choice == COMMENT_CHOICE:
        return CommentCallback(execution_id)
    return RateCallback(execution_id, int(choice))


def _category_callback(data: str) -> CategoryCallback | None:
    """None for anything but Skip or a known category (a malformed or outdated button)."""
    match = _CATEGORY_DATA.match(data)
    if match is None or int(match.group(1)) > MAX_EXECUTION_ID:
        return None
    choice = match.group(3)
    category = None if choice == SKIP_CHOICE else FeedbackCategory.parse(choice)
    if category is None and choice != SKIP_CHOICE:
        return None
    return CategoryCallback(int(match.group(1)), int(match.group(2)), category)


def _action_callback(data: str) -> ActionCallback | None:
    match = _ACTION_DATA.match(data)
    return ActionCallback(match.group(1), match.group(2)) if match else None


def parse_callback(data: str | None) -> Callback | None:
    if not data:
        return None
    return _feedback_callback(data) or _category_callback(data) or _action_callback(data)
