"""Pure converters from the engine's outputs to Slack messages (Block Kit).

Model Markdown → escaped mrkdwn, split within Block Kit limits; answers with their feedback
controls and footer; failures, announcements and command replies from engine Documents; the
💬 comment modal; the private acknowledgements of votes and comments. Nothing here performs
I/O. Limits are Slack's documented Block Kit limits: a section's text is at most 3,000
characters, a header's 150, a message at most 50 blocks, a button label 75, a button value
2,000, a section at most 10 fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from adapters.slack.inbound import (
    ACTION_COMMAND_PREFIX,
    ACTION_COMMENT,
    ACTION_DOWN,
    ACTION_SELECT,
    ACTION_UP,
    COMMENT_VIEW,
    MODAL_CATEGORY,
    MODAL_COMMENT,
    MODAL_RATING,
    MODAL_SUGGESTION,
    CommentTarget,
)
from engine.types import (
    AnswerReady,
    Block,
    Button,
    CommandReply,
    Document,
    ExecutionFailed,
    FeedbackCategory,
    FeedbackResult,
)

SECTION_LIMIT = 3000
HEADER_LIMIT = 150
MAX_BLOCKS = 50
BUTTON_LABEL_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
FIELDS_PER_SECTION = 10
FIELD_LIMIT = 2000
OPTION_TEXT_LIMIT = 75
OPTION_VALUE_LIMIT = 150
PLACEHOLDER_LIMIT = 150
INPUT_LABEL_LIMIT = 2000
MODAL_TITLE_LIMIT = 24
TEXT_INPUT_LIMIT = 3000
# the answer text one message carries before the rest continues in the next message
MESSAGE_TEXT_BUDGET = 12_000
FALLBACK_TEXT_LIMIT = 300
DIFF_LIMIT = 2800

WORKING_REACTION = "eyes"
DM_PREFACE = "I couldn't post in the channel you asked in, so here is the answer."
INVITE_COMMENT = " Reply in this thread (or press 💬) to say what should change."
WILL_LEARN = " I'll try to learn from it."
COMMENT_MISSING = {"comment": "Write a comment (or pick a rating)."}

# --- mrkdwn -----------------------------------------------------------------------------------

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
        if _FENCE.match(raw):
            in_code = not in_code
            lines_out.append("```")
            continue
        lines_out.append(raw if in_code else _inline_markdown(raw))
    if in_code:
        lines_out.append("```")
    return "\n".join(lines_out)


# --- splitting --------------------------------------------------------------------------------


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


def _pack_lines(text: str, budget: int) -> list[str]:
    """Whole lines packed into pieces of at most `budget` characters (long lines cut)."""
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
    return pieces


def _balance_fences(pieces: list[str]) -> list[str]:
    """Close a ``` block left open at the end of a piece and reopen it in the next."""
    balanced: list[str] = []
    carry = False
    for piece in pieces:
        if carry:
            piece = "```\n" + piece
        carry = piece.count("```") % 2 == 1
        balanced.append(piece + "\n```" if carry else piece)
    return balanced


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Split mrkdwn into pieces of at most `limit` characters, preferring paragraph, then
    line, then word boundaries, and keeping ``` fences balanced in every piece."""
    budget = limit - 8  # room to close and reopen a code fence
    balanced = _balance_fences(_pack_lines(text, budget))
    return [p for p in balanced if p.strip()] or [text[:limit]]


def truncate(text: str, limit: int, suffix: str = "…") -> str:
    return text if len(text) <= limit else text[: limit - len(suffix)] + suffix


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


def _fallback(text: str) -> str:
    flat = " ".join(text.split())
    return truncate(flat, FALLBACK_TEXT_LIMIT) or "…"


# --- answers ----------------------------------------------------------------------------------

STARS = [(5, "5 · excellent"), (4, "4 · good"), (3, "3 · okay"), (2, "2 · poor"),
         (1, "1 · wrong")]


def feedback_controls(execution_id: int) -> dict[str, Any]:
    """👍 / 👎, the 1–5 select and 💬 under an answer (read back by inbound.py)."""
    value = str(execution_id)
    select = {
        "type": "static_select", "action_id": ACTION_SELECT, "placeholder": plain("Rate 1–5"),
        "options": [{"text": plain(label), "value": f"{execution_id}:{n}"} for n, label in STARS],
    }
    return {
        "type": "actions",
        "block_id": f"evobot_feedback_{execution_id}",
        "elements": [
            {"type": "button", "action_id": ACTION_UP, "text": plain("👍"), "value": value},
            {"type": "button", "action_id": ACTION_DOWN, "text": plain("👎"), "value": value},
            select,
            {"type": "button", "action_id": ACTION_COMMENT, "text": plain("💬 Comment"),
             "value": value},
        ],
    }


def _section_groups(text: str, message_budget: int, section_limit: int) -> list[list[str]]:
    """The answer's mrkdwn sections, grouped into messages of about `message_budget`."""
    pieces = split_text(mrkdwn(text.strip() or "(empty answer)"), section_limit)
    per_message = max(1, min(message_budget // section_limit, MAX_BLOCKS - 3))
    return [pieces[i:i + per_message] for i in range(0, len(pieces), per_message)]


def answer_controls(event: AnswerReady) -> list[dict[str, Any]]:
    """What closes an answer: the feedback controls, then the footer."""
    return [feedback_controls(event.execution_id), context(escape(event.footer))]


def answer_messages(
    event: AnswerReady, *, message_budget: int = MESSAGE_TEXT_BUDGET,
    section_limit: int = SECTION_LIMIT, preface: str | None = None,
) -> list[SlackMessage]:
    """The answer as one or more messages; the last carries the feedback controls and the
    footer (`v12 · 2 tools · 3.1 s`) and is the message that reactions rate. `preface`, if
    given, opens the first message as a context line."""
    groups = _section_groups(event.text, message_budget, section_limit)
    messages = []
    for index, group in enumerate(groups):
        blocks = [section(piece) for piece in group]
        if len(groups) > 1:
            blocks.append(context(f"part {index + 1} of {len(groups)}"))
        messages.append(SlackMessage(text=_fallback(group[0]), blocks=blocks))
    if preface:
        messages[0].blocks.insert(0, context(escape(preface)))
    messages[-1].blocks.extend(answer_controls(event))
    return messages


def partial_messages(text: str) -> list[SlackMessage]:
    """An answer still being written, laid out as its final messages will be (without the
    controls and footer it gets when done); an open ``` block is shown closed."""
    return [SlackMessage(text=_fallback(group[0]), blocks=[section(p) for p in group])
            for group in _section_groups(text, MESSAGE_TEXT_BUDGET, SECTION_LIMIT)]


def with_failure(message: SlackMessage, reason: str) -> SlackMessage:
    """A partial answer marked as cut short: the failure notice under what was written."""
    notice = failure_text_message(reason).blocks
    return SlackMessage(text=message.text, blocks=[*message.blocks[: MAX_BLOCKS - 1], *notice])


# --- streaming (chat.startStream / appendStream / stopStream) ---------------------------------

STREAM_CALL_LIMIT = 12_000  # markdown_text per streaming call


def stream_markdown(text: str) -> str:
    """Model Markdown as streamed `markdown_text`: `&` and `<` escaped one character at a time,
    so the text of a prefix is a prefix of the whole's (increments can be appended as they
    come) and `<!channel>` pings no one."""
    return text.replace("&", "&amp;").replace("<", "&lt;")


def stream_pieces(markdown: str, limit: int = STREAM_CALL_LIMIT) -> list[str]:
    """Escaped stream text in pieces of at most `limit` characters, never cut inside an
    `&amp;` / `&lt;` entity."""
    pieces = []
    while len(markdown) > limit:
        cut = limit
        entity = markdown.rfind("&", limit - 5, limit)
        if entity != -1 and markdown.find(";", entity, limit) == -1:
            cut = entity
        pieces.append(markdown[:cut])
        markdown = markdown[cut:]
    return [*pieces, markdown] if markdown else pieces


def stream_cut(text: str, start: int, sent: int,
               budget: int = MESSAGE_TEXT_BUDGET) -> int | None:
    """Where a streamed message that began at `start` ends so the answer goes on in a new
    message (None: not yet). Nothing already sent (`sent`) moves: the first paragraph break
    past three quarters of the budget; at the budget, the last line or word break."""
    soft, hard = start + budget * 3 // 4, start + budget
    low = max(soft, sent)
    paragraph = text.find("\n\n", low, hard)
    if paragraph != -1:
        return paragraph + 2
    if len(text) <= hard:
        return None
    for breaker in ("\n", " "):
        at = text.rfind(breaker, low, hard)
        if at != -1:
            return at + 1
    return max(hard, sent)


def open_fence(text: str, inside: bool = False) -> bool:
    """Whether a ``` block is still open after `text` (which began inside one if `inside`)."""
    return inside != (text.count("```") % 2 == 1)


