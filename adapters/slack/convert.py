"""Pure converters: Slack payloads → engine inputs, engine outputs → Block Kit.

Nothing here does I/O. Limits are Slack's documented Block Kit limits: a section's text is at
most 3,000 characters, a header's 150, a message at most 50 blocks, a button label 75, a button
value 2,000, a section at most 10 fields.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from engine import ratings
from engine.types import (
    AnswerReady,
    Button,
    Document,
    ExecutionFailed,
    FeedbackResult,
    FeedbackSource,
    InboundCommand,
    InboundFeedback,
    InboundMessage,
    MessageRef,
    TenantId,
)

SECTION_LIMIT = 3000
HEADER_LIMIT = 150
MAX_BLOCKS = 50
BUTTON_LABEL_LIMIT = 75
FIELDS_PER_SECTION = 10
FIELD_LIMIT = 2000
# the answer text one message carries before the rest continues in the next message
MESSAGE_TEXT_BUDGET = 12_000
FALLBACK_TEXT_LIMIT = 300
DIFF_LIMIT = 2800

ACTION_UP = "evobot:rate:up"
ACTION_DOWN = "evobot:rate:down"
ACTION_SELECT = "evobot:rate:select"
ACTION_COMMENT = "evobot:comment"
ACTION_COMMAND_PREFIX = "evobot:cmd:"  # + rollback | apply | dismiss
COMMENT_VIEW = "evobot:comment"
WORKING_REACTION = "eyes"

# --- tenants -----------------------------------------------------------------------------


def tenant_id(team_id: str | None, enterprise_id: str | None = None) -> TenantId:
    """`slack:<team_id>`, or `slack:<enterprise_id>:<team_id>` inside an Enterprise Grid
    (the enterprise id is needed to find the installation again)."""
    if enterprise_id and team_id:
        return f"slack:{enterprise_id}:{team_id}"
    if team_id:
        return f"slack:{team_id}"
    if enterprise_id:
        return f"slack:{enterprise_id}:"
    raise ValueError("a Slack payload without team or enterprise id")


def parse_tenant(tenant: TenantId) -> tuple[str | None, str | None]:
    """(enterprise_id, team_id) of a Slack tenant id."""
    parts = tenant.split(":")
    if len(parts) < 2 or parts[0] != "slack":
        raise ValueError(f"not a Slack tenant: {tenant!r}")
    if len(parts) == 2:
        return None, parts[1] or None
    return parts[1] or None, parts[2] or None


# --- reactions (DESIGN §3) -----------------------------------------------------------------

# Slack names reactions; each name stands for the emoji DESIGN §3's map (engine.ratings) rates
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


def reaction_rating(name: str, ratings: dict[str, int] | None = None) -> int | None:
    return (ratings or REACTION_RATINGS).get(base_reaction(name))


# --- inbound text ---------------------------------------------------------------------------

_LINK = re.compile(r"<((?:https?|mailto):[^>|]+)(?:\|([^>]*))?>")


def mention_token(user_id: str) -> str:
    return f"<@{user_id}>"


def mentions(text: str, bot_user_id: str | None) -> bool:
    return bool(bot_user_id) and re.search(rf"<@{re.escape(bot_user_id or '')}(?:\|[^>]*)?>",
                                           text or "") is not None


def clean_text(text: str, bot_user_id: str | None = None) -> str:
    """A Slack message's text as the agent should read it: the bot's own mention removed,
    links as `label (url)`, Slack's HTML escapes undone."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)

    def link(match: re.Match[str]) -> str:
        url, label = match.group(1), match.group(2)
        if url.startswith("mailto:"):
            return label or url.removeprefix("mailto:")
        return f"{label} ({url})" if label and label != url else url

    text = _LINK.sub(link, text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return re.sub(r"[ \t]+", " ", text).strip()


USER_SUBTYPES = {None, "file_share", "thread_broadcast"}


def is_user_message(event: dict[str, Any]) -> bool:
    """A person's new message: not a bot's, not an edit/delete/join or other subtype."""
    if event.get("subtype") not in USER_SUBTYPES:
        return False
    if event.get("bot_id") or event.get("bot_profile") or event.get("hidden"):
        return False
    return bool(event.get("user")) and bool(event.get("ts"))


def is_direct_message(event: dict[str, Any]) -> bool:
    return event.get("channel_type") == "im" or str(event.get("channel", "")).startswith("D")


def thread_root(event: dict[str, Any]) -> str | None:
    """The thread this message replies in (None for a top-level message)."""
    thread_ts = event.get("thread_ts")
    return thread_ts if thread_ts and thread_ts != event.get("ts") else None


def mention_to_message(
    event: dict[str, Any], tenant: TenantId, bot_user_id: str | None
) -> InboundMessage:
    """`app_mention`: answered in the thread of the mention (a new thread if top-level)."""
    return InboundMessage(
        tenant_id=tenant,
        channel_id=event["channel"],
        user_id=event["user"],
        text=clean_text(event.get("text", ""), bot_user_id),
        message_id=event["ts"],
        thread_id=event.get("thread_ts") or event["ts"],
    )


def message_to_message(
    event: dict[str, Any], tenant: TenantId, bot_user_id: str | None
) -> InboundMessage:
    """A DM (answered inline, or in its thread) or a reply in one of the bot's threads."""
    return InboundMessage(
        tenant_id=tenant,
        channel_id=event["channel"],
        user_id=event["user"],
        text=clean_text(event.get("text", ""), bot_user_id),
        message_id=event["ts"],
        thread_id=thread_root(event),
    )


def reaction_to_feedback(
    event: dict[str, Any], tenant: TenantId, *, removed: bool,
    ratings: dict[str, int] | None = None,
) -> InboundFeedback | None:
    """`reaction_added` / `reaction_removed` on a message; None for reactions we don't map."""
    item = event.get("item") or {}
    if item.get("type") != "message" or not event.get("user"):
        return None
    rating = reaction_rating(str(event.get("reaction", "")), ratings)
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


def action_to_feedback(
    action: dict[str, Any], user_id: str, tenant: TenantId
) -> InboundFeedback | None:
    """A 👍 / 👎 button or the 1–5 select on an answer."""
    action_id = action.get("action_id")
    try:
        if action_id in (ACTION_UP, ACTION_DOWN):
            execution_id = int(action["value"])
            rating = REACTION_RATINGS["+1" if action_id == ACTION_UP else "-1"]
        elif action_id == ACTION_SELECT:
            value = (action.get("selected_option") or {}).get("value", "")
            execution, _, stars = value.partition(":")
            execution_id, rating = int(execution), int(stars)
        else:
            return None
    except (KeyError, TypeError, ValueError):
        return None
    if not 1 <= rating <= 5:
        return None
    return InboundFeedback(
        tenant_id=tenant, user_id=user_id, source=FeedbackSource.BUTTON, rating=rating,
        execution_id=execution_id,
    )


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
            return cls(int(data["e"]), data.get("c"), data.get("t"))
        except (ValueError, TypeError, KeyError):
            return None


def view_to_feedback(
    view: dict[str, Any], user_id: str, tenant: TenantId
) -> tuple[InboundFeedback, CommentTarget] | None:
    """The 💬 modal's submission: a comment (and optionally a rating) on one answer."""
    target = CommentTarget.loads(view.get("private_metadata") or "")
    if target is None:
        return None
    values = (view.get("state") or {}).get("values") or {}
    comment = ((values.get("comment") or {}).get("text") or {}).get("value") or ""
    selected = ((values.get("rating") or {}).get("stars") or {}).get("selected_option")
    stars = str((selected or {}).get("value", ""))
    rating = int(stars) if stars.isdigit() else None
    if not comment.strip() and rating is None:
        return None
    feedback = InboundFeedback(
        tenant_id=tenant, user_id=user_id, source=FeedbackSource.COMMENT,
        comment=comment.strip()[:4000] or None, rating=rating, execution_id=target.execution_id,
    )
    return feedback, target


def comment_feedback(
    tenant: TenantId, user_id: str, execution_id: int, text: str
) -> InboundFeedback:
    """A reply in the thread that the user was invited to comment in."""
    return InboundFeedback(
        tenant_id=tenant, user_id=user_id, source=FeedbackSource.COMMENT,
        comment=text[:4000], execution_id=execution_id,
    )


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
    body: dict[str, Any], tenant: TenantId, *, is_admin: bool
) -> InboundCommand:
    name, args = parse_command_text(str(body.get("text", "")))
    return InboundCommand(
        tenant_id=tenant, user_id=str(body.get("user_id", "")), name=name, args=args,
        channel_id=body.get("channel_id"), is_admin=is_admin,
    )


