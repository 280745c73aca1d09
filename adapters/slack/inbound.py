"""Pure converters from Slack payloads to the engine's inputs.

Tenant ids, reaction names → ratings, the predicates that decide which events the bot acts
on, and events / block actions / view submissions / slash commands → InboundMessage,
InboundFeedback and InboundCommand. The ids this module reads back (action ids, the comment
modal's callback id, block ids and private_metadata) are defined here, so outbound.py builds
exactly what is parsed. Nothing here performs I/O; a malformed value is logged and ignored.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from dataclasses import dataclass
from typing import Any

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

log = logging.getLogger(__name__)

PLATFORM = "slack"
COMMENT_LIMIT = 4000

ACTION_UP = "evobot:rate:up"
ACTION_DOWN = "evobot:rate:down"
ACTION_SELECT = "evobot:rate:select"
ACTION_COMMENT = "evobot:comment"
ACTION_COMMAND_PREFIX = "evobot:cmd:"  # + rollback | apply | dismiss
RATE_ACTIONS = re.compile(r"^evobot:rate:(up|down|select)$")
COMMAND_ACTIONS = re.compile("^" + re.escape(ACTION_COMMAND_PREFIX))
COMMENT_VIEW = "evobot:comment"
# the 💬 modal's inputs as (block id, action id): where view.state.values holds each answer
MODAL_CATEGORY = ("category", "category")
MODAL_COMMENT = ("comment", "text")
MODAL_SUGGESTION = ("suggestion", "text")
MODAL_RATING = ("rating", "stars")

# --- tenants -----------------------------------------------------------------------------


def tenant_id(team_id: str | None, enterprise_id: str | None = None) -> TenantId:
    """`slack:<team_id>`, or `slack:<enterprise_id>:<team_id>` inside an Enterprise Grid
    (the enterprise id is needed to find the installation again)."""
    if enterprise_id and team_id:
        return f"{PLATFORM}:{enterprise_id}:{team_id}"
    if team_id:
        return f"{PLATFORM}:{team_id}"
    if enterprise_id:
        return f"{PLATFORM}:{enterprise_id}:"
    raise ValueError("a Slack payload without team or enterprise id")


def parse_tenant(tenant: TenantId) -> tuple[str | None, str | None]:
    """(enterprise_id, team_id) of a Slack tenant id."""
    parts = tenant.split(":")
    if len(parts) < 2 or parts[0] != PLATFORM:
        raise ValueError(f"not a Slack tenant: {tenant!r}")
    if len(parts) == 2:
        return None, parts[1] or None
    return parts[1] or None, parts[2] or None


# --- deliveries ------------------------------------------------------------------------------


def event_id(body: Any) -> str | None:
    """The id Slack redelivers an Events API callback under (None for anything else)."""
    if not isinstance(body, dict) or body.get("type") != "event_callback":
        return None
    value = body.get("event_id")
    return str(value) if value else None


# --- reactions -----------------------------------------------------------------------------

# Slack names reactions; each name stands for the emoji whose rating engine.ratings knows
REACTION_EMOJI: dict[str, str] = {
    "one": "1️⃣", "two": "2️⃣", "three": "3️⃣", "four": "4️⃣", "five": "5️⃣",
    "star": "⭐", "star2": "🌟", "star-struck": "🤩", "star_struck": "🤩", "trophy": "🏆",
    "100": "💯", "fire": "🔥", "tada": "🎉", "heart": "❤️",
    "+1": "👍", "thumbsup": "👍", "white_check_mark": "✅", "heavy_check_mark": "✅",
    "thinking_face": "🤔", "confused": "😕",
    "-1": "👎", "thumbsdown": "👎",
    "x": "❌", "rage": "😡", "hankey": "💩", "poop": "💩", "shit": "💩", "clown_face": "🤡",
}  # fmt: skip
REACTION_RATINGS: dict[str, int] = {
    name: rating
    for name, emoji in REACTION_EMOJI.items()
    if (rating := ratings.rating_of(emoji)) is not None
}


def base_reaction(name: str) -> str:
    """`+1::skin-tone-3` → `+1` (Slack appends skin tones with `::`)."""
    return name.split("::", 1)[0].strip(":").lower()


def reaction_rating(name: str, table: dict[str, int] | None = None) -> int | None:
    return (table or REACTION_RATINGS).get(base_reaction(name))


def reacts_to_bot(event: dict[str, Any], bot_user_id: str | None) -> bool:
    """False for a reaction on somebody else's message (Slack says whose in `item_user`)."""
    item_user = event.get("item_user")
    return not (item_user and bot_user_id and item_user != bot_user_id)


