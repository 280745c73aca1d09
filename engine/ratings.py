"""The one reaction → rating map every platform maps through, and what counts as negative.

Keys are emoji; platforms that name reactions (Slack) translate names to these emoji first.
Skin tones and variation selectors don't change a rating.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

DEFAULT_REACTION_RATINGS: dict[str, int] = {
    "1️⃣": 1, "2️⃣": 2, "3️⃣": 3, "4️⃣": 4, "5️⃣": 5,
    "⭐": 5, "🌟": 5, "🤩": 5, "🏆": 5, "💯": 5, "🔥": 5, "🎉": 5, "❤️": 5,
    "👍": 4, "✅": 4,
    "🤔": 3, "😕": 3,
    "👎": 2,
    "❌": 1, "😡": 1, "💩": 1, "🤡": 1,
}  # fmt: skip


def normalize_emoji(emoji: str) -> str:
    """Drop the variation selector and skin-tone modifiers: 👍🏽 and 👍 rate the same."""
    return "".join(
        c
        for c in unicodedata.normalize("NFC", emoji)
        if c != "\ufe0f" and not ("\U0001f3fb" <= c <= "\U0001f3ff")
    )


_NORMALIZED = {normalize_emoji(k): v for k, v in DEFAULT_REACTION_RATINGS.items()}


def rating_of(emoji: str, table: Mapping[str, int] | None = None) -> int | None:
    """The rating a reaction stands for, or None when it isn't a rating."""
    mapping = _NORMALIZED if table is None else {normalize_emoji(k): v for k, v in table.items()}
    return mapping.get(normalize_emoji(emoji))


NEGATIVE_AT_MOST = 3  # 1-3 is negative: the engine learns from it and invites a comment


def is_negative(rating: int | None) -> bool:
    """What counts as a negative rating, everywhere (evolution, statistics, comment invites)."""
    return rating is not None and rating <= NEGATIVE_AT_MOST