def button_to_command(
    action: dict[str, Any], user_id: str, channel_id: str | None, tenant: TenantId,
    *, is_admin: bool,
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


# --- outbound text ----------------------------------------------------------------------

_KEEP = re.compile(r"<[@#][UWCGD][A-Z0-9]+(?:\|[^<>]*)?>")
_BARE_USER = re.compile(r"<([UW][A-Z0-9]{2,})>")
_FENCE = re.compile(r"^(\s*)```[\w+-]*\s*$")
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_MD_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_MD_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_MD_BULLET = re.compile(r"^(\s*)[-*+]\s+")


def escape(text: str) -> str:
    """Slack's three mandatory escapes; also defuses <!channel> and friends."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_keeping_mentions(text: str) -> str:
    """Escape, but keep user/channel mentions (`<@U1>`, `<#C1>`) — `<U1>` becomes `<@U1>`."""
    text = _BARE_USER.sub(r"<@\1>", text)
    out, last = [], 0
    for match in _KEEP.finditer(text):
        out.append(escape(text[last:match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(escape(text[last:]))
    return "".join(out)


def _inline_markdown(line: str) -> str:
    """One non-code line of Markdown → mrkdwn (already escaped)."""
    heading = _MD_HEADING.match(line)
    if heading:
        return f"*{heading.group(1).strip('*')}*"
    line = _MD_BULLET.sub(lambda m: f"{m.group(1)}• ", line)
    parts = re.split(r"(`[^`\n]+`)", line)  # leave inline code alone
    for i in range(0, len(parts), 2):
        segment = _MD_LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", parts[i])
        segment = _MD_BOLD.sub(lambda m: f"*{m.group(1) or m.group(2)}*", segment)
        parts[i] = _MD_STRIKE.sub(lambda m: f"~{m.group(1)}~", segment)
    return "".join(parts)


def mrkdwn(text: str) -> str:
    """Model output (Markdown) → Slack mrkdwn: escaped, bold/links/headings/bullets converted,
    fenced code kept (without the language tag, which Slack would print)."""
    lines_out: list[str] = []
    in_code = False
    for raw in escape_keeping_mentions(text).split("\n"):
        fence = _FENCE.match(raw)
        if fence:
            in_code = not in_code
            lines_out.append("```")
            continue
        lines_out.append(raw if in_code else _inline_markdown(raw))
    if in_code:
        lines_out.append("```")
    return "\n".join(lines_out)


def _hard_cut(text: str, limit: int) -> tuple[str, str]:
    """Cut at the last whitespace before `limit` (never inside `&amp;` or `<…>` if avoidable)."""
    cut = text.rfind(" ", int(limit * 0.6), limit)
    if cut <= 0:
        cut = limit
        for opener, closer in (("&", ";"), ("<", ">")):
            start = text.rfind(opener, max(0, limit - 200), limit)
            if start != -1 and text.find(closer, start, limit) == -1:
                cut = start if start > 0 else limit
    return text[:cut], text[cut:].lstrip(" ")


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Split mrkdwn into pieces of at most `limit` characters, preferring paragraph, then
    line, then word boundaries, and keeping ``` fences balanced in every piece."""
    budget = limit - 8  # room to close and reopen a code fence
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > budget:
            head, line = _hard_cut(line, budget)
            if current:
                pieces.append(current)
                current = ""
            pieces.append(head)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > budget:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current or not pieces:
        pieces.append(current)
    balanced: list[str] = []
    carry = False
    for piece in pieces:
        if carry:
            piece = "```\n" + piece
        open_fence = piece.count("```") % 2 == 1
        if open_fence:
            piece += "\n```"
        carry = open_fence
        balanced.append(piece)
    return [p for p in balanced if p.strip()] or [text[:limit]]


def truncate(text: str, limit: int, suffix: str = "…") -> str:
    return text if len(text) <= limit else text[: limit - len(suffix)] + suffix


# --- Block Kit ------------------------------------------------------------------------------


def plain(text: str, limit: int = SECTION_LIMIT) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text or " ", limit), "emoji": True}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_LIMIT)}}