# --- messages -------------------------------------------------------------------------------

_LINK = re.compile(r"<((?:https?|mailto):[^>|]+)(?:\|([^>]*))?>")
USER_SUBTYPES = {None, "file_share", "thread_broadcast"}


def _mention_pattern(bot_user_id: str) -> str:
    return rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>"


def mentions(text: str, bot_user_id: str | None) -> bool:
    return bool(bot_user_id) and re.search(_mention_pattern(bot_user_id or ""),
                                           text or "") is not None


def _link(match: re.Match[str]) -> str:
    url, label = match.group(1), match.group(2)
    if url.startswith("mailto:"):
        return label or url.removeprefix("mailto:")
    return f"{label} ({url})" if label and label != url else url


def clean_text(text: str, bot_user_id: str | None = None) -> str:
    """A Slack message's text as the agent should read it: the bot's own mention removed,
    links as `label (url)`, Slack's HTML escapes undone."""
    if bot_user_id:
        text = re.sub(_mention_pattern(bot_user_id), " ", text)
    text = _LINK.sub(_link, text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return re.sub(r"[ \t]+", " ", text).strip()


def is_user_message(event: dict[str, Any]) -> bool:
    """A person's new message: not a bot's, not an edit/delete/join or other subtype."""
    if event.get("subtype") not in USER_SUBTYPES:
        return False
    if event.get("bot_id") or event.get("bot_profile") or event.get("hidden"):
        return False
    return well_formed(event)


def well_formed(event: dict[str, Any]) -> bool:
    """Every field a message is read from has Slack's type: a signed but malformed event (a
    number for `text`, no `channel`) is acknowledged and ignored, never a 500 that Slack
    would retry three more times."""
    required = all(isinstance(event.get(k), str) and event.get(k) for k in ("user", "ts",
                                                                           "channel"))
    optional = all(isinstance(event.get(k, ""), str) for k in ("text", "thread_ts",
                                                              "channel_type"))
    return required and optional


def is_direct_message(event: dict[str, Any]) -> bool:
    return event.get("channel_type") == "im" or str(event.get("channel", "")).startswith("D")


def thread_root(event: dict[str, Any]) -> str | None:
    """The thread this message replies in (None for a top-level message)."""
    thread_ts = event.get("thread_ts")
    return thread_ts if thread_ts and thread_ts != event.get("ts") else None


def is_unmentioned_message(event: dict[str, Any], bot_user_id: str | None) -> bool:
    """A `message` event the message listener may act on: a person's new message with text
    or files, and not a channel post that mentions the bot (its `app_mention` event answers
    that)."""
    if not is_user_message(event):
        return False  # edits, deletes, joins, bots (ourselves included)
    text = event.get("text", "")
    if not is_direct_message(event) and mentions(text, bot_user_id):
        return False
    return bool(clean_text(text, bot_user_id)) or has_files(event)


def has_files(event: dict[str, Any]) -> bool:
    """A message sharing files (subtype `file_share`): it may come without a word."""
    files = event.get("files")
    return isinstance(files, list) and bool(files)


def mention_to_message(
    event: dict[str, Any], tenant: TenantId, bot_user_id: str | None
) -> InboundMessage:
    """`app_mention`: answered in the thread of the mention (a new thread if top-level)."""
    return _message(event, tenant, bot_user_id, event.get("thread_ts") or event["ts"])


def message_to_message(
    event: dict[str, Any], tenant: TenantId, bot_user_id: str | None
) -> InboundMessage:
    """A DM (answered inline, or in its thread) or a reply in one of the bot's threads."""
    return _message(event, tenant, bot_user_id, thread_root(event))


def _message(event: dict[str, Any], tenant: TenantId, bot_user_id: str | None,
             thread_id: str | None) -> InboundMessage:
    return InboundMessage(
        tenant_id=tenant,
        channel_id=event["channel"],
        user_id=event["user"],
        text=clean_text(event.get("text", ""), bot_user_id),
        message_id=event["ts"],
        thread_id=thread_id,
    )


# --- feedback -------------------------------------------------------------------------------


def reaction_to_feedback(
    event: dict[str, Any], tenant: TenantId, *, removed: bool,
    table: dict[str, int] | None = None,
) -> InboundFeedback | None:
    """`reaction_added` / `reaction_removed` on a message; None for reactions we don't map
    (and for a malformed event: acknowledged and ignored, like `well_formed` messages)."""
    item = event.get("item")
    if not isinstance(item, dict) or item.get("type") != "message" or not _strings(
            event.get("user"), item.get("channel"), item.get("ts")):
        return None
    rating = reaction_rating(str(event.get("reaction", "")), table)
    if rating is None:
        return None
    return InboundFeedback(
        tenant_id=tenant,
        user_id=event["user"],
        source=FeedbackSource.REACTION,
        rating=None if removed else rating,
        retract=removed,
        answer_ref=MessageRef(channel_id=item["channel"], message_id=item["ts"]),
    )


def _strings(*values: Any) -> bool:
    return all(isinstance(v, str) and v for v in values)


def well_formed_payload(payload: dict[str, Any]) -> bool:
    """The envelope fields every listener reads have Slack's types: an event object with a
    type; an interaction's user, actions or view; a slash command's user, command and text.
    A signed payload that fails this is acknowledged and ignored (see adapters/slack/http.py)."""
    kind = payload.get("type")
    if kind == "event_callback":
        event = payload.get("event")
        return isinstance(event, dict) and isinstance(event.get("type"), str)
    if kind == "block_actions":
        return _has_user(payload) and _strings(payload.get("trigger_id")) and _objects(
            payload, "channel", "message", "container", "state") and _actions(
            payload.get("actions"))
    if kind in ("view_submission", "view_closed"):
        view = payload.get("view")
        return _has_user(payload) and isinstance(view, dict) and _strings(
            view.get("callback_id")) and _objects(view, "state")
    if "command" in payload:
        return _strings(payload.get("user_id"), payload.get("command")) and isinstance(
            payload.get("text", ""), str)
    return True


def _has_user(payload: dict[str, Any]) -> bool:
    user = payload.get("user")
    return isinstance(user, dict) and _strings(user.get("id"))


def _objects(payload: dict[str, Any], *keys: str) -> bool:
    """Each of `keys` is absent, null or an object."""
    return all(isinstance(payload.get(k) or {}, dict) for k in keys)


def _actions(actions: Any) -> bool:
    return isinstance(actions, list) and bool(actions) and all(
        isinstance(a, dict) and _strings(a.get("action_id")) for a in actions)


def _button_rating(action: dict[str, Any]) -> tuple[int, int] | None:
    """(execution id, rating) of a 👍 / 👎 button or the 1–5 select."""
    action_id = action.get("action_id")
    try:
        if action_id in (ACTION_UP, ACTION_DOWN):
            rating = REACTION_RATINGS["+1" if action_id == ACTION_UP else "-1"]
            return _row_id(int(action["value"]), rating)
        if action_id == ACTION_SELECT:
            value = (action.get("selected_option") or {}).get("value", "")
            execution, _, stars = value.partition(":")
            return _row_id(int(execution), int(stars))
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return None


def _row_id(execution_id: int, rating: int) -> tuple[int, int] | None:
    """None for an id no row can have (the database's integers are 64-bit)."""
    return (execution_id, rating) if 0 < execution_id < 2**63 else None


def action_to_feedback(
    action: dict[str, Any], user_id: str, tenant: TenantId
) -> InboundFeedback | None:
    """A 👍 / 👎 button or the 1–5 select on an answer."""
    rated = _button_rating(action)
    if rated is None or not 1 <= rated[1] <= 5:
        return None
    return InboundFeedback(
        tenant_id=tenant, user_id=user_id, source=FeedbackSource.BUTTON, rating=rated[1],
        execution_id=rated[0],
    )


def action_place(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(channel, thread) of the message a block action was pressed on."""
    channel = (body.get("channel") or {}).get("id")
    thread = (body.get("message") or {}).get("thread_ts") or None
    return _text_or_none(channel), _text_or_none(thread)


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class CommentTarget:
    """What the 💬 modal is about, carried in its private_metadata."""

    execution_id: int
    channel_id: str | None = None
    thread_ts: str | None = None

    def dumps(self) -> str:
        return json.dumps({"e": self.execution_id, "c": self.channel_id, "t": self.thread_ts})

    @classmethod
    def loads(cls, text: str) -> CommentTarget | None:
        try:
            data = json.loads(text)
            execution_id, channel, thread = int(data["e"]), data.get("c"), data.get("t")
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        if not 0 < execution_id < 2**63 or not all(
                v is None or isinstance(v, str) for v in (channel, thread)):
            return None
        return cls(execution_id, channel, thread)


def comment_target(body: dict[str, Any], action: dict[str, Any]) -> CommentTarget | None:
    """The 💬 button under an answer: which answer (its value), in which channel and thread."""
    try:
        execution_id = int(action.get("value", ""))
    except (TypeError, ValueError):
        return None
    if not 0 < execution_id < 2**63:
        return None
    channel, thread = action_place(body)
    return CommentTarget(execution_id, channel, thread)


@dataclass(frozen=True)
class CommentForm:
    """What was filled in on the 💬 modal (empty strings for inputs left blank)."""

    comment: str
    rating: int | None
    category: FeedbackCategory | None
    suggestion: str

    @property
    def empty(self) -> bool:
        return not (self.comment or self.suggestion) and self.rating is None


def _modal_input(view: dict[str, Any], ids: tuple[str, str]) -> dict[str, Any]:
    """The state of one of the modal's inputs ({} if absent)."""
    state: Any = view.get("state") or {}
    for key in ("values", *ids):
        state = state.get(key) if isinstance(state, dict) else None
    return state if isinstance(state, dict) else {}


def _typed(view: dict[str, Any], ids: tuple[str, str]) -> str:
    return str(_modal_input(view, ids).get("value") or "").strip()[:COMMENT_LIMIT]


def _selected(view: dict[str, Any], ids: tuple[str, str]) -> str:
    option = _modal_input(view, ids).get("selected_option")
    return str(option.get("value") or "") if isinstance(option, dict) else ""


def _modal_rating(value: str) -> int | None:
    return int(value) if value.isdigit() and 1 <= int(value) <= 5 else None


def _modal_category(value: str) -> FeedbackCategory | None:
    """The chosen category; a value we never offered counts as none (and is logged)."""
    if not value:
        return None
    category = FeedbackCategory.parse(value)
    if category is None:
        log.warning("comment modal: unknown feedback category %r ignored", value[:80])
    return category


def comment_form(view: dict[str, Any]) -> CommentForm:
    """The 💬 modal's submitted values."""
    return CommentForm(
        comment=_typed(view, MODAL_COMMENT),
        rating=_modal_rating(_selected(view, MODAL_RATING)),
        category=_modal_category(_selected(view, MODAL_CATEGORY)),
        suggestion=_typed(view, MODAL_SUGGESTION),
    )


def view_to_feedback(
    view: dict[str, Any], user_id: str, tenant: TenantId
) -> tuple[InboundFeedback, CommentTarget] | None:
    """The 💬 modal's submission: a comment (optionally with a category, a suggestion of what
    a good answer would have said, and a rating) on one answer. None if nothing was said."""
    target = CommentTarget.loads(view.get("private_metadata") or "")
    if target is None:
        return None
    form = comment_form(view)
    if form.empty:
        return None
    feedback = InboundFeedback(
        tenant_id=tenant, user_id=user_id, source=FeedbackSource.COMMENT,
        comment=form.comment or None, rating=form.rating, category=form.category,
        suggestion=form.suggestion or None, execution_id=target.execution_id,
    )
    return feedback, target


def comment_feedback(
    tenant: TenantId, user_id: str, execution_id: int, text: str
) -> InboundFeedback:
    """A reply in the thread that the user was invited to comment in."""
    return InboundFeedback(
        tenant_id=tenant, user_id=user_id, source=FeedbackSource.COMMENT,
        comment=text[:COMMENT_LIMIT], execution_id=execution_id,
    )


# --- commands ---------------------------------------------------------------------------------


def parse_command_text(text: str) -> tuple[str, list[str]]:
    """`/evobot diff 3 4` → ("diff", ["3", "4"]); empty → help."""
    try:
        parts = shlex.split(text or "")
    except ValueError:
        parts = (text or "").split()
    if not parts:
        return "help", []
    return parts[0].lower(), parts[1:]


def command_to_inbound(
    body: dict[str, Any], tenant: TenantId, *, is_admin: bool = False
) -> InboundCommand:
    """`/evobot <text>` (a slash command form)."""
    name, args = parse_command_text(str(body.get("text", "")))
    return InboundCommand(
        tenant_id=tenant, user_id=str(body.get("user_id", "")), name=name, args=args,
        channel_id=body.get("channel_id"), is_admin=is_admin,
    )


def button_to_command(
    action: dict[str, Any], user_id: str, channel_id: str | None, tenant: TenantId,
    *, is_admin: bool = False,
) -> InboundCommand | None:
    """Roll back / Apply / Dismiss on an announcement → the matching command."""
    action_id = str(action.get("action_id", ""))
    if not action_id.startswith(ACTION_COMMAND_PREFIX):
        return None
    name = action_id.removeprefix(ACTION_COMMAND_PREFIX)
    value = str(action.get("value", ""))
    return InboundCommand(
        tenant_id=tenant, user_id=user_id, name=name, args=[value] if value else [],
        channel_id=channel_id, is_admin=is_admin,
    )
