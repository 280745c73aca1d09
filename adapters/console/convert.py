"""Pure converters: a console line → an engine input."""

from __future__ import annotations

import re
import shlex

from engine.types import (
    FeedbackCategory,
    FeedbackSource,
    InboundCommand,
    InboundFeedback,
    InboundMessage,
)

# "+1"/"-1" may carry a comment; a bare digit is a rating, "5 ideas for a party" is not
_RATING = re.compile(r"^(?:(\+1|-1)(?:\s+(.*))?|([1-5]))$", re.S)
RATING_OF = {"+1": 4, "-1": 2}


def split_category(text: str) -> tuple[FeedbackCategory | None, str | None]:
    """`too-long: keep it short` → (TOO_LONG, "keep it short"); a prefix that is not a
    category stays part of the comment."""
    head, colon, rest = text.partition(":")
    category = FeedbackCategory.parse(head) if colon else None
    if category is None:
        return None, text or None
    return category, rest.strip() or None


def parse_line(
    line: str, *, tenant_id: str, user_id: str, channel_id: str, message_id: str
) -> InboundMessage | InboundFeedback | InboundCommand | None:
    text = line.strip()
    if not text:
        return None
    if text.startswith("/"):
        try:
            parts = shlex.split(text[1:])
        except ValueError:
            parts = text[1:].split()
        if not parts:
            return None
        return InboundCommand(
            tenant_id=tenant_id, user_id=user_id, name=parts[0], args=parts[1:],
            channel_id=channel_id, is_admin=True,  # the console's user owns the local tenant
        )
    if text.lower().startswith("comment "):
        return InboundFeedback(
            tenant_id=tenant_id, user_id=user_id, source=FeedbackSource.COMMENT,
            comment=text[len("comment "):].strip(),
        )
    match = _RATING.match(text)
    if match:
        token = match.group(1) or match.group(3)
        category, comment = split_category((match.group(2) or "").strip())
        rating = RATING_OF.get(token) or int(token)
        return InboundFeedback(
            tenant_id=tenant_id, user_id=user_id,
            source=FeedbackSource.REACTION if token in RATING_OF else FeedbackSource.COMMAND,
            rating=rating, comment=comment, category=category,
            from_admin=True,  # the console's user owns the local tenant
        )
    return InboundMessage(
        tenant_id=tenant_id, channel_id=channel_id, user_id=user_id, text=text,
        message_id=message_id,
    )