def failure_message(event: ExecutionFailed) -> SlackMessage:
    return failure_text_message(event.reason)


def failure_text_message(reason: str) -> SlackMessage:
    return SlackMessage(text=_fallback(reason), blocks=[section(f":warning: {escape(reason)}")])


# --- documents (announcements, command replies) -------------------------------------------


def _button(button: Button) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "action_id": ACTION_COMMAND_PREFIX + button.action,
        "text": plain(button.label, BUTTON_LABEL_LIMIT),
        "value": truncate(button.value, BUTTON_VALUE_LIMIT),
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


def _code_blocks(block: Block, diff_limit: int) -> list[dict[str, Any]]:
    """A diff or code block as a ``` section, cut to whole lines with a note if too long."""
    body, left_out = truncate_diff(escape(block.text), diff_limit)
    blocks = [section(f"```\n{body}\n```")]
    if left_out:
        what = "diff" if block.kind == "diff" else "text"
        blocks.append(context(
            f"… {left_out} more line{'s' if left_out != 1 else ''} of the {what} "
            "not shown (Slack limits a block to 3,000 characters); "
            "`/evobot diff` shows it in full."
        ))
    return blocks


def _field_sections(block: Block) -> list[dict[str, Any]]:
    fields = [
        {"type": "mrkdwn", "text": truncate(f"*{escape(key)}*\n{escape(value)}", FIELD_LIMIT)}
        for key, value in block.fields
    ]
    return [{"type": "section", "fields": fields[i:i + FIELDS_PER_SECTION]}
            for i in range(0, len(fields), FIELDS_PER_SECTION)]