def context(text: str) -> dict[str, Any]:
    return {"type": "context",
            "elements": [{"type": "mrkdwn", "text": truncate(text, SECTION_LIMIT)}]}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": plain(text, HEADER_LIMIT)}


@dataclass
class SlackMessage:
    """One chat.postMessage: fallback text plus blocks."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


def feedback_controls(execution_id: int) -> dict[str, Any]:
    value = str(execution_id)
    stars = [
        (5, "5 · excellent"), (4, "4 · good"), (3, "3 · okay"), (2, "2 · poor"), (1, "1 · wrong"),
    ]
    return {
        "type": "actions",
        "block_id": f"evobot_feedback_{execution_id}",
        "elements": [
            {"type": "button", "action_id": ACTION_UP, "text": plain("👍"), "value": value},
            {"type": "button", "action_id": ACTION_DOWN, "text": plain("👎"), "value": value},
            {
                "type": "static_select",
                "action_id": ACTION_SELECT,
                "placeholder": plain("Rate 1–5"),
                "options": [
                    {"text": plain(label), "value": f"{execution_id}:{n}"} for n, label in stars
                ],
            },
            {"type": "button", "action_id": ACTION_COMMENT, "text": plain("💬 Comment"),
             "value": value},
        ],
    }


def _fallback(text: str) -> str:
    flat = " ".join(text.split())
    return truncate(flat, FALLBACK_TEXT_LIMIT) or "…"


def answer_messages(
    event: AnswerReady, *, message_budget: int = MESSAGE_TEXT_BUDGET,
    section_limit: int = SECTION_LIMIT,
) -> list[SlackMessage]:
    """The answer as one or more messages; the last carries the feedback controls and the
    footer (`v12 · 2 tools · 3.1 s`) and is the message that reactions rate."""
    pieces = split_text(mrkdwn(event.text.strip() or "(empty answer)"), section_limit)
    per_message = max(1, min(message_budget // section_limit, MAX_BLOCKS - 2))
    groups = [pieces[i:i + per_message] for i in range(0, len(pieces), per_message)]
    messages = []
    for index, group in enumerate(groups):
        blocks = [section(piece) for piece in group]
        if len(groups) > 1:
            blocks.append(context(f"part {index + 1} of {len(groups)}"))
        messages.append(SlackMessage(text=_fallback(group[0]), blocks=blocks))
    last = messages[-1]
    last.blocks.append(feedback_controls(event.execution_id))
    last.blocks.append(context(escape(event.footer)))
    return messages


def failure_message(event: ExecutionFailed) -> SlackMessage:
    text = f":warning: {escape(event.reason)}"
    return SlackMessage(text=_fallback(event.reason), blocks=[section(text)])


def truncate_diff(diff: str, limit: int = DIFF_LIMIT) -> tuple[str, int]:
    """At most `limit` characters of whole lines; returns (kept text, lines left out)."""
    if len(diff) <= limit:
        return diff, 0
    kept: list[str] = []
    size = 0
    lines = diff.split("\n")
    for line in lines:
        if size + len(line) + 1 > limit:
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept), len(lines) - len(kept)


def _button(button: Button) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "action_id": ACTION_COMMAND_PREFIX + button.action,
        "text": plain(button.label, BUTTON_LABEL_LIMIT),
        "value": truncate(button.value, 2000),
    }
    if button.style != "default":
        element["style"] = button.style
    if button.action == "rollback":
        element["confirm"] = {
            "title": plain("Roll back?", 100),
            "text": {"type": "mrkdwn", "text": f"Make v{escape(button.value)} the active "
                                               "version again? Admins only."},
            "confirm": plain("Roll back", 30),
            "deny": plain("Cancel", 30),
            "style": "danger",
        }
    return element


def document_blocks(document: Document, *, diff_limit: int = DIFF_LIMIT) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for block in document.blocks:
        if block.kind == "header":
            blocks.append(header(block.text))
        elif block.kind == "text":
            blocks += [section(p) for p in split_text(mrkdwn(block.text))]
        elif block.kind == "context":
            blocks.append(context(escape_keeping_mentions(block.text)))
        elif block.kind in ("diff", "code"):
            body, left_out = truncate_diff(escape(block.text), diff_limit)
            blocks.append(section(f"```\n{body}\n```"))
            if left_out:
                what = "diff" if block.kind == "diff" else "text"
                blocks.append(context(
                    f"… {left_out} more line{'s' if left_out != 1 else ''} of the {what} "
                    "not shown (Slack limits a block to 3,000 characters); "
                    "`/evobot diff` shows it in full."
                ))
        elif block.kind == "fields":
            fields = [
                {"type": "mrkdwn",
                 "text": truncate(f"*{escape(key)}*\n{escape(value)}", FIELD_LIMIT)}
                for key, value in block.fields
            ]
            for i in range(0, len(fields), FIELDS_PER_SECTION):
                blocks.append({"type": "section", "fields": fields[i:i + FIELDS_PER_SECTION]})
    if document.buttons:
        blocks = blocks[: MAX_BLOCKS - 1]
        blocks.append({"type": "actions", "elements": [_button(b) for b in document.buttons]})
    return blocks[:MAX_BLOCKS]


def document_message(document: Document) -> SlackMessage:
    return SlackMessage(text=_fallback(document.summary), blocks=document_blocks(document))


def comment_modal(target: CommentTarget) -> dict[str, Any]:
    """The 💬 modal: a comment (required) and an optional 1–5 rating."""
    return {
        "type": "modal",
        "callback_id": COMMENT_VIEW,
        "private_metadata": target.dumps(),
        "title": plain("Comment on the answer", 24),
        "submit": plain("Send", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            {
                "type": "input",
                "block_id": "comment",
                "label": plain("What should the bot do differently?", 2000),
                "element": {"type": "plain_text_input", "action_id": "text", "multiline": True,
                            "max_length": 3000},
            },
            {
                "type": "input",
                "block_id": "rating",
                "optional": True,
                "label": plain("Rating", 2000),
                "element": {
                    "type": "static_select",
                    "action_id": "stars",
                    "placeholder": plain("1–5"),
                    "options": [{"text": plain(str(n)), "value": str(n)} for n in range(5, 0, -1)],
                },
            },
        ],
    }


def feedback_ack(result: FeedbackResult, *, invite_comment: bool) -> str:
    """The private acknowledgement of a vote."""
    text = result.message
    if invite_comment:
        text += " Reply in this thread (or press 💬) to say what should change."
    if result.evolution_queued:
        text += " I'll try to learn from it."
    return text