def _blocks_of(block: Block, diff_limit: int) -> list[dict[str, Any]]:
    if block.kind == "header":
        return [header(block.text)]
    if block.kind == "text":
        return [section(p) for p in split_text(mrkdwn(block.text))]
    if block.kind == "context":
        return [context(escape_keeping_mentions(block.text))]
    if block.kind in ("diff", "code"):
        return _code_blocks(block, diff_limit)
    if block.kind == "fields":
        return _field_sections(block)
    return []


def document_blocks(document: Document, *, diff_limit: int = DIFF_LIMIT) -> list[dict[str, Any]]:
    blocks = [b for block in document.blocks for b in _blocks_of(block, diff_limit)]
    if document.buttons:
        blocks = blocks[: MAX_BLOCKS - 1]
        blocks.append({"type": "actions", "elements": [_button(b) for b in document.buttons]})
    return blocks[:MAX_BLOCKS]


def document_message(document: Document) -> SlackMessage:
    return SlackMessage(text=_fallback(document.summary), blocks=document_blocks(document))


# --- commands -------------------------------------------------------------------------------


def command_response(reply: CommandReply) -> dict[str, Any]:
    """A slash command's answer (the ack's body, or what goes to its response_url)."""
    return {
        "text": truncate(reply.document.summary, SECTION_LIMIT),
        "blocks": document_blocks(reply.document),
        "response_type": "ephemeral" if reply.private else "in_channel",
    }


def command_failed(name: str, exc: BaseException) -> dict[str, Any]:
    return {"text": f"Sorry — `{escape(name)}` failed: {escape(str(exc))}",
            "response_type": "ephemeral"}


def command_pending(name: str) -> dict[str, Any]:
    """The ack of a command that needs longer than Slack's 3 s (its reply follows)."""
    return {"text": f"Working on `{escape(name)}`…", "response_type": "ephemeral"}


# --- feedback -------------------------------------------------------------------------------


def option(label: str, value: str) -> dict[str, Any]:
    return {"text": plain(label, OPTION_TEXT_LIMIT), "value": truncate(value, OPTION_VALUE_LIMIT)}


def modal_input(ids: tuple[str, str], label: str, element: dict[str, Any], *,
                optional: bool = False) -> dict[str, Any]:
    """An input block of the 💬 modal; `ids` are where inbound.py reads its value back."""
    block_id, action_id = ids
    return {"type": "input", "block_id": block_id, "optional": optional,
            "label": plain(label, INPUT_LABEL_LIMIT),
            "element": {**element, "action_id": action_id}}


def _text_input(placeholder: str) -> dict[str, Any]:
    return {"type": "plain_text_input", "multiline": True, "max_length": TEXT_INPUT_LIMIT,
            "placeholder": plain(placeholder, PLACEHOLDER_LIMIT)}


def _select(placeholder: str, options: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "static_select", "placeholder": plain(placeholder, PLACEHOLDER_LIMIT),
            "options": options}


def comment_modal(target: CommentTarget) -> dict[str, Any]:
    """The 💬 modal: what kind of problem (optional), a comment (required), what a good
    answer would have said (optional) and a 1–5 rating (optional)."""
    categories = [option(c.label, c.value) for c in FeedbackCategory]
    stars = [option(str(n), str(n)) for n in range(5, 0, -1)]
    return {
        "type": "modal",
        "callback_id": COMMENT_VIEW,
        "private_metadata": target.dumps(),
        "title": plain("Comment on the answer", MODAL_TITLE_LIMIT),
        "submit": plain("Send", MODAL_TITLE_LIMIT),
        "close": plain("Cancel", MODAL_TITLE_LIMIT),
        "blocks": [
            modal_input(MODAL_CATEGORY, "What kind of problem?",
                        _select("Pick one", categories), optional=True),
            modal_input(MODAL_COMMENT, "What should the bot do differently?",
                        _text_input("e.g. keep it to three sentences")),
            modal_input(MODAL_SUGGESTION, "What would a good answer have said?",
                        _text_input("The facts, steps or wording you expected"),
                        optional=True),
            modal_input(MODAL_RATING, "Rating", _select("1–5", stars), optional=True),
        ],
    }


def vote_ack(result: FeedbackResult) -> str:
    """The private acknowledgement of a rating; it invites a comment when the engine asks
    for one (a new negative rating)."""
    text = result.message
    if result.invite_comment:
        text += INVITE_COMMENT
    if result.evolution_queued:
        text += WILL_LEARN
    return text


def comment_ack(result: FeedbackResult) -> str:
    """The private acknowledgement of a comment (the user just said what should change)."""
    return result.message + (WILL_LEARN if result.evolution_queued else "")
